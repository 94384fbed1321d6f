/**
 * SVCB / HTTPS rdata (RFC 9460 §2.2), which dns-packet 5.6.1 does not decode: it returns
 * the raw bytes for types 64 and 65. Only what the decision needs is kept: the priority,
 * the target name and the `ipv4hint` / `ipv6hint` addresses. Every read is bounds-checked
 * against the rdata, keys must be strictly increasing, and hint lengths must be whole
 * addresses; anything else is a `WireError` (the caller fails closed with SERVFAIL).
 */
import { ipv4Text, ipv6Text } from './ip-text.ts';
import { WireError } from './wire.ts';

export const SVC_KEY_MANDATORY = 0;
export const SVC_KEY_ALPN = 1;
export const SVC_KEY_PORT = 3;
export const SVC_KEY_IPV4HINT = 4;
export const SVC_KEY_ECH = 5;
export const SVC_KEY_IPV6HINT = 6;

export interface SvcbRdata {
  priority: number;
  /** Lower-case, no trailing dot; '' is the root ("the owner name" in ServiceMode). */
  target: string;
  /** Param keys present, in wire order. */
  keys: number[];
  ipv4hint: string[];
  ipv6hint: string[];
}

/** Parses the rdata at buf[off, off+len). The target name is never compressed (§2.2). */
export function parseSvcb(buf: Uint8Array, off: number, len: number): SvcbRdata {
  const end = off + len;
  if (end > buf.length) throw new WireError(`svcb: rdata runs past the end at ${off}`);
  if (len < 3) throw new WireError(`svcb: rdata of ${len} octets is too short`);
  const priority = (buf[off]! << 8) | buf[off + 1]!;
  let p = off + 2;
  const labels: string[] = [];
  let nameLen = 0;
  for (;;) {
    if (p >= end) throw new WireError('svcb: target name runs past the rdata');
    const l = buf[p]!;
    if (l === 0) {
      p++;
      break;
    }
    if (l > 63) throw new WireError('svcb: compressed or reserved label in target name');
    if (p + 1 + l > end) throw new WireError('svcb: target label runs past the rdata');
    nameLen += 1 + l;
    if (nameLen + 1 > 255) throw new WireError('svcb: target name longer than 255 octets');
    let s = '';
    for (let i = p + 1; i <= p + l; i++) {
      let c = buf[i]!;
      if (c >= 0x41 && c <= 0x5a) c += 0x20;
      s += c > 0x20 && c < 0x7f && c !== 0x2e && c !== 0x5c ? String.fromCharCode(c) : '\\' + c.toString().padStart(3, '0');
    }
    labels.push(s);
    p += 1 + l;
  }
  const out: SvcbRdata = { priority, target: labels.join('.'), keys: [], ipv4hint: [], ipv6hint: [] };
  let lastKey = -1;
  while (p < end) {
    if (p + 4 > end) throw new WireError('svcb: param header runs past the rdata');
    const key = (buf[p]! << 8) | buf[p + 1]!;
    const vlen = (buf[p + 2]! << 8) | buf[p + 3]!;
    p += 4;
    if (key <= lastKey) throw new WireError(`svcb: param key ${key} out of order`);
    if (p + vlen > end) throw new WireError(`svcb: param ${key} value runs past the rdata`);
    lastKey = key;
    out.keys.push(key);
    if (key === SVC_KEY_IPV4HINT) {
      if (vlen === 0 || vlen % 4 !== 0) throw new WireError(`svcb: ipv4hint of ${vlen} octets`);
      for (let a = p; a < p + vlen; a += 4) out.ipv4hint.push(ipv4Text(buf, a));
    } else if (key === SVC_KEY_IPV6HINT) {
      if (vlen === 0 || vlen % 16 !== 0) throw new WireError(`svcb: ipv6hint of ${vlen} octets`);
      for (let a = p; a < p + vlen; a += 16) out.ipv6hint.push(ipv6Text(buf, a));
    }
    p += vlen;
  }
  return out;
}

/** Encodes SVCB/HTTPS rdata (tests and fixtures build records with it). Keys must be sorted. */
export function encodeSvcb(
  priority: number,
  target: string,
  params: Array<{ key: number; value: Uint8Array }>,
): Uint8Array {
  const labels = target === '' || target === '.' ? [] : target.replace(/\.$/, '').split('.');
  const parts: number[] = [(priority >>> 8) & 0xff, priority & 0xff];
  for (const l of labels) {
    const bytes = new TextEncoder().encode(l);
    if (bytes.length < 1 || bytes.length > 63) throw new WireError(`svcb: bad label '${l}'`);
    parts.push(bytes.length, ...bytes);
  }
  parts.push(0);
  let last = -1;
  for (const { key, value } of params) {
    if (key <= last) throw new WireError(`svcb: param key ${key} out of order`);
    last = key;
    parts.push((key >>> 8) & 0xff, key & 0xff, (value.length >>> 8) & 0xff, value.length & 0xff, ...value);
  }
  return Uint8Array.from(parts);
}
