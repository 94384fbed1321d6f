/**
 * The LAN prefixes that become the local traffic selectors of gateway/intercept-mode tunnels
 * (what charon puts on our side of the CHILD_SA, and so in the XFRM policy's selector).
 * Interface NAMES are not traffic selectors — charon refuses them (`invalid value for:
 * local_ts`) — so the addresses of the `lan` interfaces are read once at start
 * (`ip -j addr show dev IFACE`) and turned into their network prefixes. Link-local and
 * host-scope addresses are skipped: a forwarded packet never has them as its source.
 *
 * Which selectors a connection gets (conn-config.ts): an explicit `local_ts` list first, then
 * `dynamic` (charon's keyword for our own outer address) in host mode, else these prefixes.
 * A LAN interface without a usable address at start is an error that says what to do, rather
 * than a selector that would never match the LAN's traffic.
 */
import { formatIP, parseIP } from '../util/ip.ts';
import { DnssealError, errorMessage } from '../util/errors.ts';

/** Reads `ip -j addr show dev IFACE` for one interface (the JSON text); throws when absent. */
export type AddrReader = (iface: string) => string;

interface IpAddrInfo {
  family?: string;
  local?: string;
  prefixlen?: number;
  scope?: string;
}

/** `ip -j addr show dev IFACE` output → the network prefixes of its global addresses, in order. */
export function prefixesFromIpJson(json: string): string[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch (err) {
    throw new DnssealError('ipsec', 'lan_addresses', `cannot parse "ip -j addr" output: ${errorMessage(err)}`);
  }
  if (!Array.isArray(parsed)) throw new DnssealError('ipsec', 'lan_addresses', '"ip -j addr" output is not a list');
  const out: string[] = [];
  for (const link of parsed as Array<{ addr_info?: IpAddrInfo[] }>) {
    for (const a of link?.addr_info ?? []) {
      if (a.family !== 'inet' && a.family !== 'inet6') continue;
      if (a.scope === 'link' || a.scope === 'host') continue;
      if (typeof a.local !== 'string' || typeof a.prefixlen !== 'number') continue;
      const p = networkPrefix(a.local, a.prefixlen);
      if (p && !out.includes(p)) out.push(p);
    }
  }
  return out;
}

/** `10.1.0.7`, 24 → `10.1.0.0/24`; null for an address that does not parse. */
export function networkPrefix(addr: string, len: number): string | null {
  const b = parseIP(addr);
  if (!b || (addr.includes(':') && b.length === 4)) return null; // IPv4-mapped: not a LAN prefix
  const max = b.length * 8;
  if (!Number.isInteger(len) || len < 0 || len > max) return null;
  for (let i = 0; i < b.length; i++) {
    const bits = Math.max(0, Math.min(8, len - i * 8));
    b[i] = bits === 0 ? 0 : b[i]! & ((0xff << (8 - bits)) & 0xff);
  }
  return `${formatIP(b)}/${len}`;
}

/** The real reader: one `ip` run per interface, at start-up only. */
export const ipAddrReader: AddrReader = (iface) => {
  const r = Bun.spawnSync(['ip', '-j', 'addr', 'show', 'dev', iface], { stdout: 'pipe', stderr: 'pipe', timeout: 5000 });
  if (r.exitCode !== 0) {
    throw new DnssealError('ipsec', 'lan_addresses', `cannot read the addresses of LAN interface ${iface}: ${r.stderr.toString().trim() || `ip exited ${r.exitCode}`}`);
  }
  return r.stdout.toString();
};

/**
 * The network prefixes of the LAN interfaces' global addresses, in config order, without
 * duplicates: the local traffic selectors of gateway/intercept-mode tunnels.
 */
export function lanPrefixes(ifaces: string[], read: AddrReader = ipAddrReader): string[] {
  const out: string[] = [];
  for (const iface of ifaces) {
    const prefixes = prefixesFromIpJson(read(iface));
    if (prefixes.length === 0) {
      throw new DnssealError(
        'ipsec',
        'lan_addresses',
        `LAN interface ${iface} has no global address, so the tunnel's local traffic selectors cannot be derived; give it an address before start or set "local_ts: [CIDR]" / --local-ts CIDR`,
      );
    }
    for (const p of prefixes) if (!out.includes(p)) out.push(p);
  }
  return out;
}
