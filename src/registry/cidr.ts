/**
 * Static CIDR entries (patent ¶46) expanded to host addresses. The destination map is a HASH
 * keyed by exact address (never an LPM: a full map must refuse, not evict), so a static CIDR
 * becomes one entry per address, and a prefix wider than `maxHosts` is refused with a clear
 * error instead of silently filling the map. Output is canonical text: dotted quad for IPv4,
 * RFC 5952 for IPv6 without mixed notation — the same form the proxy hands to `register()`.
 */
import { parseIPv4, parseIPv6 } from '../policy/cidr.ts';
import { DnssealError } from '../util/errors.ts';

/** Four octets, or undefined when `text` is not a dotted quad (the policy's parser). */
function parseV4(text: string): number[] | undefined {
  const b = parseIPv4(text);
  return b ? [...b] : undefined;
}

/** Eight 16-bit groups, or undefined when `text` is not an IPv6 literal (no zone ids here). */
function parseV6(text: string): number[] | undefined {
  if (text.includes('%')) return undefined;
  const b = parseIPv6(text);
  if (!b) return undefined;
  const g: number[] = [];
  for (let i = 0; i < 8; i++) g.push((b[2 * i]! << 8) | b[2 * i + 1]!);
  return g;
}

/**
 * RFC 5952: lower case, no leading zeros, the longest run (≥ 2) of zero groups as `::` (the
 * first on a tie). IPv4-mapped addresses stay in hex (`::ffff:c000:201`), exactly like the
 * proxy's `src/dns/ip-text.ts`, so both produce the same registry key for one address.
 */
export function formatV6(g: number[]): string {
  let bestAt = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) {
      bestAt = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (xs: number[]) => xs.map((x) => x.toString(16)).join(':');
  if (bestAt < 0) return hex(g);
  return `${hex(g.slice(0, bestAt))}::${hex(g.slice(bestAt + bestLen))}`;
}

/** Canonical text of an IP literal, or undefined when it is not one. */
export function canonicalIp(text: string): string | undefined {
  const v4 = parseV4(text);
  if (v4) return v4.join('.');
  const v6 = parseV6(text);
  return v6 ? formatV6(v6) : undefined;
}

/** Widest static CIDR accepted: a /22 (IPv4) or /118 (IPv6), one map entry per address. */
export const MAX_STATIC_HOSTS = 1024;

/** Every host address of `cidr` (a bare address counts as /32 or /128), canonical text. */
export function expandCidr(cidr: string, maxHosts = MAX_STATIC_HOSTS): string[] {
  const [ip, lenText, extra] = cidr.split('/');
  const bad = (why: string) =>
    new DnssealError('registry', 'static_invalid', `static entry ${cidr}: ${why}`);
  if (extra !== undefined || !ip) throw bad('not an address or CIDR');
  const v4 = parseV4(ip);
  const v6 = v4 ? undefined : parseV6(ip);
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
  const count = 2 ** hostBits;
  const out: string[] = [];
  if (v4) {
    const base = ((v4[0]! << 24) | (v4[1]! << 16) | (v4[2]! << 8) | v4[3]!) >>> 0;
    const net = hostBits === 0 ? base : (base & ~(count - 1)) >>> 0;
    for (let i = 0; i < count; i++) {
      const a = (net + i) >>> 0;
      out.push(`${a >>> 24}.${(a >>> 16) & 255}.${(a >>> 8) & 255}.${a & 255}`);
    }
    return out;
  }
  // hostBits ≤ 30 here, so only the last two groups vary.
  const g = v6!.slice();
  const low = ((g[6]! << 16) | g[7]!) >>> 0;
  const net = hostBits === 0 ? low : (low & ~(count - 1)) >>> 0;
  for (let i = 0; i < count; i++) {
    const a = (net + i) >>> 0;
    g[6] = a >>> 16;
    g[7] = a & 0xffff;
    out.push(formatV6(g));
  }
  return out;
}
