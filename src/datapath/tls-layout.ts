/**
 * TypeScript mirror of the tls channel interception's layouts in `bpf/dnsseal.h` ("tls channel
 * interception", issue 13); checked against BTF by test/datapath/ebpf/layout.test.ts like
 * ./layout.ts. Addresses and ports in network order, the rest little-endian (host).
 */
import { DnssealError } from '../util/errors.ts';
import { FAMILY_V4, FAMILY_V6, type KeyAddr } from './layout.ts';

/** struct dnsseal_tls_config (dnsseal_tls_config: ARRAY, one slot, key __u32 0) */
export const TlsConfigLayout = { size: 40, flags: 0, relay_tgid: 4, addr4: 8, port4: 12, port6: 14, addr6: 16, netns_cookie: 32 } as const;
/** struct dnsseal_tls_addr (dnsseal_tls_orig key and value, dnsseal_tls_cookie value) */
export const TlsAddrLayout = { size: 20, family: 0, pad: 1, port: 2, addr: 4 } as const;
/** DNSSEAL_TLS_LOCAL_MARK, DNSSEAL_TLS_TABLE: gateway mode's local delivery to the relay. */
export const TLS_LOCAL_MARK = 0x5e510000;
export const TLS_TABLE = 24145;
/** DNSSEAL_TLS_F_* */
export const TLS_F_RELAY4 = 0x1;
export const TLS_F_RELAY6 = 0x2;
/** DNSSEAL_TLS_SOCKS_MAX, DNSSEAL_TLS_CNT_MAX */
export const TLS_SOCKS_MAX = 65536;
export const TLS_CNT_MAX = 8;
/** DNSSEAL_TLS_CNT_* by slot, for metric labels. */
export const TLS_COUNTERS: Record<number, string> = { 1: 'redirected', 2: 'refused', 3: 'own', 4: 'steered', 5: 'no_relay' };

export interface TlsEndpoint {
  addr: KeyAddr;
  port: number;
}

export interface RawTlsConfig {
  /** The relay for IPv4 sockets (an IPv4 address). */
  relay4?: TlsEndpoint;
  /** The relay for IPv6 sockets (an IPv6 address, IPv4-mapped when the relay listens on IPv4 only). */
  relay6?: TlsEndpoint;
  /** The relay's process id as the kernel sees it (0: none exempt). */
  relayTgid: number;
  /** The relay's network namespace (SO_NETNS_COOKIE); 0 or absent: any. */
  netnsCookie?: bigint;
}

function view(buf: Uint8Array, size: number, what: string): DataView {
  if (buf.length < size) throw new DnssealError('bpf', 'layout', `${what}: ${buf.length} bytes, need ${size}`);
  return new DataView(buf.buffer, buf.byteOffset, size);
}

export function encodeTlsConfig(c: RawTlsConfig, out: Uint8Array = new Uint8Array(TlsConfigLayout.size)): Uint8Array {
  const dv = view(out, TlsConfigLayout.size, 'dnsseal_tls_config');
  out.fill(0, 0, TlsConfigLayout.size);
  let flags = 0;
  if (c.relay4) {
    if (c.relay4.addr.family !== FAMILY_V4) throw new DnssealError('bpf', 'layout', 'dnsseal_tls_config: relay4 must be IPv4');
    flags |= TLS_F_RELAY4;
    out.set(c.relay4.addr.bytes, TlsConfigLayout.addr4);
    dv.setUint16(TlsConfigLayout.port4, c.relay4.port, false);
  }
  if (c.relay6) {
    if (c.relay6.addr.family !== FAMILY_V6) throw new DnssealError('bpf', 'layout', 'dnsseal_tls_config: relay6 must be IPv6');
    flags |= TLS_F_RELAY6;
    out.set(c.relay6.addr.bytes, TlsConfigLayout.addr6);
    dv.setUint16(TlsConfigLayout.port6, c.relay6.port, false);
  }
  dv.setUint32(TlsConfigLayout.flags, flags, true);
  dv.setUint32(TlsConfigLayout.relay_tgid, c.relayTgid >>> 0, true);
  dv.setBigUint64(TlsConfigLayout.netns_cookie, c.netnsCookie ?? 0n, true);
  return out;
}

export function decodeTlsConfig(buf: Uint8Array): RawTlsConfig {
  const dv = view(buf, TlsConfigLayout.size, 'dnsseal_tls_config');
  const flags = dv.getUint32(TlsConfigLayout.flags, true);
  const out: RawTlsConfig = { relayTgid: dv.getUint32(TlsConfigLayout.relay_tgid, true) };
  const cookie = dv.getBigUint64(TlsConfigLayout.netns_cookie, true);
  if (cookie) out.netnsCookie = cookie;
  if (flags & TLS_F_RELAY4) out.relay4 = { addr: { family: FAMILY_V4, bytes: buf.slice(TlsConfigLayout.addr4, TlsConfigLayout.addr4 + 4) }, port: dv.getUint16(TlsConfigLayout.port4, false) };
  if (flags & TLS_F_RELAY6) out.relay6 = { addr: { family: FAMILY_V6, bytes: buf.slice(TlsConfigLayout.addr6, TlsConfigLayout.addr6 + 16) }, port: dv.getUint16(TlsConfigLayout.port6, false) };
  return out;
}

export function encodeTlsAddr(e: TlsEndpoint, out: Uint8Array = new Uint8Array(TlsAddrLayout.size)): Uint8Array {
  const dv = view(out, TlsAddrLayout.size, 'dnsseal_tls_addr');
  out.fill(0, 0, TlsAddrLayout.size);
  out[TlsAddrLayout.family] = e.addr.family;
  dv.setUint16(TlsAddrLayout.port, e.port, false);
  out.set(e.addr.bytes, TlsAddrLayout.addr);
  return out;
}

export function decodeTlsAddr(buf: Uint8Array): TlsEndpoint {
  const dv = view(buf, TlsAddrLayout.size, 'dnsseal_tls_addr');
  const fam = buf[TlsAddrLayout.family];
  if (fam !== FAMILY_V4 && fam !== FAMILY_V6) throw new DnssealError('bpf', 'layout', `dnsseal_tls_addr: unknown family ${fam}`);
  const n = fam === FAMILY_V4 ? 4 : 16;
  return { addr: { family: fam, bytes: buf.slice(TlsAddrLayout.addr, TlsAddrLayout.addr + n) }, port: dv.getUint16(TlsAddrLayout.port, false) };
}
