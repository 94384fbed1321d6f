/**
 * Canonical text for addresses read off the wire: dotted quad for IPv4 and RFC 5952 for
 * IPv6 (lower-case hex, no leading zeros, the longest run of ≥ 2 zero groups as `::`,
 * the first such run on a tie). This is the form `DestKey.addr` requires.
 */
import { WireError } from './wire.ts';

export function ipv4Text(buf: Uint8Array, off: number): string {
  if (off + 4 > buf.length) throw new WireError(`IPv4 address truncated at ${off}`);
  return `${buf[off]}.${buf[off + 1]}.${buf[off + 2]}.${buf[off + 3]}`;
}

export function ipv6Text(buf: Uint8Array, off: number): string {
  if (off + 16 > buf.length) throw new WireError(`IPv6 address truncated at ${off}`);
  const groups = new Array<number>(8);
  for (let i = 0; i < 8; i++) groups[i] = (buf[off + 2 * i]! << 8) | buf[off + 2 * i + 1]!;
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (bestLen < 2) return groups.map((g) => g.toString(16)).join(':');
  const head = groups.slice(0, bestStart).map((g) => g.toString(16)).join(':');
  const tail = groups.slice(bestStart + bestLen).map((g) => g.toString(16)).join(':');
  return `${head}::${tail}`;
}
