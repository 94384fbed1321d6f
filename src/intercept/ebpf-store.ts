/**
 * The `ebpf` InterceptStore: the pinned dnsseal_icpt_fwd / dnsseal_icpt_rev maps the NAT programs
 * read (layout: struct dnsseal_dest_key → struct dnsseal_icpt_val, bpf/dnsseal.h "intercept").
 * Every operation is a few in-process bpf() syscalls on preallocated buffers (C's bpf-syscall.ts).
 * Write order: rev, then fwd — the ingress translation (fwd) only exists once replies can be
 * translated back; a failed second write removes the first.
 * Times: expires/last_seen are CLOCK_MONOTONIC ns in the maps, Clock.monoMs() outside.
 */
import { BPF_ANY, type Bpf, stable } from '../datapath/ebpf/bpf-syscall.ts';
import { PerCpuArray } from '../datapath/ebpf/lib/percpu.ts';
import { openPinnedMaps } from '../datapath/ebpf/lib/pinned-object.ts';
import type { PinPaths } from '../datapath/ebpf/pins.ts';
import { CNT_IDS, CounterValLayout, DestKeyLayout, FAMILY_V4, FAMILY_V6, ICPT_CNT_DROP, ICPT_CNT_IN, ICPT_CNT_OUT, IcptValLayout, assertLittleEndian, sumCounterVals } from '../datapath/layout.ts';
import { formatIP } from '../util/ip.ts';
import type { Clock } from '../util/clock.ts';
import { DnssealError } from '../util/errors.ts';
import { parseAddr } from './address.ts';
import type { InterceptStore, StoredMapping } from './store.ts';

export const ICPT_MAPS = { fwd: 'dnsseal_icpt_fwd', rev: 'dnsseal_icpt_rev', counters: 'dnsseal_icpt_counters' } as const;

export interface IcptCounterRow {
  /** ICPT_CNT_* */
  kind: number;
  id: number;
  packets: bigint;
  bytes: bigint;
}

export interface IcptVal {
  /** Raw address bytes (4 or 16). */
  addr: Uint8Array;
  expiresNs: bigint;
  lastSeenNs: bigint;
}

export function encodeIcptKey(group: number, addr: Uint8Array, out: Uint8Array = new Uint8Array(DestKeyLayout.size)): Uint8Array {
  if (out.length < DestKeyLayout.size) throw new DnssealError('intercept', 'layout', `key buffer of ${out.length} bytes`);
  out.fill(0, 0, DestKeyLayout.size);
  new DataView(out.buffer, out.byteOffset).setUint32(DestKeyLayout.group, group >>> 0, true);
  out[DestKeyLayout.family] = addr.length === 4 ? FAMILY_V4 : FAMILY_V6;
  out.set(addr, DestKeyLayout.addr);
  return out;
}

export function decodeIcptKey(buf: Uint8Array): { group: number; addr: Uint8Array } {
  if (buf.length < DestKeyLayout.size) throw new DnssealError('intercept', 'layout', `key of ${buf.length} bytes`);
  const fam = buf[DestKeyLayout.family];
  if (fam !== FAMILY_V4 && fam !== FAMILY_V6) throw new DnssealError('intercept', 'layout', `key family ${fam}`);
  const n = fam === FAMILY_V4 ? 4 : 16;
  return { group: new DataView(buf.buffer, buf.byteOffset).getUint32(DestKeyLayout.group, true), addr: buf.slice(DestKeyLayout.addr, DestKeyLayout.addr + n) };
}

export function encodeIcptVal(v: IcptVal, out: Uint8Array = new Uint8Array(IcptValLayout.size)): Uint8Array {
  if (out.length < IcptValLayout.size) throw new DnssealError('intercept', 'layout', `value buffer of ${out.length} bytes`);
  out.fill(0, 0, IcptValLayout.size);
  const dv = new DataView(out.buffer, out.byteOffset);
  out[IcptValLayout.family] = v.addr.length === 4 ? FAMILY_V4 : FAMILY_V6;
  out.set(v.addr, IcptValLayout.addr);
  dv.setBigUint64(IcptValLayout.expires_ns, v.expiresNs, true);
  dv.setBigUint64(IcptValLayout.last_seen_ns, v.lastSeenNs, true);
  return out;
}

export function decodeIcptVal(buf: Uint8Array): IcptVal {
  if (buf.length < IcptValLayout.size) throw new DnssealError('intercept', 'layout', `value of ${buf.length} bytes`);
  const dv = new DataView(buf.buffer, buf.byteOffset);
  const fam = buf[IcptValLayout.family];
  if (fam !== FAMILY_V4 && fam !== FAMILY_V6) throw new DnssealError('intercept', 'layout', `value family ${fam}`);
  const n = fam === FAMILY_V4 ? 4 : 16;
  return {
    addr: buf.slice(IcptValLayout.addr, IcptValLayout.addr + n),
    expiresNs: dv.getBigUint64(IcptValLayout.expires_ns, true),
    lastSeenNs: dv.getBigUint64(IcptValLayout.last_seen_ns, true),
  };
}

export class EbpfInterceptStore implements InterceptStore {
  readonly kind = 'ebpf';
  private readonly fwdFd: number;
  private readonly revFd: number;
  private readonly cntFd: number;
  private readonly cnt: PerCpuArray;
  private readonly k = stable(DestKeyLayout.size);
  private readonly v = stable(IcptValLayout.size);
  private readonly old = stable(IcptValLayout.size);
  private closed = false;

  /** `clockOffsetMs` = Clock.monoMs() − CLOCK_MONOTONIC ms (see `clockOffset`). */
  constructor(
    private readonly bpf: Bpf,
    paths: PinPaths,
    private readonly clockOffsetMs: number,
  ) {
    assertLittleEndian();
    const fds = openPinnedMaps(bpf, { fwd: paths.map(ICPT_MAPS.fwd), rev: paths.map(ICPT_MAPS.rev), cnt: paths.map(ICPT_MAPS.counters) });
    this.fwdFd = fds.fwd;
    this.revFd = fds.rev;
    this.cntFd = fds.cnt;
    this.cnt = new PerCpuArray(bpf, this.cntFd, CounterValLayout.size);
  }

  private toNs(ms: number): bigint {
    return BigInt(Math.max(0, Math.round(ms - this.clockOffsetMs))) * 1_000_000n;
  }

  private toMs(ns: bigint): number | undefined {
    return ns > 0n ? Number(ns / 1_000_000n) + this.clockOffsetMs : undefined;
  }

  /** Writes key→(other, expires), keeping a last_seen already there for the same pair. */
  private write(fd: number, group: number, key: Uint8Array, other: Uint8Array, expiresMs: number): void {
    encodeIcptKey(group, key, this.k.buf);
    let last = 0n;
    if (this.bpf.lookup(fd, this.k, this.old)) {
      const o = decodeIcptVal(this.old.buf);
      if (Buffer.compare(o.addr, other) === 0) last = o.lastSeenNs;
    }
    encodeIcptVal({ addr: other, expiresNs: this.toNs(expiresMs), lastSeenNs: last }, this.v.buf);
    this.bpf.update(fd, this.k, this.v, BPF_ANY);
  }

  put(m: Omit<StoredMapping, 'lastSeenMs'>): void {
    const i = parseAddr(m.intercept).bytes;
    const r = parseAddr(m.real).bytes;
    if (i.length !== r.length) throw new DnssealError('intercept', 'family', `intercept ${m.intercept} and real ${m.real} differ in family`);
    this.write(this.revFd, m.group, r, i, m.expiresMs);
    try {
      this.write(this.fwdFd, m.group, i, r, m.expiresMs);
    } catch (err) {
      encodeIcptKey(m.group, r, this.k.buf);
      this.bpf.delete(this.revFd, this.k);
      throw err;
    }
  }

  remove(m: Pick<StoredMapping, 'group' | 'intercept' | 'real'>): void {
    const i = parseAddr(m.intercept).bytes;
    const r = parseAddr(m.real).bytes;
    encodeIcptKey(m.group, i, this.k.buf);
    this.bpf.delete(this.fwdFd, this.k);
    encodeIcptKey(m.group, r, this.k.buf);
    if (this.bpf.lookup(this.revFd, this.k, this.old) && Buffer.compare(decodeIcptVal(this.old.buf).addr, i) === 0) {
      this.bpf.delete(this.revFd, this.k);
    }
  }

  private scan(fd: number): { group: number; addr: Uint8Array; val: IcptVal }[] {
    const cur = stable(DestKeyLayout.size);
    const next = stable(DestKeyLayout.size);
    const val = stable(IcptValLayout.size);
    const out: { group: number; addr: Uint8Array; val: IcptVal }[] = [];
    let first = true;
    while (this.bpf.nextKey(fd, first ? null : cur, next)) {
      first = false;
      cur.buf.set(next.buf);
      if (this.bpf.lookup(fd, cur, val)) out.push({ ...decodeIcptKey(cur.buf), val: decodeIcptVal(val.buf) });
    }
    return out;
  }

  list(): (StoredMapping & { half?: 'fwd' | 'rev' })[] {
    const rev = new Map<string, { group: number; addr: Uint8Array; val: IcptVal }>();
    for (const e of this.scan(this.revFd)) rev.set(`${e.group}/${formatIP(e.addr)}`, e);
    const out: (StoredMapping & { half?: 'fwd' | 'rev' })[] = [];
    for (const f of this.scan(this.fwdFd)) {
      const intercept = formatIP(f.addr);
      const real = formatIP(f.val.addr);
      const rk = `${f.group}/${real}`;
      const r = rev.get(rk);
      const complete = r && formatIP(r.val.addr) === intercept;
      if (complete) rev.delete(rk);
      const seen = this.toMs(f.val.lastSeenNs > (r?.val.lastSeenNs ?? 0n) ? f.val.lastSeenNs : r!.val.lastSeenNs);
      const row: StoredMapping & { half?: 'fwd' | 'rev' } = { group: f.group, intercept, real, expiresMs: this.toMs(f.val.expiresNs) ?? 0 };
      if (seen !== undefined) row.lastSeenMs = seen;
      if (!complete) row.half = 'fwd';
      out.push(row);
    }
    for (const r of rev.values()) {
      out.push({ group: r.group, intercept: formatIP(r.val.addr), real: formatIP(r.addr), expiresMs: this.toMs(r.val.expiresNs) ?? 0, half: 'rev' });
    }
    return out;
  }

  lastSeen(group: number, intercept: string): number | undefined {
    const i = parseAddr(intercept).bytes;
    encodeIcptKey(group, i, this.k.buf);
    if (!this.bpf.lookup(this.fwdFd, this.k, this.old)) return undefined;
    const f = decodeIcptVal(this.old.buf);
    let ns = f.lastSeenNs;
    encodeIcptKey(group, f.addr, this.k.buf);
    if (this.bpf.lookup(this.revFd, this.k, this.old)) {
      const r = decodeIcptVal(this.old.buf);
      if (r.lastSeenNs > ns) ns = r.lastSeenNs;
    }
    return this.toMs(ns);
  }

  /** Non-zero NAT counters (summed over CPUs): translations per channel, replies, drops by reason. */
  counters(): IcptCounterRow[] {
    if (this.closed) return [];
    const out: IcptCounterRow[] = [];
    const slots: [number, number][] = [];
    for (let id = 0; id < CNT_IDS; id++) slots.push([ICPT_CNT_IN, id]);
    slots.push([ICPT_CNT_OUT, 0], [ICPT_CNT_OUT, 1], [ICPT_CNT_DROP, 1], [ICPT_CNT_DROP, 2], [ICPT_CNT_DROP, 3]);
    for (const [kind, id] of slots) {
      const v = this.cnt.get(kind * CNT_IDS + id);
      if (!v) continue;
      const sum = sumCounterVals(v, this.cnt.ncpu);
      if (sum.packets !== 0n) out.push({ kind, id, ...sum });
    }
    return out;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.bpf.close(this.fwdFd);
    this.bpf.close(this.revFd);
    this.bpf.close(this.cntFd);
  }
}

/** Clock.monoMs() − CLOCK_MONOTONIC ms, measured now (Bun's hrtime is process-relative). */
export function clockOffset(bpf: Bpf, clock: Clock): number {
  return clock.monoMs() - Number(bpf.lib.monotonicNs() / 1_000_000n);
}
