/**
 * Addresses as the intercept code handles them: canonical text (dotted quad / RFC 5952) plus raw
 * bytes, family 4 or 6 by the text's own form — an IPv4-mapped IPv6 text stays family 6 (16
 * bytes), unlike the registry's folding, because the NAT only translates within a family.
 * Pool ranges are (base, size) as bigints so an IPv6 /96 pool needs no enumeration.
 */
import { parseCidr } from '../policy/cidr.ts';
import { formatIP, parseIPv4, parseIPv6 } from '../util/ip.ts';
import { DnssealError } from '../util/errors.ts';

export type Family = 4 | 6;

export interface Addr {
  family: Family;
  bytes: Uint8Array;
  text: string;
}

export function parseAddr(text: string): Addr {
  const bytes = text.includes(':') ? parseIPv6(text) : parseIPv4(text);
  if (!bytes) throw new DnssealError('intercept', 'bad_address', `not an IP address: ${JSON.stringify(text)}`);
  return { family: bytes.length === 4 ? 4 : 6, bytes, text: formatIP(bytes) };
}

/** True for ::ffff:a.b.c.d (never handed out, never translated). */
export function isMapped(a: Addr): boolean {
  return a.family === 6 && a.bytes.subarray(0, 10).every((x) => x === 0) && a.bytes[10] === 0xff && a.bytes[11] === 0xff;
}

export function addrFromBytes(bytes: Uint8Array): Addr {
  return { family: bytes.length === 4 ? 4 : 6, bytes, text: formatIP(bytes) };
}

export function toBig(bytes: Uint8Array): bigint {
  let v = 0n;
  for (const b of bytes) v = (v << 8n) | BigInt(b);
  return v;
}

export function fromBig(v: bigint, len: number): Uint8Array {
  const out = new Uint8Array(len);
  for (let i = len - 1; i >= 0; i--) {
    out[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return out;
}

export interface Range {
  family: Family;
  cidr: string;
  base: bigint;
  size: bigint;
}

/** One pool CIDR. Every address of the prefix is usable: the prefix is routed to the node, not on-link. */
export function parseRange(cidr: string): Range {
  let c;
  try {
    c = parseCidr(cidr);
  } catch (err) {
    throw new DnssealError('intercept', 'bad_pool', `intercept pool ${cidr}: ${(err as Error).message}`);
  }
  const family: Family = c.bytes.length === 4 ? 4 : 6;
  // parseCidr folds ::ffff:a.b.c.d/n into IPv4; a pool is one family, written as such.
  if (family === 4 && cidr.includes(':')) {
    throw new DnssealError('intercept', 'bad_pool', `intercept pool ${cidr}: IPv4-mapped prefixes cannot be a pool`);
  }
  const bits = c.bytes.length * 8 - c.prefix;
  return { family, cidr: c.text, base: toBig(c.bytes), size: 1n << BigInt(bits) };
}

export function inRange(r: Range, a: Addr): boolean {
  if (r.family !== a.family) return false;
  const v = toBig(a.bytes);
  return v >= r.base && v < r.base + r.size;
}
