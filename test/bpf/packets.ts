/**
 * Minimal Ethernet/IPv4/IPv6 frame builder for BPF_PROG_RUN (checksums are not looked at by the
 * programs and stay zero). Addresses are text; IPv4-mapped IPv6 destinations are allowed.
 */
import { parseIPv4, parseIPv6 } from '../../src/util/ip.ts';

export type L4 = 'tcp' | 'udp' | 'icmp' | 'esp';

export interface PacketSpec {
  src: string;
  dst: string;
  l4: L4;
  sport?: number;
  dport?: number;
  /** Total payload bytes after the L4 header. */
  payload?: number;
  /** IPv4: fragment offset in 8-byte units (>0 = non-first); IPv6: adds a fragment header. */
  fragOffset?: number;
  moreFragments?: boolean;
  /** IPv6: extension headers (hop-by-hop, dest opts) to put before the L4 header. */
  ext?: ('hop' | 'dst')[];
  /** Cut the frame to this many bytes. */
  truncate?: number;
  ethertype?: number;
  /** IPv4 header length field (words); default 5. */
  ihl?: number;
  /** ICMP / ICMPv6 type (default echo request). */
  icmpType?: number;
}

const PROTO: Record<L4, number> = { tcp: 6, udp: 17, icmp: 1, esp: 50 };

function l4Header(spec: PacketSpec, v6: boolean): Uint8Array {
  const sport = spec.sport ?? 40000;
  const dport = spec.dport ?? 443;
  switch (spec.l4) {
    case 'tcp': {
      const h = new Uint8Array(20);
      const dv = new DataView(h.buffer);
      dv.setUint16(0, sport);
      dv.setUint16(2, dport);
      h[12] = 5 << 4;
      h[13] = 0x18;
      return h;
    }
    case 'udp': {
      const h = new Uint8Array(8);
      const dv = new DataView(h.buffer);
      dv.setUint16(0, sport);
      dv.setUint16(2, dport);
      dv.setUint16(4, 8 + (spec.payload ?? 0));
      return h;
    }
    case 'icmp': {
      const h = new Uint8Array(8);
      h[0] = spec.icmpType ?? (v6 ? 128 : 8); // echo request unless told
      return h;
    }
    case 'esp': {
      const h = new Uint8Array(8);
      new DataView(h.buffer).setUint32(0, 0x1234abcd); // SPI
      return h;
    }
  }
}

export function frame(spec: PacketSpec): Uint8Array {
  const v6 = spec.dst.includes(':');
  const src = v6 ? parseIPv6(spec.src) : parseIPv4(spec.src);
  const dst = v6 ? parseIPv6(spec.dst) : parseIPv4(spec.dst);
  if (!src || !dst) throw new Error(`bad address in ${JSON.stringify(spec)}`);
  const nonFirst = (spec.fragOffset ?? 0) > 0;
  const l4 = nonFirst ? new Uint8Array(0) : l4Header(spec, v6);
  const payload = new Uint8Array(spec.payload ?? 16);
  let proto = PROTO[spec.l4];
  if (v6 && spec.l4 === 'icmp') proto = 58;
  const eth = new Uint8Array(14);
  eth.set([2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1]);
  new DataView(eth.buffer).setUint16(12, spec.ethertype ?? (v6 ? 0x86dd : 0x0800));
  let ip: Uint8Array;
  if (!v6) {
    ip = new Uint8Array(20);
    const dv = new DataView(ip.buffer);
    ip[0] = 0x40 | (spec.ihl ?? 5);
    dv.setUint16(2, 20 + l4.length + payload.length);
    dv.setUint16(6, ((spec.moreFragments ? 1 : 0) << 13) | (spec.fragOffset ?? 0));
    ip[8] = 64;
    ip[9] = proto;
    ip.set(src, 12);
    ip.set(dst, 16);
  } else {
    const exts: Uint8Array[] = [];
    const chain: number[] = [];
    for (const e of spec.ext ?? []) chain.push(e === 'hop' ? 0 : 60);
    if (spec.fragOffset !== undefined) chain.push(44);
    const all = [...chain, proto];
    for (let i = 0; i < chain.length; i++) {
      const h = new Uint8Array(8);
      h[0] = all[i + 1]!;
      if (chain[i] === 44) new DataView(h.buffer).setUint16(2, ((spec.fragOffset ?? 0) << 3) | (spec.moreFragments ? 1 : 0));
      else h[2] = 1, h[3] = 4; // PadN option filling the 6 bytes
      exts.push(h);
    }
    const extLen = exts.reduce((n, h) => n + h.length, 0);
    ip = new Uint8Array(40 + extLen);
    const dv = new DataView(ip.buffer);
    ip[0] = 0x60;
    dv.setUint16(4, extLen + l4.length + payload.length);
    ip[6] = all[0]!;
    ip[7] = 64;
    ip.set(src, 8);
    ip.set(dst, 24);
    let off = 40;
    for (const h of exts) {
      ip.set(h, off);
      off += h.length;
    }
  }
  const out = new Uint8Array(eth.length + ip.length + l4.length + payload.length);
  out.set(eth, 0);
  out.set(ip, 14);
  out.set(l4, 14 + ip.length);
  return spec.truncate !== undefined ? out.slice(0, spec.truncate) : out;
}

/** struct __sk_buff as BPF_PROG_TEST_RUN takes it (192 bytes): mark, gso_segs, gso_size. */
export const SKB_CTX_SIZE = 192;
export function skbCtx(opts: { mark?: number; gsoSize?: number; gsoSegs?: number; ifindex?: number } = {}): Uint8Array {
  const b = new Uint8Array(SKB_CTX_SIZE);
  const dv = new DataView(b.buffer);
  dv.setUint32(8, opts.mark ?? 0, true); // mark
  dv.setUint32(40, opts.ifindex ?? 0, true); // ifindex (0: the run uses the loopback device)
  dv.setUint32(164, opts.gsoSegs ?? 0, true); // gso_segs
  dv.setUint32(176, opts.gsoSize ?? 0, true); // gso_size
  return b;
}

export function ctxMark(ctx: Uint8Array): number {
  return new DataView(ctx.buffer, ctx.byteOffset).getUint32(8, true);
}
