/**
 * IP addresses and CIDRs as bytes, and a longest-prefix table (client CIDR → table id,
 * figure 6). IPv4-mapped IPv6 client addresses (`::ffff:1.2.3.4`, what a dual-stack socket
 * reports) are looked up as IPv4.
 */

export function parseIPv4(text: string): Uint8Array | null {
  const parts = text.split('.');
  if (parts.length !== 4) return null;
  const out = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    const p = parts[i]!;
    if (!/^(0|[1-9][0-9]{0,2})$/.test(p)) return null;
    const v = Number(p);
    if (v > 255) return null;
    out[i] = v;
  }
  return out;
}

export function parseIPv6(text: string): Uint8Array | null {
  const t = text.replace(/%[^%]+$/, ''); // zone id
  if (!/^[0-9A-Fa-f:.]+$/.test(t)) return null;
  const halves = t.split('::');
  if (halves.length > 2) return null;
  const words = (s: string): number[] | null => {
    if (s === '') return [];
    const out: number[] = [];
    const parts = s.split(':');
    for (let i = 0; i < parts.length; i++) {
      const p = parts[i]!;
      if (i === parts.length - 1 && p.includes('.')) {
        const v4 = parseIPv4(p);
        if (!v4) return null;
        out.push((v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!);
      } else {
        if (!/^[0-9A-Fa-f]{1,4}$/.test(p)) return null;
        out.push(parseInt(p, 16));
      }
    }
    return out;
  };
  const head = words(halves[0]!);
  const tail = halves.length === 2 ? words(halves[1]!) : [];
  if (!head || !tail) return null;
  const missing = 8 - head.length - tail.length;
  if (halves.length === 2 ? missing < 1 : missing !== 0) return null;
  const all = [...head, ...new Array<number>(missing).fill(0), ...tail];
  const out = new Uint8Array(16);
  all.forEach((w, i) => {
    out[2 * i] = w >> 8;
    out[2 * i + 1] = w & 0xff;
  });
  return out;
}

/** 4 or 16 bytes; an IPv4-mapped IPv6 address comes back as its 4 IPv4 bytes. */
export function parseIP(text: string): Uint8Array | null {
  if (text.includes(':')) {
    const b = parseIPv6(text);
    if (b && b.subarray(0, 10).every((x) => x === 0) && b[10] === 0xff && b[11] === 0xff) return b.slice(12);
    return b;
  }
  return parseIPv4(text);
}

export function isIP(text: string): boolean {
  return parseIP(text) !== null;
}

export interface Cidr {
  bytes: Uint8Array;
  prefix: number;
  /** Canonical text (`10.0.0.0/8`, `2001:db8::/32`). */
  text: string;
}

function formatIP(b: Uint8Array): string {
  if (b.length === 4) return Array.from(b).join('.');
  const w: number[] = [];
  for (let i = 0; i < 16; i += 2) w.push((b[i]! << 8) | b[i + 1]!);
  // RFC 5952: compress the longest run of ≥2 zero words
  let bestAt = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (w[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && w[j] === 0) j++;
    if (j - i > bestLen) [bestAt, bestLen] = [i, j - i];
    i = j;
  }
  const hex = w.map((x) => x.toString(16));
  if (bestAt < 0) return hex.join(':');
  return `${hex.slice(0, bestAt).join(':')}::${hex.slice(bestAt + bestLen).join(':')}`;
}

export { formatIP };

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

function maskBytes(b: Uint8Array, prefix: number): Uint8Array {
  const out = new Uint8Array(b.length);
  for (let i = 0; i < b.length; i++) {
    const bits = Math.max(0, Math.min(8, prefix - i * 8));
    out[i] = bits === 0 ? 0 : b[i]! & ((0xff << (8 - bits)) & 0xff);
  }
  return out;
}

function key(b: Uint8Array): string {
  let s = '';
  for (const x of b) s += x.toString(16).padStart(2, '0');
  return s;
}

/** Longest-prefix match from CIDRs to values, IPv4 and IPv6 kept apart. */
export class PrefixTable<V> {
  private readonly v4 = new Map<number, Map<string, V>>();
  private readonly v6 = new Map<number, Map<string, V>>();
  private lens4: number[] = [];
  private lens6: number[] = [];
  /** Number of prefixes held (IPv4 and IPv6). */
  size = 0;

  /** Returns false if the same prefix was already present (the first one stays). */
  add(cidr: Cidr, value: V): boolean {
    const fam = cidr.bytes.length === 4 ? this.v4 : this.v6;
    let m = fam.get(cidr.prefix);
    if (!m) {
      fam.set(cidr.prefix, (m = new Map()));
      this.lens4 = [...this.v4.keys()].sort((a, b) => b - a);
      this.lens6 = [...this.v6.keys()].sort((a, b) => b - a);
    }
    const k = key(cidr.bytes);
    if (m.has(k)) return false;
    m.set(k, value);
    this.size++;
    return true;
  }

  lookup(ip: string): V | undefined {
    const b = parseIP(ip);
    if (!b) return undefined;
    const [fam, lens] = b.length === 4 ? [this.v4, this.lens4] : [this.v6, this.lens6];
    for (const len of lens) {
      const v = fam.get(len)!.get(key(maskBytes(b, len)));
      if (v !== undefined) return v;
    }
    return undefined;
  }
}
