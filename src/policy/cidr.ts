/**
 * IP addresses and CIDRs as bytes, and a longest-prefix table (client CIDR → table id,
 * figure 6). IPv4-mapped IPv6 client addresses (`::ffff:1.2.3.4`, what a dual-stack socket
 * reports) are looked up as IPv4.
 */
import { formatIP, parseIP } from '../util/ip.ts';

/**
 * The address functions live in src/util/ip.ts (the one parser and formatter). Re-exported
 * for code written against this module before that; new code imports src/util/ip.ts.
 */
export { formatIP, isIP, parseIP, parseIPv4, parseIPv6 } from '../util/ip.ts';

export interface Cidr {
  bytes: Uint8Array;
  prefix: number;
  /** Canonical text (`10.0.0.0/8`, `2001:db8::/32`). */
  text: string;
}

/** Parses `ADDR/LEN` or a bare address (a host route). Throws an Error saying what is wrong. */
export function parseCidr(text: string): Cidr {
  if (typeof text !== 'string') throw new Error(`a CIDR must be a string like 10.0.0.0/8`);
  const [addr, len, extra] = text.trim().split('/');
  if (extra !== undefined) throw new Error(`"${text}" is not a CIDR (ADDR/LEN)`);
  const bytes = parseIP(addr ?? '');
  if (!bytes) throw new Error(`"${text}": "${addr}" is not an IPv4 or IPv6 address`);
  const max = bytes.length * 8;
  const mappedV6 = (addr ?? '').includes(':') && bytes.length === 4;
  let prefix = max;
  if (len !== undefined) {
    if (!/^[0-9]{1,3}$/.test(len)) throw new Error(`"${text}": prefix length "${len}" is not a number`);
    prefix = Number(len) - (mappedV6 ? 96 : 0);
    if (prefix < 0 || prefix > max) throw new Error(`"${text}": prefix length must be 0..${max}`);
  }
  const masked = maskBytes(bytes, prefix);
  if (!masked.every((b, i) => b === bytes[i])) {
    throw new Error(`"${text}" has host bits set; did you mean ${formatIP(masked)}/${prefix}?`);
  }
  return { bytes: masked, prefix, text: `${formatIP(masked)}/${prefix}` };
}

/** Whether two CIDR texts share an address (one contains the other); false across families or when either is invalid. */
export function cidrsOverlap(a: string, b: string): boolean {
  let x: Cidr;
  let y: Cidr;
  try {
    x = parseCidr(a);
    y = parseCidr(b);
  } catch {
    return false;
  }
  if (x.bytes.length !== y.bytes.length) return false;
  const p = Math.min(x.prefix, y.prefix);
  const mx = maskBytes(x.bytes, p);
  const my = maskBytes(y.bytes, p);
  return mx.every((v, i) => v === my[i]);
}

function maskBytes(b: Uint8Array, prefix: number): Uint8Array {
  const out = new Uint8Array(b.length);
  for (let i = 0; i < b.length; i++) {
    const bits = Math.max(0, Math.min(8, prefix - i * 8));
    out[i] = bits === 0 ? 0 : b[i]! & ((0xff << (8 - bits)) & 0xff);
  }
  return out;
}

/** An IPv4 address's 4 bytes as one unsigned 32-bit number. */
function u32(b: Uint8Array): number {
  return ((b[0]! << 24) | (b[1]! << 16) | (b[2]! << 8) | b[3]!) >>> 0;
}

/** The first `len` bits of an IPv4 address (as `u32`), the rest zero. */
function mask32(a: number, len: number): number {
  return len === 0 ? 0 : (a & (-1 << (32 - len))) >>> 0; // a shift by 32 would be a shift by 0
}

/**
 * An IPv6 prefix as a Map key: the first `len` bits as eight 16-bit code units, the rest
 * zero. One string per probe, no per-byte formatting.
 */
function key6(b: Uint8Array, len: number): string {
  const w = (i: number) => {
    const bits = len - i * 16;
    const word = (b[2 * i]! << 8) | b[2 * i + 1]!;
    return bits >= 16 ? word : bits <= 0 ? 0 : word & (0xffff << (16 - bits)) & 0xffff;
  };
  return String.fromCharCode(w(0), w(1), w(2), w(3), w(4), w(5), w(6), w(7));
}

/**
 * Longest-prefix match from CIDRs to values, IPv4 and IPv6 kept apart. One Map per prefix
 * length, probed longest first: IPv4 keyed by the masked address as a number, IPv6 by
 * `key6`. (On the query path it sits behind the `ClientLookup` memo; this is the cost of a
 * client's first query, and of every query from spoofed sources.)
 */
export class PrefixTable<V> {
  /** [prefix length, masked address → value], longest first. */
  private readonly probes4: Array<[number, Map<number, V>]> = [];
  private readonly probes6: Array<[number, Map<string, V>]> = [];
  /** Number of prefixes held (IPv4 and IPv6). */
  size = 0;

  /** Returns false if the same prefix was already present (the first one stays). */
  add(cidr: Cidr, value: V): boolean {
    const added =
      cidr.bytes.length === 4
        ? PrefixTable.put(this.probes4, cidr.prefix, u32(cidr.bytes), value)
        : PrefixTable.put(this.probes6, cidr.prefix, key6(cidr.bytes, 128), value);
    if (added) this.size++;
    return added;
  }

  private static put<K, V>(probes: Array<[number, Map<K, V>]>, len: number, k: K, value: V): boolean {
    let m = probes.find(([l]) => l === len)?.[1];
    if (!m) {
      probes.push([len, (m = new Map())]);
      probes.sort((a, b) => b[0] - a[0]);
    }
    if (m.has(k)) return false;
    m.set(k, value);
    return true;
  }

  lookup(ip: string): V | undefined {
    const b = parseIP(ip);
    if (!b) return undefined;
    if (b.length === 4) {
      const a = u32(b);
      for (const [len, m] of this.probes4) {
        const v = m.get(mask32(a, len));
        if (v !== undefined) return v;
      }
      return undefined;
    }
    for (const [len, m] of this.probes6) {
      const v = m.get(key6(b, len));
      if (v !== undefined) return v;
    }
    return undefined;
  }
}
