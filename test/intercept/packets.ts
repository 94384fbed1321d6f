/**
 * Ethernet frames with VALID checksums for the intercept NAT tests, and a checker that verifies
 * every checksum of a frame (IPv4 header; TCP/UDP/ICMP/ICMPv6 over the pseudo-header; and for an
 * ICMP error the quoted IPv4 header and quoted L4 checksum, when the whole inner packet is quoted).
 */
import { formatIP, parseIPv4, parseIPv6 } from '../../src/util/ip.ts';

export type Proto = 'tcp' | 'udp' | 'icmp';

export interface Pkt {
  src: string;
  dst: string;
  proto: Proto;
  sport?: number;
  dport?: number;
  payload?: Uint8Array;
  /** UDP over IPv4: send checksum 0 ("none"). */
  udpNoCsum?: boolean;
  /** IPv4 only: fragment offset (8-byte units); non-first fragments carry payload only. */
  fragOffset?: number;
}

function addr(t: string): Uint8Array {
  const b = t.includes(':') ? parseIPv6(t) : parseIPv4(t);
  if (!b) throw new Error(`bad address ${t}`);
  return b;
}

/** Ones' complement sum of big-endian 16-bit words. */
export function sum16(parts: Uint8Array[]): number {
  let s = 0;
  for (const p of parts) {
    for (let i = 0; i < p.length; i += 2) s += (p[i]! << 8) | (i + 1 < p.length ? p[i + 1]! : 0);
  }
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return s;
}

export function csum(parts: Uint8Array[]): number {
  return ~sum16(parts) & 0xffff;
}

function pseudo(src: Uint8Array, dst: Uint8Array, proto: number, len: number): Uint8Array {
  if (src.length === 4) {
    const p = new Uint8Array(12);
    p.set(src, 0);
    p.set(dst, 4);
    p[9] = proto;
    p[10] = len >> 8;
    p[11] = len & 0xff;
    return p;
  }
  const p = new Uint8Array(40);
  p.set(src, 0);
  p.set(dst, 16);
  new DataView(p.buffer).setUint32(32, len);
  p[39] = proto;
  return p;
}

const PNUM = { tcp: 6, udp: 17 } as const;

/** An IP packet (no Ethernet header) with valid checksums. */
export function ipPacket(p: Pkt): Uint8Array {
  const v6 = p.dst.includes(':');
  const s = addr(p.src);
  const d = addr(p.dst);
  const payload = p.payload ?? new TextEncoder().encode('dnsseal-intercept');
  const proto = p.proto === 'icmp' ? (v6 ? 58 : 1) : PNUM[p.proto];
  let l4: Uint8Array;
  if (p.fragOffset) {
    l4 = payload;
  } else if (p.proto === 'tcp') {
    l4 = new Uint8Array(20 + payload.length);
    const dv = new DataView(l4.buffer);
    dv.setUint16(0, p.sport ?? 40000);
    dv.setUint16(2, p.dport ?? 80);
    dv.setUint32(4, 0x01020304);
    l4[12] = 5 << 4;
    l4[13] = 0x18;
    dv.setUint16(14, 65535);
    l4.set(payload, 20);
    dv.setUint16(16, csum([pseudo(s, d, proto, l4.length), l4]));
  } else if (p.proto === 'udp') {
    l4 = new Uint8Array(8 + payload.length);
    const dv = new DataView(l4.buffer);
    dv.setUint16(0, p.sport ?? 40000);
    dv.setUint16(2, p.dport ?? 53);
    dv.setUint16(4, l4.length);
    l4.set(payload, 8);
    if (!p.udpNoCsum) dv.setUint16(6, csum([pseudo(s, d, proto, l4.length), l4]) || 0xffff);
  } else {
    l4 = new Uint8Array(8 + payload.length);
    l4[0] = v6 ? 128 : 8;
    new DataView(l4.buffer).setUint16(4, 0x4242);
    l4.set(payload, 8);
    const c = v6 ? csum([pseudo(s, d, proto, l4.length), l4]) : csum([l4]);
    new DataView(l4.buffer).setUint16(2, c);
  }
  return wrapIp(s, d, proto, l4, p.fragOffset ?? 0);
}

function wrapIp(s: Uint8Array, d: Uint8Array, proto: number, l4: Uint8Array, fragOffset = 0): Uint8Array {
  if (s.length === 4) {
    const ip = new Uint8Array(20 + l4.length);
    const dv = new DataView(ip.buffer);
    ip[0] = 0x45;
    dv.setUint16(2, ip.length);
    dv.setUint16(4, 0x1234);
    dv.setUint16(6, fragOffset);
    ip[8] = 64;
    ip[9] = proto;
    ip.set(s, 12);
    ip.set(d, 16);
    dv.setUint16(10, csum([ip.subarray(0, 20)]));
    ip.set(l4, 20);
    return ip;
  }
  const ip = new Uint8Array(40 + l4.length);
  const dv = new DataView(ip.buffer);
  ip[0] = 0x60;
  dv.setUint16(4, l4.length);
  ip[6] = proto;
  ip[7] = 64;
  ip.set(s, 8);
  ip.set(d, 24);
  ip.set(l4, 40);
  return ip;
}

/** An ICMP error from `src` to `dst` quoting `inner` (a whole IP packet): v4 type 3/3, v6 type 1/4. */
export function icmpError(src: string, dst: string, inner: Uint8Array): Uint8Array {
  const s = addr(src);
  const d = addr(dst);
  const v6 = s.length === 16;
  const l4 = new Uint8Array(8 + inner.length);
  l4[0] = v6 ? 1 : 3;
  l4[1] = v6 ? 4 : 3; // port unreachable
  l4.set(inner, 8);
  const proto = v6 ? 58 : 1;
  const c = v6 ? csum([pseudo(s, d, proto, l4.length), l4]) : csum([l4]);
  new DataView(l4.buffer).setUint16(2, c);
  return wrapIp(s, d, proto, l4);
}

export function eth(ip: Uint8Array): Uint8Array {
  const f = new Uint8Array(14 + ip.length);
  f.set([2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1]);
  new DataView(f.buffer).setUint16(12, (ip[0]! >> 4) === 6 ? 0x86dd : 0x0800);
  f.set(ip, 14);
  return f;
}

export interface Parsed {
  src: string;
  dst: string;
  proto: number;
  /** L4 bytes (to the end of the packet). */
  l4: Uint8Array;
  inner?: Parsed;
  /** Every checksum problem found; [] = all valid. */
  bad: string[];
}

const text = (b: Uint8Array): string => formatIP(b);

/** Parses an IP packet and verifies its checksums (recursing into an ICMP error's quote). */
export function parseIp(ip: Uint8Array, where = 'outer'): Parsed {
  const v6 = ip[0]! >> 4 === 6;
  const bad: string[] = [];
  let s: Uint8Array, d: Uint8Array, proto: number, l4: Uint8Array, frag = false;
  if (!v6) {
    const ihl = (ip[0]! & 0xf) * 4;
    if (csum([ip.subarray(0, ihl)]) !== 0) bad.push(`${where} IPv4 header checksum`);
    s = ip.slice(12, 16);
    d = ip.slice(16, 20);
    proto = ip[9]!;
    frag = (((ip[6]! << 8) | ip[7]!) & 0x1fff) !== 0;
    l4 = ip.subarray(ihl);
  } else {
    s = ip.slice(8, 24);
    d = ip.slice(24, 40);
    proto = ip[6]!;
    l4 = ip.subarray(40);
  }
  const out: Parsed = { src: text(s), dst: text(d), proto, l4, bad };
  if (frag) return out;
  const ps = pseudo(s, d, proto, l4.length);
  if (proto === 6 || proto === 58) {
    if (csum([ps, l4]) !== 0) bad.push(`${where} ${proto === 6 ? 'TCP' : 'ICMPv6'} checksum`);
  } else if (proto === 17) {
    const c = (l4[6]! << 8) | l4[7]!;
    if (!(c === 0 && !v6) && csum([ps, l4]) !== 0) bad.push(`${where} UDP checksum`);
  } else if (proto === 1) {
    if (csum([l4]) !== 0) bad.push(`${where} ICMP checksum`);
  }
  const isErr = (proto === 1 && [3, 4, 5, 11, 12].includes(l4[0]!)) || (proto === 58 && l4[0]! >= 1 && l4[0]! <= 4);
  if (isErr && where === 'outer') {
    out.inner = parseIp(l4.subarray(8), 'inner');
    bad.push(...out.inner.bad);
  }
  return out;
}

export function parseFrame(f: Uint8Array): Parsed {
  return parseIp(f.subarray(14));
}
