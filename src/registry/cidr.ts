/**
 * Static CIDR entries (patent ¶46) expanded to host addresses. The destination map is a HASH
 * keyed by exact address (never an LPM: a full map must refuse, not evict), so a static CIDR
 * becomes one entry per address, and a prefix wider than `maxHosts` is refused with a clear
 * error instead of silently filling the map. Output is canonical text from src/util/ip.ts, the
 * one formatter — the same form the proxy hands to `register()`.
 */
import { formatIP, parseIPv4, parseIPv6 } from '../util/ip.ts';
import { DnssealError } from '../util/errors.ts';

/** Widest static CIDR accepted: a /22 (IPv4) or /118 (IPv6), one map entry per address. */
export const MAX_STATIC_HOSTS = 1024;

/** Every host address of `cidr` (a bare address counts as /32 or /128), canonical text. */
export function expandCidr(cidr: string, maxHosts = MAX_STATIC_HOSTS): string[] {
  const [ip, lenText, extra] = cidr.split('/');
  const bad = (why: string) =>
    new DnssealError('registry', 'static_invalid', `static entry ${cidr}: ${why}`);
  if (extra !== undefined || !ip) throw bad('not an address or CIDR');
  const v4 = parseIPv4(ip);
  const v6 = v4 || ip.includes('%') ? null : parseIPv6(ip);
  if (!v4 && !v6) throw bad('not an address or CIDR');
  const bits = v4 ? 32 : 128;
  const len = lenText === undefined ? bits : /^\d{1,3}$/.test(lenText) ? Number(lenText) : NaN;
  if (!(len >= 0 && len <= bits)) throw bad(`prefix length must be 0..${bits}`);
  const hostBits = bits - len;
  if (hostBits > 30 || 2 ** hostBits > maxHosts) {
    throw bad(
      `/${len} covers ${2 ** hostBits} addresses; static entries become one map entry per address, ` +
        `at most ${maxHosts} per entry (split it or use a longer prefix)`,
    );
  }
  // hostBits ≤ 30, so only the last 32 bits vary (all of IPv4, the last two groups of IPv6).
  const bytes = (v4 ?? v6)!.slice();
  const at = bytes.length - 4;
  const dv = new DataView(bytes.buffer);
  const count = 2 ** hostBits;
  const low = dv.getUint32(at);
  const net = hostBits === 0 ? low : (low & ~(count - 1)) >>> 0;
  const out: string[] = [];
  for (let i = 0; i < count; i++) {
    dv.setUint32(at, (net + i) >>> 0);
    out.push(formatIP(bytes));
  }
  return out;
}
