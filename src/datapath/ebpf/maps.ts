/**
 * The pinned maps, opened by path, with typed operations (layouts from ../layout.ts). Every call
 * is one or two bpf() syscalls on preallocated buffers: this is the DNS hot path.
 */
import { parseCidr } from '../../policy/cidr.ts';
import { formatIP, ipv4Number, parseIPv4, parseIPv6 } from '../../util/ip.ts';
import { DnssealError } from '../../util/errors.ts';
import type { DestEntry, DestKey, DestValue } from '../datapath.ts';
import { destKeyString } from '../datapath.ts';
import * as L from '../layout.ts';
import { BPF_ANY, BPF_EXIST, BPF_NOEXIST, Bpf, BpfError, E2BIG, EEXIST, ENOENT, ENOSPC, stable, type StableBuf } from './bpf-syscall.ts';
import { compileClientTable, type InlineClientTable } from './client-table.ts';
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
  /** A tls channel (CHAN_F_TLS), with its peer's TLS port when it has one. */
  tls?: { port?: number };
}

const BATCH = 4096;

type DestsFd = 'dests4' | 'dests6';

/** One raw entry of dnsseal_dests4 / _dests6. */
export interface RawDest {
  key: L.RawDestKey;
  val: L.RawDestVal;
}

/** DestValue.expiresMs (CLOCK_MONOTONIC ms here; 0/absent = none) → expires_ns, rounded up. */
function expiresNsOf(ms: number | undefined): bigint {
  if (!ms || !(ms > 0)) return 0n;
  return BigInt(Math.ceil(ms)) * 1_000_000n;
}

const TWO32 = 0x1_0000_0000;

function writeU32le(b: Uint8Array, o: number, v: number): void {
  b[o] = v & 0xff;
  b[o + 1] = (v >>> 8) & 0xff;
  b[o + 2] = (v >>> 16) & 0xff;
  b[o + 3] = (v >>> 24) & 0xff;
}

function clearLastSeen(b: Uint8Array): void {
  for (let i = L.DestValLayout.last_seen_ns; i < L.DestValLayout.last_seen_ns + 8; i++) b[i] = 0;
}

/**
 * `L.encodeDestVal` of the registration path: last_seen 0, expires_ns from `expiresMs` as
 * `expiresNsOf` has it (rounded up to the ms), in two 32-bit halves rather than through a
 * BigInt while the value fits a double exactly (2^53 ns: 104 days of CLOCK_MONOTONIC).
 */
function encodeDestValue(b: Uint8Array, channelId: number, mark: number, flags: number, expiresMs: number | undefined): void {
  const ns = !expiresMs || !(expiresMs > 0) ? 0 : Math.ceil(expiresMs) * 1_000_000;
  if (ns > Number.MAX_SAFE_INTEGER) {
    L.encodeDestVal({ channelId, mark, flags, lastSeenNs: 0n, expiresNs: expiresNsOf(expiresMs) }, b);
    return;
  }
  writeU32le(b, L.DestValLayout.channel_id, channelId >>> 0);
  writeU32le(b, L.DestValLayout.mark, mark >>> 0);
  writeU32le(b, L.DestValLayout.flags, flags >>> 0);
  writeU32le(b, L.DestValLayout.pad, 0);
  clearLastSeen(b);
  const hi = Math.floor(ns / TWO32);
  writeU32le(b, L.DestValLayout.expires_ns, ns - hi * TWO32);
  writeU32le(b, L.DestValLayout.expires_ns + 4, hi);
}

export class EbpfMaps {
  readonly fds: Record<keyof typeof MAPS, number>;
  /** The most entries dnsseal_dests4 and _dests6 hold together (each map's max_entries). */
  readonly capacity: number;
  private readonly k4 = stable(L.Dest4KeyLayout.size);
  private readonly k6 = stable(L.Dest6KeyLayout.size);
  private readonly v = stable(L.DestValLayout.size);
  private readonly v2 = stable(L.DestValLayout.size);
  private readonly counterArray: PerCpuArray;
  private batchOk = true;
  private closed = false;
  /**
   * Entries in both dests maps, counted on the first insert and kept by this process from then on
   * (the pin-root lock makes it the only writer): the capacity is one budget for both families,
   * as the Datapath contract (and the fake) has it, not one per map.
   */
  private entries?: number;

  constructor(
    private readonly bpf: Bpf,
    paths: PinPaths,
  ) {
    L.assertLittleEndian();
    const pins = Object.fromEntries(Object.entries(MAPS).map(([k, name]) => [k, paths.map(name)])) as Record<keyof typeof MAPS, string>;
    this.fds = openPinnedMaps(bpf, pins);
    this.capacity = bpf.mapInfo(this.fds.dests4).maxEntries;
    this.counterArray = new PerCpuArray(bpf, this.fds.counters, L.CounterValLayout.size);
  }

  /** The key buffer and map of `key`, encoded; plus the text form's DEST_F_FORM_* bit. */
  private destKey(key: DestKey): { fd: DestsFd; k: StableBuf; form: number } {
    // A dotted quad (every IPv4 answer): straight into the key, no bytes or object in between.
    const v4 = ipv4Number(key.addr);
    if (v4 >= 0) {
      const b = this.k4.buf;
      writeU32le(b, L.Dest4KeyLayout.group, key.group >>> 0);
      const a = L.Dest4KeyLayout.addr;
      b[a] = v4 >>> 24;
      b[a + 1] = (v4 >>> 16) & 0xff;
      b[a + 2] = (v4 >>> 8) & 0xff;
      b[a + 3] = v4 & 0xff;
      return { fd: 'dests4', k: this.k4, form: L.DEST_F_FORM_V4 };
    }
    const { addr, form } = keyAddrOf(key.addr);
    const k = addr.family === L.FAMILY_V4 ? this.k4 : this.k6;
    L.encodeDestKey({ group: key.group, addr }, k.buf);
    return { fd: addr.family === L.FAMILY_V4 ? 'dests4' : 'dests6', k, form };
  }

  /**
   * Insert or overwrite; keeps last_seen (and the other text form) of an existing entry; throws
   * map_full when full. `known`: the caller believes the key is in the map (a refresh), so it is
   * looked up first — a lookup and an update, where an insert tried first would fail (EEXIST)
   * and cost a third syscall; otherwise the insert is tried first. A wrong guess costs one
   * syscall more, never a different result. No exception is thrown and caught on the way.
   */
  upsertDest(key: DestKey, value: DestValue, known = false): void {
    const { fd, k, form } = this.destKey(key);
    const map = this.fds[fd];
    const flags = (value.flags & ~L.DEST_F_FORM_MASK) >>> 0;
    const v = this.v.buf;
    const v2 = this.v2.buf;
    encodeDestValue(v, value.channelId, value.mark, (flags | form) >>> 0, value.expiresMs);
    let lookFirst = known;
    for (let attempt = 0; attempt < 3; attempt++) {
      if (!lookFirst && this.count() < this.capacity) {
        clearLastSeen(v);
        const e = this.bpf.tryUpdate(map, k, this.v, BPF_NOEXIST);
        if (e === 0) {
          this.entries!++;
          return;
        }
        if (e === E2BIG || e === ENOSPC) throw this.full(key, this.bpf.errorOf(e, 'BPF_MAP_UPDATE_ELEM'));
        if (e !== EEXIST) {
          const cause = this.bpf.errorOf(e, 'BPF_MAP_UPDATE_ELEM');
          throw new DnssealError('datapath', 'kernel', `adding ${destKeyString(key)}: ${cause.message}`, { cause });
        }
      }
      lookFirst = false;
      const le = this.bpf.tryLookup(map, k, this.v2);
      if (le !== 0) {
        if (le !== ENOENT) throw this.bpf.errorOf(le, 'BPF_MAP_LOOKUP_ELEM');
        if (this.count() >= this.capacity) throw this.full(key);
        continue; // absent (or deleted meanwhile): insert
      }
      // The old value's other text form and last_seen stay; the rest is the new value.
      const oldForms = (v2[8]! | (v2[9]! << 8) | (v2[10]! << 16) | (v2[11]! << 24)) & L.DEST_F_FORM_MASK;
      writeU32le(v, 8, (flags | form | oldForms) >>> 0);
      for (let i = 16; i < 24; i++) v[i] = v2[i]!;
      const ue = this.bpf.tryUpdate(map, k, this.v, BPF_EXIST);
      if (ue === 0) return;
      if (ue !== ENOENT) {
        const cause = this.bpf.errorOf(ue, 'BPF_MAP_UPDATE_ELEM');
        throw new DnssealError('datapath', 'kernel', `updating ${destKeyString(key)}: ${cause.message}`, { cause });
      }
      writeU32le(v, 8, (flags | form) >>> 0); // deleted meanwhile: insert again
    }
    throw new DnssealError('datapath', 'kernel', `updating ${destKeyString(key)}: the entry kept changing underneath`);
  }

  private full(key: DestKey, cause?: unknown): DnssealError {
    return new DnssealError('datapath', 'map_full', `destination map is full (${this.capacity} entries); cannot add ${destKeyString(key)}`, cause ? { cause } : undefined);
  }

  /** Entries in both dests maps (counted once, then kept). */
  count(): number {
    if (this.entries === undefined) this.entries = this.countMap('dests4') + this.countMap('dests6');
    return this.entries;
  }

  /** Removes one text form; the kernel entry goes when no form holds it. Absent is not an error. */
  removeDest(key: DestKey): void {
    const { fd, k, form } = this.destKey(key);
    const map = this.fds[fd];
    if (form && this.bpf.lookup(map, k, this.v2)) {
      const old = L.decodeDestVal(this.v2.buf);
      const rest = old.flags & L.DEST_F_FORM_MASK & ~form;
      if (!(old.flags & form) && old.flags & L.DEST_F_FORM_MASK) return; // this form was never registered
      if (rest) {
        L.encodeDestVal({ ...old, flags: ((old.flags & ~form) >>> 0) }, this.v.buf);
        this.bpf.update(map, k, this.v, BPF_EXIST);
        return;
      }
    }
    if (this.bpf.delete(map, k) && this.entries !== undefined) this.entries--;
  }

  /** The raw value for one text form, or undefined when absent (or that form is not registered). */
  private rawValue(key: DestKey): L.RawDestVal | undefined {
    const { fd, k, form } = this.destKey(key);
    if (!this.bpf.lookup(this.fds[fd], k, this.v2)) return undefined;
    const v = L.decodeDestVal(this.v2.buf);
    if (form && v.flags & L.DEST_F_FORM_MASK && !(v.flags & form)) return undefined;
    return v;
  }

  lastSeenNs(key: DestKey): bigint | undefined {
    return this.rawValue(key)?.lastSeenNs;
  }

  /** Every raw entry of both maps (batch lookup where the kernel has it, else get_next_key). */
  rawDests(): RawDest[] {
    const out: RawDest[] = [];
    for (const [fd, family] of [['dests4', L.FAMILY_V4], ['dests6', L.FAMILY_V6]] as const) {
      this.scan(fd, (k, v) => out.push({ key: L.decodeDestKey(k, family), val: L.decodeDestVal(v) }));
    }
    this.entries = out.length; // a full scan counts for free (the registry lists on start)
    return out;
  }

  private countMap(fd: DestsFd): number {
    let n = 0;
    this.scan(fd, () => n++);
    return n;
  }

  /** Calls `row` with the raw key and value of every entry of one dests map (views, valid during the call). */
  private scan(fd: DestsFd, row: (k: Uint8Array, v: Uint8Array) => void): void {
    const map = this.fds[fd];
    const ks = L.destKeySize(fd === 'dests4' ? L.FAMILY_V4 : L.FAMILY_V6);
    const vs = L.DestValLayout.size;
    if (this.batchOk) {
      let rows = 0;
      try {
        this.scanBatch(map, ks, vs, (k, v) => {
          rows++;
          row(k, v);
        });
        return;
      } catch (err) {
        // A kernel without batch lookups refuses the first call; anything later is a real error.
        if (rows > 0 || !(err instanceof BpfError) || err.code === 'permission') throw err;
        this.batchOk = false;
      }
    }
    const cur = stable(ks);
    const next = stable(ks);
    const val = stable(vs);
    let first = true;
    while (this.bpf.nextKey(map, first ? null : cur, next)) {
      first = false;
      cur.buf.set(next.buf);
      if (this.bpf.lookup(map, cur, val)) row(cur.buf, val.buf);
    }
  }

  private scanBatch(fd: number, ks: number, vs: number, row: (k: Uint8Array, v: Uint8Array) => void): void {
    const keys = stable(ks * BATCH);
    const vals = stable(vs * BATCH);
    const inB = stable(8);
    const outB = stable(8);
    let first = true;
    for (;;) {
      const r = this.bpf.lookupBatch(fd, first ? null : inB, outB, keys, vals, BATCH);
      for (let i = 0; i < r.count; i++) row(keys.buf.subarray(i * ks, (i + 1) * ks), vals.buf.subarray(i * vs, (i + 1) * vs));
      if (r.done) return;
      inB.buf.set(outB.buf);
      first = false;
    }
  }

  /** Every entry, one row per registered text form; times in CLOCK_MONOTONIC ms (the caller shifts them). */
  listDests(): DestEntry[] {
    const rows: DestEntry[] = [];
    for (const { key, val } of this.rawDests()) {
      for (const addr of textsOf(key.addr, val.flags)) {
        const value: DestValue = { channelId: val.channelId, mark: val.mark, flags: (val.flags & ~L.DEST_F_FORM_MASK) >>> 0 };
        if (val.expiresNs > 0n) value.expiresMs = Number(val.expiresNs / 1_000_000n);
        const e: DestEntry = { key: { group: key.group, addr }, value };
        if (val.lastSeenNs > 0n) e.lastSeenMs = Number(val.lastSeenNs / 1_000_000n);
        rows.push(e);
      }
    }
    return rows;
  }

  /**
   * Replaces the client CIDR → group table with exactly `entries`: the LPM trie, then (when it is
   * small enough) the inline copy in dnsseal_config the programs read instead of walking the trie.
   */
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
    this.setInlineClients(compileClientTable(entries));
  }

  /** dnsseal_config as the programs read it. */
  config(): L.RawConfig {
    const k = stable(4);
    const v = stable(L.ConfigLayout.size);
    k.buf.set(L.encodeU32(0));
    if (!this.bpf.lookup(this.fds.config, k, v)) return { flags: 0, v4: [], v6: [] };
    return L.decodeConfig(v.buf);
  }

  /**
   * Writes the inline client table after the trie (so the trie is right whichever the programs
   * read). A program reads the value while it may be rewritten (an array update is a plain copy),
   * so a table in use is first switched off (the programs go to the trie), then the new one is
   * written with the flag. A packet classified during one of the two copies (nanoseconds) gets the
   * old table's answer, the trie's, or the default group (a zeroed row): the transient any table
   * change has (the trie is updated entry by entry too), and the guard still classifies on its own.
   */
  private setInlineClients(table: InlineClientTable | undefined): void {
    const k = stable(4);
    const v = stable(L.ConfigLayout.size);
    k.buf.set(L.encodeU32(0));
    const want = table ? L.encodeConfig({ flags: L.CFG_F_INLINE, v4: table.v4, v6: table.v6 }) : L.encodeConfig({ flags: 0, v4: [], v6: [] });
    const had = this.bpf.lookup(this.fds.config, k, v) ? v.buf.slice() : undefined;
    if (had && Buffer.from(had).equals(Buffer.from(want))) return;
    if (had && L.decodeConfig(had).flags & L.CFG_F_INLINE) {
      L.encodeConfig({ flags: 0, v4: [], v6: [] }, v.buf);
      this.bpf.update(this.fds.config, k, v, BPF_ANY);
    }
    if (!table) return;
    v.buf.set(want);
    this.bpf.update(this.fds.config, k, v, BPF_ANY);
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
      const flags = (r.peer ? L.CHAN_F_PEER : 0) | (r.tls ? L.CHAN_F_TLS : 0);
      L.encodeChannelVal({ mark: r.mark, state: r.up ? L.CHAN_UP : L.CHAN_DOWN, flags, gateway: gw, tlsPort: r.tls?.port }, v.buf);
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
