/**
 * `allow_clients` (issue 12, access control): which senders may query. A query from any other
 * address is answered REFUSED (`dnsseal_proxy_queries_total{outcome="refused"}`) — an open
 * resolver on a public address answers the world and amplifies floods.
 *
 * The sender is the packet's source, not a client a trusted forwarder names in EDNS Client
 * Subnet (the forwarder itself must be allowed). `::ffff:a.b.c.d` counts as IPv4. Lookups are
 * memoised per address text (src/policy/client-lookup.ts, bounded). `set` swaps the whole list
 * in one assignment (a reload).
 *
 * The default (`allow_clients` unset or empty): loopback plus the LAN prefixes — the network
 * prefixes of the `lan` interfaces' addresses, read at start (and at a reload that changes the
 * setting), as tunnels' local traffic selectors are (src/ipsec/lan-prefixes.ts).
 *
 * `dnsseal run` (src/daemon/start-up.ts) and `dnsseal policy-server` (src/policy-server/run.ts)
 * both build their list with `allowedClients` and `lanPrefixesForAccess`.
 */
import { lanPrefixes, type AddrReader } from '../ipsec/lan-prefixes.ts';
import { parseCidr } from '../policy/cidr.ts';
import { ClientLookup } from '../policy/client-lookup.ts';
import { errorMessage } from '../util/errors.ts';
import type { Logger } from '../util/log.ts';

export const LOOPBACK = ['127.0.0.0/8', '::1/128'];

export class ClientAcl {
  private lookup: ClientLookup<true>;
  private list: string[];

  /** `cidrs`: checked already (config); an unparsable one throws. */
  constructor(cidrs: readonly string[]) {
    this.list = [...cidrs];
    this.lookup = ClientAcl.build(this.list);
  }

  private static build(cidrs: readonly string[]): ClientLookup<true> {
    const l = new ClientLookup<true>();
    for (const c of cidrs) l.add(parseCidr(c), true);
    return l;
  }

  /** Whether `address` (a sender's address text) may query. */
  allows(address: string): boolean {
    return this.lookup.lookup(address) === true;
  }

  /** The CIDRs allowed now. */
  get cidrs(): string[] {
    return [...this.list];
  }

  /** Replaces the list (throws, changing nothing, when a CIDR does not parse). */
  set(cidrs: readonly string[]): void {
    const next = ClientAcl.build(cidrs);
    this.list = [...cidrs];
    this.lookup = next;
  }
}

/** The CIDRs `allow_clients` stands for: the list itself, or (empty) loopback plus the LAN prefixes. */
export function allowedClients(configured: readonly string[], lanPrefixes: () => string[]): string[] {
  return configured.length > 0 ? [...configured] : [...LOOPBACK, ...lanPrefixes()];
}

/**
 * The network prefixes of the LAN interfaces' addresses for `allow_clients`' default. Unlike
 * tunnels' selectors, a LAN interface without an address does not stop anything: it is
 * skipped, with a warning (its clients get REFUSED until a reload reads it again).
 */
export function lanPrefixesForAccess(ifaces: readonly string[], read: AddrReader | undefined, log: Logger): string[] {
  const out: string[] = [];
  for (const iface of ifaces) {
    try {
      for (const p of read ? lanPrefixes([iface], read) : lanPrefixes([iface])) if (!out.includes(p)) out.push(p);
    } catch (err) {
      log.warn('allow_clients: a LAN interface has no usable address; its clients get REFUSED until a reload with allow_clients changed, or a restart', {
        lan: iface,
        err: errorMessage(err),
      });
    }
  }
  return out;
}
