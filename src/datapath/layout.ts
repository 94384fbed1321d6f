/**
 * TypeScript mirror of the map layouts in `bpf/dnsseal.h` (the one source of truth). Every struct
 * below names the C struct it mirrors; `test/datapath/ebpf/layout.test.ts` compares these sizes
 * and offsets with the BTF of the compiled object, so the two cannot drift.
 *
 * Byte order: fields marked "host" are written in the machine's order (little-endian on every
 * architecture dnsseal supports — checked by `assertLittleEndian`), addresses in network order.
 * Every decoder checks the buffer length before reading.
 */
import { endianness } from 'node:os';
import { DnssealError } from '../util/errors.ts';

export const MARK_BASE = 0x5e510000;
/** DNSSEAL_MARK_ENCRYPTED: every dnsseal SA's output mark (strongSwan `set_mark_out`). */
export const MARK_ENCRYPTED = MARK_BASE;
export const FAMILY_V4 = 4;
export const FAMILY_V6 = 6;
export const GROUP_DEFAULT = 0;

/** Default max_entries (bpf/dnsseal.h DNSSEAL_*_MAX); DESTS_MAX is each of dnsseal_dests4 / _dests6. */
export const DESTS_MAX = 1048576;
export const CLIENTS_MAX = 65536;
export const CHANNELS_MAX = 4096;
/** dnsseal_counters slots: kind * CNT_IDS + id (ids ≥ CNT_IDS count in id 0). */
export const CNT_IDS = 1024;
export const CNT_KINDS = 7;
export const COUNTERS_MAX = CNT_KINDS * CNT_IDS;

/** struct dnsseal_dest4_key (dnsseal_dests4: IPv4 and IPv4-mapped) */
export const Dest4KeyLayout = { size: 8, group: 0, addr: 4 } as const;
/** struct dnsseal_dest6_key (dnsseal_dests6) */
export const Dest6KeyLayout = { size: 20, group: 0, addr: 4 } as const;
/** struct dnsseal_dest_key: the intercept maps' key (and the pre-split dnsseal_dests') */
export const DestKeyLayout = { size: 24, group: 0, family: 4, pad: 5, addr: 8 } as const;
/** struct dnsseal_dest_val */
export const DestValLayout = { size: 32, channel_id: 0, mark: 4, flags: 8, pad: 12, last_seen_ns: 16, expires_ns: 24 } as const;
/** struct dnsseal_config (dnsseal_config: ARRAY, one slot, key __u32 0) */
export const ConfigLayout = { size: 400, flags: 0, n4: 4, n6: 8, pad: 12, clients4: 16, clients6: 112 } as const;
/** struct dnsseal_cfg_client4 / dnsseal_cfg_client6 (the inline client table in dnsseal_config) */
export const CfgClient4Layout = { size: 12, net: 0, mask: 4, group: 8 } as const;
export const CfgClient6Layout = { size: 36, net: 0, mask: 16, group: 32 } as const;
/** DNSSEAL_CFG_CLIENTS: inline client CIDRs per source family. */
export const CFG_CLIENTS = 8;
/** struct dnsseal_client_key */
export const ClientKeyLayout = { size: 20, prefixlen: 0, addr: 4 } as const;
/** struct dnsseal_client_val */
export const ClientValLayout = { size: 4, group: 0 } as const;
/** struct dnsseal_channel_val (key: __u32 channel id, host order) */
export const ChannelValLayout = { size: 32, mark: 0, state: 4, flags: 8, gw_family: 12, pad: 13, tls_port: 14, gw_addr: 16 } as const;
/** struct dnsseal_ike_sock (dnsseal_ike_socks: SK_STORAGE, key a socket fd of the updating process) */
export const IkeSockLayout = { size: 4, flags: 0 } as const;
/** DNSSEAL_IKE_SOCK_* */
export const IKE_SOCK_CHARON = 0x1;
/** struct dnsseal_counter_val (key: __u32 slot; one value per possible CPU, each rounded to 8 bytes) */
export const CounterValLayout = { size: 16, packets: 0, bytes: 8 } as const;

/** DNSSEAL_DEST_F_* (the same values as src/datapath/datapath.ts DEST_F_*) */
export const DEST_F_STATIC = 0x1;
export const DEST_F_INTERCEPT = 0x2;
export const DEST_F_RETIRED = 0x4;
export const DEST_F_BLOCKED = 0x8;
export const DEST_F_FORM_V4 = 0x40000000;
export const DEST_F_FORM_MAPPED = 0x80000000;
export const DEST_F_FORM_MASK = (DEST_F_FORM_V4 | DEST_F_FORM_MAPPED) >>> 0;
/** DNSSEAL_CHAN_* / DNSSEAL_CHAN_F_* */
export const CHAN_DOWN = 0;
export const CHAN_UP = 1;
export const CHAN_F_PEER = 0x1;
export const CHAN_F_HAS_GW = 0x2;
/** A `protocol: tls` channel (its TCP goes through the relay; tls_port: the peer's TLS port, 0 = none). */
export const CHAN_F_TLS = 0x4;
/** DNSSEAL_CFG_F_* */
export const CFG_F_INLINE = 0x1;
/** DNSSEAL_CNT_* */
export const CNT_MARKED = 1;
export const CNT_SOCK_MARKED = 2;
export const CNT_HOST_SENT = 3;
export const CNT_GUARD_DROP = 4;
export const CNT_GUARD_PASS = 5;
export const CNT_RETIRED = 6;
/** DNSSEAL_DROP_* and DNSSEAL_PASS_* by number, for metrics labels. */
export const DROP_REASONS: Record<number, string> = {
  1: 'plain_protected',
  2: 'marked_plain',
  3: 'fragment',
  4: 'malformed',
  5: 'exthdr',
  6: 'blocked',
  7: 'in_plain',
  8: 'in_fragment',
  16: 'tls_not_tcp',
  17: 'tls_bypass',
};
export const PASS_REASONS: Record<number, string> = { 1: 'esp', 2: 'esp_in_udp', 3: 'ike', 4: 'nd', 5: 'in_esp', 6: 'in_decrypted', 7: 'in_ike', 16: 'tls' };

export function assertLittleEndian(): void {
  if (endianness() !== 'LE') {
    throw new DnssealError('bpf', 'unsupported', 'map layouts assume a little-endian host; this one is big-endian');
  }
}

function need(buf: Uint8Array, size: number, what: string): DataView {
  if (buf.length < size) throw new DnssealError('bpf', 'layout', `${what}: ${buf.length} bytes, need ${size}`);
  return new DataView(buf.buffer, buf.byteOffset, size);
}

/** An address as it sits in a key: family 4 (4 bytes used) or 6 (16 bytes). */
export interface KeyAddr {
  family: typeof FAMILY_V4 | typeof FAMILY_V6;
  /** 4 bytes for family 4, 16 for family 6, network order. */
  bytes: Uint8Array;
}

export interface RawDestKey {
  group: number;
  addr: KeyAddr;
}

/** struct dnsseal_dest4_key for family 4, struct dnsseal_dest6_key for family 6. */
export function destKeySize(family: KeyAddr['family']): number {
  return family === FAMILY_V4 ? Dest4KeyLayout.size : Dest6KeyLayout.size;
}

/** Encodes the key of dnsseal_dests4 or dnsseal_dests6, by the address's family. */
export function encodeDestKey(k: RawDestKey, out: Uint8Array = new Uint8Array(destKeySize(k.addr.family))): Uint8Array {
  const L = k.addr.family === FAMILY_V4 ? Dest4KeyLayout : Dest6KeyLayout;
  const name = k.addr.family === FAMILY_V4 ? 'dnsseal_dest4_key' : 'dnsseal_dest6_key';
  const dv = need(out, L.size, name);
  if (k.addr.bytes.length !== L.size - L.addr) throw new DnssealError('bpf', 'layout', `${name}: address of ${k.addr.bytes.length} bytes`);
  out.fill(0, 0, L.size);
  dv.setUint32(L.group, k.group >>> 0, true);
  out.set(k.addr.bytes, L.addr);
  return out;
}

/** Decodes a key of dnsseal_dests4 (family 4) or dnsseal_dests6 (family 6). */
export function decodeDestKey(buf: Uint8Array, family: KeyAddr['family']): RawDestKey {
  const L = family === FAMILY_V4 ? Dest4KeyLayout : Dest6KeyLayout;
  const dv = need(buf, L.size, family === FAMILY_V4 ? 'dnsseal_dest4_key' : 'dnsseal_dest6_key');
  return { group: dv.getUint32(L.group, true), addr: { family, bytes: buf.slice(L.addr, L.size) } };
}

/** struct dnsseal_dest_key (24 bytes: group, family, address): the pre-split dnsseal_dests' key. */
export function decodeFamilyDestKey(buf: Uint8Array): RawDestKey {
  const dv = need(buf, DestKeyLayout.size, 'dnsseal_dest_key');
  const family = buf[DestKeyLayout.family];
  if (family !== FAMILY_V4 && family !== FAMILY_V6) {
    throw new DnssealError('bpf', 'layout', `dnsseal_dest_key: unknown family ${family}`);
  }
  const n = family === FAMILY_V4 ? 4 : 16;
  return {
    group: dv.getUint32(DestKeyLayout.group, true),
    addr: { family, bytes: buf.slice(DestKeyLayout.addr, DestKeyLayout.addr + n) },
  };
}

export interface RawDestVal {
  channelId: number;
  mark: number;
  flags: number;
  /** bpf_ktime_get_ns() of the last packet, 0n = never. */
  lastSeenNs: bigint;
  /** CLOCK_MONOTONIC ns when the DNS hold runs out, 0n = none. */
  expiresNs: bigint;
}

export function encodeDestVal(v: RawDestVal, out: Uint8Array = new Uint8Array(DestValLayout.size)): Uint8Array {
  const dv = need(out, DestValLayout.size, 'dnsseal_dest_val');
  out.fill(0, 0, DestValLayout.size);
  dv.setUint32(DestValLayout.channel_id, v.channelId >>> 0, true);
  dv.setUint32(DestValLayout.mark, v.mark >>> 0, true);
  dv.setUint32(DestValLayout.flags, v.flags >>> 0, true);
  dv.setBigUint64(DestValLayout.last_seen_ns, v.lastSeenNs, true);
  dv.setBigUint64(DestValLayout.expires_ns, v.expiresNs, true);
  return out;
}

export function decodeDestVal(buf: Uint8Array): RawDestVal {
  const dv = need(buf, DestValLayout.size, 'dnsseal_dest_val');
  return {
    channelId: dv.getUint32(DestValLayout.channel_id, true),
    mark: dv.getUint32(DestValLayout.mark, true),
    flags: dv.getUint32(DestValLayout.flags, true),
    lastSeenNs: dv.getBigUint64(DestValLayout.last_seen_ns, true),
    expiresNs: dv.getBigUint64(DestValLayout.expires_ns, true),
  };
}

/**
 * The value of the pre-split dnsseal_dests (before expiry was kept): 24 bytes, no expires_ns. No
 * longer in the object, so not BTF-checked: test/datapath/ebpf/layout.test.ts has its golden bytes.
 */
export const LegacyDestValLayout = { size: 24, channel_id: 0, mark: 4, flags: 8, pad: 12, last_seen_ns: 16 } as const;

export function decodeLegacyDestVal(buf: Uint8Array): RawDestVal {
  const dv = need(buf, LegacyDestValLayout.size, 'dnsseal_dest_val (24-byte layout)');
  return {
    channelId: dv.getUint32(LegacyDestValLayout.channel_id, true),
    mark: dv.getUint32(LegacyDestValLayout.mark, true),
    flags: dv.getUint32(LegacyDestValLayout.flags, true),
    lastSeenNs: dv.getBigUint64(LegacyDestValLayout.last_seen_ns, true),
    expiresNs: 0n,
  };
}

/** One row of the inline client table: network-order net and mask (4 or 16 bytes), group. */
export interface CfgClient {
  net: Uint8Array;
  mask: Uint8Array;
  group: number;
}

export interface RawConfig {
  flags: number;
  v4: CfgClient[];
  v6: CfgClient[];
}

export function encodeConfig(c: RawConfig, out: Uint8Array = new Uint8Array(ConfigLayout.size)): Uint8Array {
  const dv = need(out, ConfigLayout.size, 'dnsseal_config');
  if (c.v4.length > CFG_CLIENTS || c.v6.length > CFG_CLIENTS) {
    throw new DnssealError('bpf', 'layout', `dnsseal_config: ${c.v4.length} IPv4 / ${c.v6.length} IPv6 clients, at most ${CFG_CLIENTS} each`);
  }
  out.fill(0, 0, ConfigLayout.size);
  dv.setUint32(ConfigLayout.flags, c.flags >>> 0, true);
  dv.setUint32(ConfigLayout.n4, c.v4.length, true);
  dv.setUint32(ConfigLayout.n6, c.v6.length, true);
  c.v4.forEach((e, i) => {
    const at = ConfigLayout.clients4 + i * CfgClient4Layout.size;
    if (e.net.length !== 4 || e.mask.length !== 4) throw new DnssealError('bpf', 'layout', 'dnsseal_cfg_client4: net and mask must be 4 bytes');
    out.set(e.net, at + CfgClient4Layout.net);
    out.set(e.mask, at + CfgClient4Layout.mask);
    dv.setUint32(at + CfgClient4Layout.group, e.group >>> 0, true);
  });
  c.v6.forEach((e, i) => {
    const at = ConfigLayout.clients6 + i * CfgClient6Layout.size;
    if (e.net.length !== 16 || e.mask.length !== 16) throw new DnssealError('bpf', 'layout', 'dnsseal_cfg_client6: net and mask must be 16 bytes');
    out.set(e.net, at + CfgClient6Layout.net);
    out.set(e.mask, at + CfgClient6Layout.mask);
    dv.setUint32(at + CfgClient6Layout.group, e.group >>> 0, true);
  });
  return out;
}

export function decodeConfig(buf: Uint8Array): RawConfig {
  const dv = need(buf, ConfigLayout.size, 'dnsseal_config');
  const n4 = dv.getUint32(ConfigLayout.n4, true);
  const n6 = dv.getUint32(ConfigLayout.n6, true);
  if (n4 > CFG_CLIENTS || n6 > CFG_CLIENTS) throw new DnssealError('bpf', 'layout', `dnsseal_config: n4 ${n4} / n6 ${n6} over ${CFG_CLIENTS}`);
  const row = (at: number, L: typeof CfgClient4Layout | typeof CfgClient6Layout, n: number): CfgClient => ({
    net: buf.slice(at + L.net, at + L.net + n),
    mask: buf.slice(at + L.mask, at + L.mask + n),
    group: dv.getUint32(at + L.group, true),
  });
  return {
    flags: dv.getUint32(ConfigLayout.flags, true),
    v4: Array.from({ length: n4 }, (_, i) => row(ConfigLayout.clients4 + i * CfgClient4Layout.size, CfgClient4Layout, 4)),
    v6: Array.from({ length: n6 }, (_, i) => row(ConfigLayout.clients6 + i * CfgClient6Layout.size, CfgClient6Layout, 16)),
  };
}

/** LPM key: IPv4 is stored IPv4-mapped, prefix + 96. */
export function encodeClientKey(addr: KeyAddr, prefix: number, out: Uint8Array = new Uint8Array(ClientKeyLayout.size)): Uint8Array {
  const dv = need(out, ClientKeyLayout.size, 'dnsseal_client_key');
  out.fill(0, 0, ClientKeyLayout.size);
  if (addr.family === FAMILY_V4) {
    dv.setUint32(ClientKeyLayout.prefixlen, 96 + prefix, true);
    out[ClientKeyLayout.addr + 10] = 0xff;
    out[ClientKeyLayout.addr + 11] = 0xff;
    out.set(addr.bytes, ClientKeyLayout.addr + 12);
  } else {
    dv.setUint32(ClientKeyLayout.prefixlen, prefix, true);
    out.set(addr.bytes, ClientKeyLayout.addr);
  }
  return out;
}

export function encodeU32(v: number): Uint8Array {
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, v >>> 0, true);
  return out;
}

export function decodeU32(buf: Uint8Array): number {
  return need(buf, 4, 'u32').getUint32(0, true);
}

export interface RawChannelVal {
  mark: number;
  state: number;
  flags: number;
  gateway?: KeyAddr;
  /** CHAN_F_TLS `peer` channel: the TLS port the relay connects to (0 or absent: none). */
  tlsPort?: number;
}

export function encodeChannelVal(v: RawChannelVal, out: Uint8Array = new Uint8Array(ChannelValLayout.size)): Uint8Array {
  const dv = need(out, ChannelValLayout.size, 'dnsseal_channel_val');
  out.fill(0, 0, ChannelValLayout.size);
  dv.setUint32(ChannelValLayout.mark, v.mark >>> 0, true);
  dv.setUint32(ChannelValLayout.state, v.state >>> 0, true);
  dv.setUint32(ChannelValLayout.flags, (v.flags | (v.gateway ? CHAN_F_HAS_GW : 0)) >>> 0, true);
  if (v.gateway) {
    out[ChannelValLayout.gw_family] = v.gateway.family;
    out.set(v.gateway.bytes, ChannelValLayout.gw_addr);
  }
  dv.setUint16(ChannelValLayout.tls_port, v.tlsPort ?? 0, false);
  return out;
}

export function decodeChannelVal(buf: Uint8Array): RawChannelVal {
  const dv = need(buf, ChannelValLayout.size, 'dnsseal_channel_val');
  const fam = buf[ChannelValLayout.gw_family];
  const flags = dv.getUint32(ChannelValLayout.flags, true);
  const out: RawChannelVal = { mark: dv.getUint32(ChannelValLayout.mark, true), state: dv.getUint32(ChannelValLayout.state, true), flags };
  if ((flags & CHAN_F_HAS_GW) && (fam === FAMILY_V4 || fam === FAMILY_V6)) {
    const n = fam === FAMILY_V4 ? 4 : 16;
    out.gateway = { family: fam, bytes: buf.slice(ChannelValLayout.gw_addr, ChannelValLayout.gw_addr + n) };
  }
  const tlsPort = dv.getUint16(ChannelValLayout.tls_port, false);
  if (tlsPort) out.tlsPort = tlsPort;
  return out;
}

/** Slot → (kind, id) of dnsseal_counters. */
export function counterSlot(slot: number): { kind: number; id: number } {
  return { kind: Math.floor(slot / CNT_IDS), id: slot % CNT_IDS };
}

/** Sums a PERCPU value buffer (ncpu × 16 bytes). */
export function sumCounterVals(buf: Uint8Array, ncpu: number): { packets: bigint; bytes: bigint } {
  const dv = need(buf, ncpu * CounterValLayout.size, 'dnsseal_counter_val[ncpu]');
  let packets = 0n;
  let bytes = 0n;
  for (let i = 0; i < ncpu; i++) {
    packets += dv.getBigUint64(i * CounterValLayout.size + CounterValLayout.packets, true);
    bytes += dv.getBigUint64(i * CounterValLayout.size + CounterValLayout.bytes, true);
  }
  return { packets, bytes };
}

/* ==== intercept (#6) — mirrors the "intercept" section of bpf/dnsseal.h; owned by src/intercept/ ==== */
/** DNSSEAL_ICPT_MAX: max_entries of dnsseal_icpt_fwd and dnsseal_icpt_rev. */
export const ICPT_MAX = 262144;
/** struct dnsseal_icpt_val (keys of both intercept maps: struct dnsseal_dest_key). */
export const IcptValLayout = { size: 40, family: 0, pad: 1, addr: 4, pad2: 20, expires_ns: 24, last_seen_ns: 32 } as const;
/** dnsseal_icpt_counters (PERCPU_ARRAY of dnsseal_counter_val): DNSSEAL_ICPT_CNT_* kinds; DNSSEAL_ICPT_DROP_* ids. */
export const ICPT_CNT_KINDS = 3;
export const ICPT_CNT_IN = 0;
export const ICPT_CNT_OUT = 1;
export const ICPT_CNT_DROP = 2;
export const ICPT_DROP_REASONS: Record<number, string> = { 1: 'unprotected', 2: 'family', 3: 'rewrite' };
/* ==== end intercept ==== */
