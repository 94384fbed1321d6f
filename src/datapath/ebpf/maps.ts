/**
 * The pinned maps, opened by path, with typed operations (layouts from ../layout.ts). Every call
 * is one or two bpf() syscalls on preallocated buffers: this is the DNS hot path.
 */
import { formatIP, parseCidr, parseIPv4, parseIPv6 } from '../../policy/cidr.ts';
import { DnssealError } from '../../util/errors.ts';
import type { DestEntry, DestKey, DestValue } from '../datapath.ts';
import { destKeyString } from '../datapath.ts';
import * as L from '../layout.ts';
import { BPF_ANY, BPF_EXIST, BPF_NOEXIST, Bpf, BpfError, EEXIST, ENOENT, stable } from './bpf-syscall.ts';
import { PerCpuArray } from './lib/percpu.ts';
import { openPinnedMaps } from './lib/pinned-object.ts';
import { MAPS, PinPaths } from './pins.ts';

export interface KeyForm {
  addr: L.KeyAddr;
  /** DEST_F_FORM_* for family 4 (which text form), 0 for IPv6. */
  form: number;
}

/** Text → key address. IPv4-mapped IPv6 folds into family 4 (what the packets carry). */
export function keyAddrOf(text: string): KeyForm {
  if (text.includes(':')) {
    const b = parseIPv6(text);
    if (b) {
      const mapped = b.subarray(0, 10).every((x) => x === 0) && b[10] === 0xff && b[11] === 0xff;
      if (mapped) return { addr: { family: L.FAMILY_V4, bytes: b.slice(12) }, form: L.DEST_F_FORM_MAPPED };
      return { addr: { family: L.FAMILY_V6, bytes: b }, form: 0 };
    }
  } else {
    const b = parseIPv4(text);
    if (b) return { addr: { family: L.FAMILY_V4, bytes: b }, form: L.DEST_F_FORM_V4 };
  }
  throw new DnssealError('datapath', 'bad_address', `not an IP address: ${JSON.stringify(text)}`);
}

/**
 * The text forms a kernel entry stands for (one per registered form). The mapped form comes back
 * in the project's canonical RFC 5952 hex form (`::ffff:c000:201`, as src/dns/ip-text.ts writes it).
 */
export function textsOf(addr: L.KeyAddr, flags: number): string[] {
  if (addr.family === L.FAMILY_V6) return [formatIP(addr.bytes)];
  const v4 = formatIP(addr.bytes);
  const out: string[] = [];
  if (flags & L.DEST_F_FORM_V4 || !(flags & L.DEST_F_FORM_MASK)) out.push(v4);
  if (flags & L.DEST_F_FORM_MAPPED) out.push(formatIP(new Uint8Array([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, ...addr.bytes])));
  return out;
}

export interface CounterRow {
  kind: number;
  id: number;
  packets: bigint;
  bytes: bigint;
}

export interface ChannelRow {
  id: number;
  mark: number;
  up: boolean;
  peer: boolean;
  gateway?: string;
}

const BATCH = 4096;

export class EbpfMaps {
  readonly fds: Record<keyof typeof MAPS, number>;
  readonly capacity: number;
  private readonly k = stable(L.DestKeyLayout.size);
  private readonly v = stable(L.DestValLayout.size);
  private readonly v2 = stable(L.DestValLayout.size);
  private readonly counterArray: PerCpuArray;
  private batchOk = true;
  private closed = false;

  constructor(
    private readonly bpf: Bpf,
    paths: PinPaths,
  ) {
    L.assertLittleEndian();
    const pins = Object.fromEntries(Object.entries(MAPS).map(([k, name]) => [k, paths.map(name)])) as Record<keyof typeof MAPS, string>;
    this.fds = openPinnedMaps(bpf, pins);
    this.capacity = bpf.mapInfo(this.fds.dests).maxEntries;
    this.counterArray = new PerCpuArray(bpf, this.fds.counters, L.CounterValLayout.size);
  }

  /** Insert or overwrite; keeps last_seen of an existing entry; throws map_full when full. */
  upsertDest(key: DestKey, value: DestValue): void {
    const { addr, form } = keyAddrOf(key.addr);
    L.encodeDestKey({ group: key.group, addr }, this.k.buf);
    const flags = (value.flags & ~L.DEST_F_FORM_MASK) >>> 0;
    L.encodeDestVal({ channelId: value.channelId, mark: value.mark, flags: (flags | form) >>> 0, lastSeenNs: 0n }, this.v.buf);
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        this.bpf.update(this.fds.dests, this.k, this.v, BPF_NOEXIST);
        return;
      } catch (err) {
        if (!(err instanceof BpfError)) throw err;
        if (err.code === 'map_full') {
          throw new DnssealError('datapath', 'map_full', `destination map is full (${this.capacity} entries); cannot add ${destKeyString(key)}`, { cause: err });
        }
        if (err.errno !== EEXIST) throw new DnssealError('datapath', 'kernel', `adding ${destKeyString(key)}: ${err.message}`, { cause: err });
      }
      if (!this.bpf.lookup(this.fds.dests, this.k, this.v2)) continue; // deleted meanwhile: insert again
      const old = L.decodeDestVal(this.v2.buf);
      L.encodeDestVal(
        { channelId: value.channelId, mark: value.mark, flags: (flags | form | (old.flags & L.DEST_F_FORM_MASK)) >>> 0, lastSeenNs: old.lastSeenNs },
        this.v.buf,
      );
      try {
        this.bpf.update(this.fds.dests, this.k, this.v, BPF_EXIST);
        return;
      } catch (err) {
        if (!(err instanceof BpfError && err.errno === ENOENT)) {
          throw new DnssealError('datapath', 'kernel', `updating ${destKeyString(key)}: ${String((err as Error).message)}`, { cause: err });
        }
      }
    }
    throw new DnssealError('datapath', 'kernel', `updating ${destKeyString(key)}: the entry kept changing underneath`);
  }

  /** Removes one text form; the kernel entry goes when no form holds it. Absent is not an error. */
  removeDest(key: DestKey): void {
    const { addr, form } = keyAddrOf(key.addr);
    L.encodeDestKey({ group: key.group, addr }, this.k.buf);
    if (form && this.bpf.lookup(this.fds.dests, this.k, this.v2)) {
      const old = L.decodeDestVal(this.v2.buf);
      const rest = old.flags & L.DEST_F_FORM_MASK & ~form;
      if (!(old.flags & form) && old.flags & L.DEST_F_FORM_MASK) return; // this form was never registered
      if (rest) {
        L.encodeDestVal({ ...old, flags: ((old.flags & ~form) >>> 0) }, this.v.buf);
        this.bpf.update(this.fds.dests, this.k, this.v, BPF_EXIST);
        return;
      }
    }
    this.bpf.delete(this.fds.dests, this.k);
  }

  lastSeenNs(key: DestKey): bigint | undefined {
    const { addr, form } = keyAddrOf(key.addr);
    L.encodeDestKey({ group: key.group, addr }, this.k.buf);
    if (!this.bpf.lookup(this.fds.dests, this.k, this.v2)) return undefined;
    const v = L.decodeDestVal(this.v2.buf);
    if (form && v.flags & L.DEST_F_FORM_MASK && !(v.flags & form)) return undefined;
    return v.lastSeenNs;
  }

  /** Every raw entry (batch lookup where the kernel has it, else get_next_key). */
  rawDests(): { key: L.RawDestKey; val: L.RawDestVal }[] {
    const out: { key: L.RawDestKey; val: L.RawDestVal }[] = [];
    if (this.batchOk) {
      try {
        this.scanBatch(out);
        return out;
      } catch (err) {
        if (!(err instanceof BpfError) || err.code === 'permission') throw err;
        this.batchOk = false;
        out.length = 0;
      }
    }
    const cur = stable(L.DestKeyLayout.size);
    const next = stable(L.DestKeyLayout.size);
    const val = stable(L.DestValLayout.size);
    let first = true;
    while (this.bpf.nextKey(this.fds.dests, first ? null : cur, next)) {
      first = false;
      cur.buf.set(next.buf);
      if (this.bpf.lookup(this.fds.dests, cur, val)) out.push({ key: L.decodeDestKey(cur.buf), val: L.decodeDestVal(val.buf) });
    }
    return out;
  }

  private scanBatch(out: { key: L.RawDestKey; val: L.RawDestVal }[]): void {
    const ks = L.DestKeyLayout.size;
    const vs = L.DestValLayout.size;
    const keys = stable(ks * BATCH);
    const vals = stable(vs * BATCH);
    const inB = stable(8);
    const outB = stable(8);
    let first = true;
    for (;;) {
      const r = this.bpf.lookupBatch(this.fds.dests, first ? null : inB, outB, keys, vals, BATCH);
      for (let i = 0; i < r.count; i++) {
        out.push({ key: L.decodeDestKey(keys.buf.subarray(i * ks, (i + 1) * ks)), val: L.decodeDestVal(vals.buf.subarray(i * vs, (i + 1) * vs)) });
      }
      if (r.done) return;
      inB.buf.set(outB.buf);
      first = false;
    }
  }

  listDests(): DestEntry[] {
    const rows: DestEntry[] = [];
    for (const { key, val } of this.rawDests()) {
      for (const addr of textsOf(key.addr, val.flags)) {
        const e: DestEntry = {
          key: { group: key.group, addr },
          value: { channelId: val.channelId, mark: val.mark, flags: (val.flags & ~L.DEST_F_FORM_MASK) >>> 0 },
        };
        if (val.lastSeenNs > 0n) e.lastSeenMs = Number(val.lastSeenNs / 1_000_000n);
        rows.push(e);
      }
    }
    return rows;
  }

  /** Replaces the client CIDR → group table with exactly `entries`. */
  setClients(entries: { cidr: string; group: number }[]): void {
    const want = new Map<string, { key: Uint8Array; group: number }>();
    for (const e of entries) {
      let c;
      try {
        c = parseCidr(e.cidr);
      } catch (err) {
        throw new DnssealError('datapath', 'bad_cidr', `client CIDR ${e.cidr}: ${(err as Error).message}`);
      }
      const fam = c.bytes.length === 4 ? L.FAMILY_V4 : L.FAMILY_V6;
      const key = L.encodeClientKey({ family: fam, bytes: c.bytes }, c.prefix);
      want.set(Buffer.from(key).toString('hex'), { key, group: e.group });
    }
    const k = stable(L.ClientKeyLayout.size);
    const next = stable(L.ClientKeyLayout.size);
    const v = stable(L.ClientValLayout.size);
    const stale: Uint8Array[] = [];
    let first = true;
    while (this.bpf.nextKey(this.fds.clients, first ? null : k, next)) {
      first = false;
      k.buf.set(next.buf);
      if (!want.has(Buffer.from(k.buf).toString('hex'))) stale.push(k.buf.slice());
    }
    for (const { key, group } of want.values()) {
      k.buf.set(key);
      v.buf.set(L.encodeU32(group));
      this.bpf.update(this.fds.clients, k, v, BPF_ANY);
    }
    for (const s of stale) {
      k.buf.set(s);
      this.bpf.delete(this.fds.clients, k);
    }
  }

  /** Replaces the channel table with exactly `rows`. */
  setChannels(rows: ChannelRow[]): void {
    const k = stable(4);
    const next = stable(4);
    const v = stable(L.ChannelValLayout.size);
    const want = new Set(rows.map((r) => r.id));
    const stale: number[] = [];
    let first = true;
    while (this.bpf.nextKey(this.fds.channels, first ? null : k, next)) {
      first = false;
      k.buf.set(next.buf);
      const id = L.decodeU32(k.buf);
      if (!want.has(id)) stale.push(id);
    }
    for (const r of rows) {
      k.buf.set(L.encodeU32(r.id));
      const gw = r.gateway ? keyAddrOf(r.gateway).addr : undefined;
      L.encodeChannelVal({ mark: r.mark, state: r.up ? L.CHAN_UP : L.CHAN_DOWN, flags: r.peer ? L.CHAN_F_PEER : 0, gateway: gw }, v.buf);
      this.bpf.update(this.fds.channels, k, v, BPF_ANY);
    }
    for (const id of stale) {
      k.buf.set(L.encodeU32(id));
      this.bpf.delete(this.fds.channels, k);
    }
  }

  /** Non-zero counters (one batch lookup over the per-CPU array; get-next-key fallback). */
  counters(): CounterRow[] {
    if (this.closed) return [];
    const out: CounterRow[] = [];
    for (const { index, value } of this.counterArray.entries(L.COUNTERS_MAX)) {
      const sum = L.sumCounterVals(value, this.counterArray.ncpu);
      if (sum.packets === 0n && sum.bytes === 0n) continue;
      out.push({ ...L.counterSlot(index), ...sum });
    }
    return out;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const fd of Object.values(this.fds)) this.bpf.close(fd);
  }
}
