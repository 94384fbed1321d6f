/**
 * `enforce_dns` (gateway and intercept modes, issue #11 item 13): DNS that goes around dnsseal.
 * A LAN client that asks another resolver gets addresses dnsseal never registered, so its traffic
 * to them is neither marked nor guarded. On LAN ingress:
 *
 * - `redirect`: plain DNS (UDP and TCP 53) to any address dnsseal does not listen on is DNATed to
 *   dnsseal's listen address of the packet's family (conntrack restores the source on the reply,
 *   so the client sees the resolver it asked); a family dnsseal does not listen on for the LAN
 *   (none, or loopback only) has its plain DNS dropped instead — never let through;
 * - `drop`: that plain DNS is dropped;
 * - both: DNS-over-TLS (TCP 853) and DNS-over-QUIC (UDP 853) are dropped (they cannot be
 *   redirected: the client checks the server's certificate);
 * - `off` (default): nothing.
 * DNS-over-HTTPS (TCP 443) cannot be told from other HTTPS; the canary (`canary: nxdomain`) is
 * what stops browsers from using their own DoH.
 *
 * It is netfilter's job, not eBPF's: NAT with connection tracking is what nftables does well, and
 * it costs the eBPF programs nothing per packet. The rules live in one nftables table owned by
 * dnsseal, `inet dnsseal_enforce`: replaced atomically (one `nft -f` transaction) at start and on
 * reload, found again after a restart (same name), removed by `dnsseal down`. Its named counters
 * are read at metrics scrape time.
 */
import { DnssealError } from '../util/errors.ts';
import { isIP } from '../util/ip.ts';

export type EnforceDnsMode = 'off' | 'redirect' | 'drop';

export const ENFORCE_TABLE = 'dnsseal_enforce';

/** The named counters of the table, with what they count (metric labels). */
export const ENFORCE_COUNTERS = {
  dns_redirected: { action: 'redirected', protocol: 'dns' },
  dns_dropped: { action: 'dropped', protocol: 'dns' },
  dot_dropped: { action: 'dropped', protocol: 'dot' },
  doq_dropped: { action: 'dropped', protocol: 'doq' },
} as const;
export type EnforceCounterName = keyof typeof ENFORCE_COUNTERS;

export interface EnforcePlan {
  mode: EnforceDnsMode;
  /** LAN interfaces: only what arrives on them is enforced. */
  lan: string[];
  /** dnsseal's listen addresses (`ADDR:PORT` / `[ADDR]:PORT`, as in the config). */
  listen: string[];
}

/** Where plain DNS of one family may go, and where it is sent otherwise. */
export interface FamilyTarget {
  /** The listen addresses of this family LAN clients can reach (no loopback). */
  addresses: string[];
  /** Listening on the unspecified address (0.0.0.0 / ::): every local address is dnsseal. */
  any: boolean;
  /** Port of the first usable listen address (the redirect target port). */
  port: number;
}

function splitListen(spec: string): { address: string; port: number } {
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(spec) ?? /^([^:]+):(\d+)$/.exec(spec);
  if (!m || !isIP(m[1]!)) throw new DnssealError('enforce', 'bad_listen', `enforce_dns: listen address ${JSON.stringify(spec)} is not ADDR:PORT`);
  return { address: m[1]!, port: Number(m[2]) };
}

const isLoopback = (a: string) => a === '::1' || a.startsWith('127.');
const isAny = (a: string) => a === '0.0.0.0' || a === '::';

/**
 * Per family, what the LAN may reach of dnsseal. undefined: dnsseal does not serve this family to
 * the LAN (no listen address of it, or loopback only) — its plain DNS is dropped.
 */
export function familyTargets(listen: string[]): { v4?: FamilyTarget; v6?: FamilyTarget } {
  const out: { v4?: FamilyTarget; v6?: FamilyTarget } = {};
  for (const spec of listen) {
    const { address, port } = splitListen(spec);
    if (isLoopback(address)) continue;
    const fam = address.includes(':') ? 'v6' : 'v4';
    const t = (out[fam] ??= { addresses: [], any: false, port });
    if (isAny(address)) t.any = true;
    else t.addresses.push(address);
  }
  return out;
}

/** An interface name as an nft string; a name the kernel would not accept is refused, not mangled. */
function quote(name: string): string {
  if (!/^[A-Za-z0-9_.@-]{1,15}$/.test(name)) throw new DnssealError('enforce', 'bad_interface', `enforce_dns: ${JSON.stringify(name)} is not an interface name`);
  return `"${name}"`;
}

/**
 * The nft script that makes the table exactly what `plan` says (pure; golden-tested). `off`
 * gives the script that removes the table. One transaction: the `table` line makes the `delete`
 * safe when the table does not exist yet.
 */
export function renderRuleset(plan: EnforcePlan): string {
  const head = [`table inet ${ENFORCE_TABLE}`, `delete table inet ${ENFORCE_TABLE}`];
  if (plan.mode === 'off' || plan.lan.length === 0) return head.join('\n') + '\n';
  const lan = `iifname != { ${plan.lan.map(quote).join(', ')} } return`;
  const targets = familyTargets(plan.listen);
  const filter: string[] = [
    'tcp dport 853 counter name "dot_dropped" drop',
    'udp dport 853 counter name "doq_dropped" drop',
  ];
  const nat: string[] = [];
  for (const [fam, t] of [['ipv4', targets.v4], ['ipv6', targets.v6]] as const) {
    const ip = fam === 'ipv4' ? 'ip' : 'ip6';
    const dns = `meta nfproto ${fam} meta l4proto { tcp, udp } th dport 53`;
    if (!t) {
      filter.push(`${dns} counter name "dns_dropped" drop`);
      continue;
    }
    // What is not dnsseal: any local address is when it listens on the unspecified address.
    const notOurs = t.any ? 'fib daddr type != local' : `${ip} daddr != { ${t.addresses.join(', ')} }`;
    if (plan.mode === 'drop') {
      filter.push(`${dns} ${notOurs} counter name "dns_dropped" drop`);
    } else if (t.any) {
      nat.push(`${dns} ${notOurs} counter name "dns_redirected" redirect to :${t.port}`);
    } else {
      const to = fam === 'ipv4' ? `${t.addresses[0]}:${t.port}` : `[${t.addresses[0]}]:${t.port}`;
      nat.push(`${dns} ${notOurs} counter name "dns_redirected" dnat ${ip} to ${to}`);
    }
  }
  const lines = [
    ...head,
    `table inet ${ENFORCE_TABLE} {`,
    ...Object.keys(ENFORCE_COUNTERS).map((c) => `\tcounter ${c} { }`),
    '\tchain lan_filter {',
    // Before conntrack (-200) would see it is fine too; -150 (mangle) keeps it after raw.
    '\t\ttype filter hook prerouting priority mangle; policy accept;',
    `\t\t${lan}`,
    ...filter.map((l) => `\t\t${l}`),
    '\t}',
  ];
  if (nat.length) {
    lines.push('\tchain lan_nat {', '\t\ttype nat hook prerouting priority dstnat; policy accept;', `\t\t${lan}`, ...nat.map((l) => `\t\t${l}`), '\t}');
  }
  lines.push('}');
  return lines.join('\n') + '\n';
}

/** What the table's counters say (packets and bytes per named counter; absent = 0). */
export type EnforceCounts = Record<EnforceCounterName, { packets: number; bytes: number }>;

export function emptyCounts(): EnforceCounts {
  const out = {} as EnforceCounts;
  for (const k of Object.keys(ENFORCE_COUNTERS) as EnforceCounterName[]) out[k] = { packets: 0, bytes: 0 };
  return out;
}

/** `nft -j list counters table inet dnsseal_enforce` output → counts; unknown items ignored. */
export function parseCounters(json: string): EnforceCounts {
  const out = emptyCounts();
  let doc: unknown;
  try {
    doc = JSON.parse(json);
  } catch (err) {
    throw new DnssealError('enforce', 'nft_output', `enforce_dns: nft printed no JSON: ${(err as Error).message}`);
  }
  const items = (doc as { nftables?: unknown[] })?.nftables;
  if (!Array.isArray(items)) return out;
  for (const item of items) {
    const c = (item as { counter?: { name?: unknown; table?: unknown; packets?: unknown; bytes?: unknown } }).counter;
    if (!c || c.table !== ENFORCE_TABLE || typeof c.name !== 'string' || !(c.name in out)) continue;
    out[c.name as EnforceCounterName] = { packets: Number(c.packets) || 0, bytes: Number(c.bytes) || 0 };
  }
  return out;
}

/** The enforcer as the daemon uses it: nft for real, in memory for tests. */
export interface DnsEnforcer {
  readonly kind: string;
  /** Makes the kernel state what `plan` says (idempotent; `off` removes it). */
  apply(plan: EnforcePlan): void;
  counts(): EnforceCounts;
  /** `dnsseal down`: removes the table; a line per object removed. */
  remove(): string[];
}

type Runner = (argv: string[], stdin?: string) => { code: number; out: string; err: string };

const spawnRunner: Runner = (argv, stdin) => {
  const r = Bun.spawnSync(argv, { stdin: stdin === undefined ? 'ignore' : new TextEncoder().encode(stdin), stdout: 'pipe', stderr: 'pipe' });
  return { code: r.exitCode ?? -1, out: r.stdout.toString(), err: r.stderr.toString().trim() };
};

export class NftDnsEnforcer implements DnsEnforcer {
  readonly kind = 'nft';
  private active = false;

  constructor(private readonly run: Runner = spawnRunner) {}

  apply(plan: EnforcePlan): void {
    const r = this.run(['nft', '-f', '-'], renderRuleset(plan));
    if (r.code !== 0) {
      throw new DnssealError('enforce', 'nft_failed', `enforce_dns: nft could not install table inet ${ENFORCE_TABLE}: ${r.err || `exit ${r.code}`}`);
    }
    this.active = plan.mode !== 'off' && plan.lan.length > 0;
  }

  counts(): EnforceCounts {
    if (!this.active) return emptyCounts();
    const r = this.run(['nft', '-j', 'list', 'counters', 'table', 'inet', ENFORCE_TABLE]);
    if (r.code !== 0) throw new DnssealError('enforce', 'nft_failed', `enforce_dns: reading the counters: ${r.err || `exit ${r.code}`}`);
    return parseCounters(r.out);
  }

  remove(): string[] {
    const r = this.run(['nft', 'delete', 'table', 'inet', ENFORCE_TABLE]);
    this.active = false;
    if (r.code === 0) return [`nft table inet ${ENFORCE_TABLE}`];
    if (/No such file|does not exist/i.test(r.err)) return [];
    throw new DnssealError('enforce', 'nft_failed', `enforce_dns: nft delete table inet ${ENFORCE_TABLE}: ${r.err || `exit ${r.code}`}`);
  }
}

/** In-memory stand-in: records the plan, counts what tests put in. */
export class FakeDnsEnforcer implements DnsEnforcer {
  readonly kind = 'fake';
  plan?: EnforcePlan;
  readonly counters = emptyCounts();

  apply(plan: EnforcePlan): void {
    renderRuleset(plan); // the same validation as the real one (bad listen addresses throw)
    this.plan = plan.mode === 'off' ? undefined : { ...plan, lan: [...plan.lan], listen: [...plan.listen] };
  }

  counts(): EnforceCounts {
    return structuredClone(this.counters);
  }

  remove(): string[] {
    const had = this.plan !== undefined;
    this.plan = undefined;
    return had ? [`nft table inet ${ENFORCE_TABLE}`] : [];
  }
}
