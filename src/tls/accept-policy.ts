/**
 * Where the accepting side may connect, per client identity — never an open proxy.
 *
 *   clients:
 *     - identity: router.corp.example      # a DNS SAN of the client certificate ("*": any
 *       allow:                             #   client the CA vouches for)
 *         - cidrs: [198.51.100.0/24]       # the address must be in one of them
 *           ports: [80, 443, 8000-8099]    # and the port in one (unset: any port)
 *         - names: ["*.corp.example"]      # the relay's Dnsseal-Name must match one, AND the
 *           ports: [443]                   #   address must be one the name resolves to here
 *
 * A target is allowed when one entry of the first client that matches allows it. An entry
 * needs `cidrs` or `names` (an entry with only ports would allow every address). A `names`
 * entry does not trust the client's word for which address the name has: the acceptor resolves
 * the name itself, so a client cannot reach 10.0.0.1 by claiming it is www.corp.example.
 */
import { PrefixTable, formatIP, parseCidr, parseIP } from '../policy/cidr.ts';
import { matchCondition, parseCondition } from '../policy/condition.ts';
import type { Condition } from '../policy/types.ts';
import { DnssealError } from '../util/errors.ts';
import { canonicalIdentity } from './san.ts';
import type { Destination } from './types.ts';

export interface AllowInput {
  cidrs?: string[];
  ports?: Array<number | string>;
  names?: string[];
}
export interface ClientInput {
  identity: string;
  allow: AllowInput[];
}

/** Resolves a name to its addresses as this host sees them (real: the system resolver). */
export type NameResolver = (name: string) => Promise<string[]>;

interface AllowEntry {
  cidrs: PrefixTable<true> | null;
  ports: Array<[number, number]> | null;
  names: Condition[] | null;
}

export type Verdict = { ok: true } | { ok: false; detail: string };

/** Reports a problem with client `client` (its allow entry `allow`); never returns. */
export type PolicyFail = (message: string, client: number | null, allow?: number) => never;

const defaultFail: PolicyFail = (message, client, allow) => {
  const where = client === null ? 'clients' : `clients[${client}]${allow !== undefined ? `.allow[${allow}]` : ''}`;
  throw new DnssealError('tls', 'accept_policy_invalid', `${where}: ${message}`);
};

function parsePort(bad: (m: string) => never, p: number | string): [number, number] {
  const text = String(p).trim();
  const m = /^([0-9]{1,5})(?:-([0-9]{1,5}))?$/.exec(text);
  const lo = m ? Number(m[1]) : NaN;
  const hi = m?.[2] !== undefined ? Number(m[2]) : lo;
  if (!m || lo < 1 || hi > 65535 || lo > hi) bad(`port "${text}" is not a port (1-65535) or range (LOW-HIGH)`);
  return [lo, hi];
}

function compileEntry(bad: (m: string) => never, e: AllowInput): AllowEntry {
  if (!e || typeof e !== 'object') bad('an allow entry is a map with cidrs, names and/or ports');
  if (!e.cidrs?.length && !e.names?.length) {
    bad('an allow entry needs cidrs or names (with ports alone it would allow every address); write 0.0.0.0/0 and ::/0 if you mean it');
  }
  let cidrs: PrefixTable<true> | null = null;
  if (e.cidrs?.length) {
    cidrs = new PrefixTable<true>();
    for (const c of e.cidrs) {
      try {
        cidrs.add(parseCidr(c), true);
      } catch (err) {
        bad((err as Error).message);
      }
    }
  }
  let names: Condition[] | null = null;
  if (e.names?.length) {
    names = e.names.map((n) => {
      try {
        return parseCondition(n);
      } catch (err) {
        return bad((err as Error).message);
      }
    });
  }
  const ports = e.ports?.length ? e.ports.map((p) => parsePort(bad, p)) : null;
  return { cidrs, ports, names };
}

export class ClientPolicy {
  constructor(
    /** The configured identity (`*` or a name): the per-client limit's key. */
    readonly identity: string,
    private readonly entries: AllowEntry[],
  ) {}

  async check(dst: Destination, name: string | undefined, resolve: NameResolver): Promise<Verdict> {
    const addr = parseIP(dst.addr);
    if (!addr) return { ok: false, detail: `${dst.addr} is not an address` };
    let why = `${dst.addr} port ${dst.port} is not in this client's allow-list`;
    for (const e of this.entries) {
      if (e.ports && !e.ports.some(([lo, hi]) => dst.port >= lo && dst.port <= hi)) continue;
      if (e.cidrs && e.cidrs.lookup(dst.addr) === undefined) continue;
      if (e.names) {
        if (!name) {
          why = 'this destination is allowed by name only, and the request names none';
          continue;
        }
        const labels = name.split('.');
        if (!e.names.some((c) => matchCondition(c, labels))) continue;
        let addrs: string[];
        try {
          addrs = await resolve(name);
        } catch {
          why = `${name} does not resolve here`;
          continue;
        }
        const canon = formatIP(addr);
        if (!addrs.some((a) => {
          const b = parseIP(a);
          return b !== null && formatIP(b) === canon;
        })) {
          why = `${dst.addr} is not an address of ${name} here`;
          continue;
        }
      }
      return { ok: true };
    }
    return { ok: false, detail: why };
  }
}

export class AcceptPolicy {
  private constructor(private readonly clients: Array<{ identity: string; policy: ClientPolicy }>) {}

  /**
   * Builds the policy or throws: by default a DnssealError naming the entry
   * (`clients[1].allow[0]: …`); `fail` lets a config loader point at the entry's line instead.
   */
  static compile(input: ClientInput[], fail: PolicyFail = defaultFail): AcceptPolicy {
    if (!Array.isArray(input) || input.length === 0) fail('at least one client with an allow-list is needed (nothing is allowed otherwise)', null);
    const clients = input.map((c, i) => {
      if (typeof c?.identity !== 'string' || c.identity.trim() === '') fail('identity must be a DNS name of the client certificate, or "*"', i);
      const identity = c.identity.trim() === '*' ? '*' : canonicalIdentity(c.identity.trim());
      if (!Array.isArray(c.allow) || c.allow.length === 0) fail('allow must list at least one entry', i);
      return { identity, policy: new ClientPolicy(identity, c.allow.map((e, j) => compileEntry((m) => fail(m, i, j), e))) };
    });
    return new AcceptPolicy(clients);
  }

  /** The first client entry whose identity is one of the certificate's DNS names (or `*`). */
  client(certNames: readonly string[]): ClientPolicy | null {
    const names = certNames.filter((n) => !n.includes('*')).map(canonicalIdentity);
    for (const c of this.clients) if (c.identity === '*' || names.includes(c.identity)) return c.policy;
    return null;
  }
}

/** The system resolver (getaddrinfo), every address of a name. */
export async function systemResolver(name: string): Promise<string[]> {
  const { lookup } = await import('node:dns/promises');
  const found = await lookup(name, { all: true, verbatim: true });
  return found.map((f) => f.address);
}
