/**
 * The registry (patent step S105): which (group, address) entries are protected, by which
 * channel, held by which names until when. It writes every entry into the Datapath before
 * `register()` resolves, and removes an entry only when its hold ran out AND the data path has
 * seen no packet to it for `idleMs` — a live flow never loses protection.
 *
 * Lifetime rules:
 * - hold of a name on an address = now + max(TTL, minHold); a later answer never shortens it
 *   (a client may still use the earlier, longer-lived answer);
 * - several names can hold one address; the entry stays until the last hold runs out;
 * - static entries (config `statics`) are always present and never collected;
 * - on start, `adopt()` rebuilds the registry from the pinned map (never flushes it);
 * - a `peer` channel that cannot be set up (identity not proven, no answer within the wait)
 *   rolls nothing back: its addresses stay in the map, marked `blocked`, so the leak guard drops
 *   and counts traffic to them; the client gets SERVFAIL and the next answer tries again.
 *
 * One address, two channels (same group): a (group, address) can carry only one mark. When an
 * answer would put an address that is already registered under channel A under channel B, the
 * registration is REFUSED (code `channel_conflict`, the client gets SERVFAIL) and the entry
 * stays as it is. Letting the later answer win would silently move the first name's traffic to
 * another peer or gateway than its rule demands; keeping A but answering would do the same to
 * the second name. Refusing fails closed: nothing is ever sent in clear or over the wrong
 * channel, and the conflict shows in the log and the `conflict` outcome metric. Once the entry
 * is gone (expired and idle, flushed, or withdrawn) the other channel can take the address.
 */
import type { Datapath, DestKey, DestValue } from '../datapath/datapath.ts';
import { DEST_F_STATIC, destKeyString } from '../datapath/datapath.ts';
import type { Metrics } from '../ops/metrics.ts';
import type { ChannelSpec } from '../policy/types.ts';
import type { Clock } from '../util/clock.ts';
import { DnssealError, errorMessage } from '../util/errors.ts';
import type { Logger } from '../util/log.ts';
import type { EntryRecord } from './entry.ts';
import { ADOPTED_NAME, channelRef, destKey, expiryOf, pruneNames, recordKey, sameChannel, toEntry, unique } from './entry.ts';
import { PeerTable } from './peers.ts';
import { outcomeOf, RegistryMetrics, type RegisterOutcome } from './registry-metrics.ts';
import { followChannels, reconcileEntries, type ReconcileResult, type ReloadContext } from './reload.ts';
import { applyStatics, type StaticRegistration } from './statics.ts';
import type { ChannelHooks, Registration, RegistryApi, RegistryEntry } from './types.ts';

export { ADOPTED_NAME } from './entry.ts';
export type { StaticRegistration } from './statics.ts';

export interface RegistryOptions {
  datapath: Datapath;
  clock: Clock;
  log: Logger;
  metrics: Metrics;
  /** Floor of every hold past the DNS TTL, ms (config `minHoldS` × 1000). */
  minHoldMs: number;
  /** An expired entry is removed only after this long without packets, ms. */
  idleMs: number;
  hooks?: ChannelHooks;
  /** The destination map's max_entries: new entries beyond it are refused, and fill is reported. */
  capacity?: number;
  /** The configured channels, so adopted entries show names and peer hooks can run for them. */
  channels?: ChannelSpec[];
  /** Interval of the background `gc()` started by `start()`, ms (default 5000). */
  gcIntervalMs?: number;
  /** High-resolution ms timer for the latency histogram (default `performance.now`). */
  timer?: () => number;
}

export interface RegistryStats {
  datapath: string;
  entries: number;
  statics: number;
  /** Entries whose peer channel failed: traffic to them is dropped (see `blocked`). */
  blocked: number;
  byChannel: Record<string, number>;
  capacity?: number;
  fill?: number;
}

export class Registry implements RegistryApi {
  private readonly dp: Datapath;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly m: RegistryMetrics;
  private readonly minHoldMs: number;
  private readonly idleMs: number;
  private readonly capacity?: number;
  private readonly gcIntervalMs: number;
  private readonly timer: () => number;
  private readonly entries = new Map<string, EntryRecord>();
  /** Present when hooks were given: per-peer connections for `peer` channels. */
  private readonly peers?: PeerTable;
  private channelsById = new Map<number, ChannelSpec>();
  private channelsByName = new Map<string, ChannelSpec>();
  private gcTimer?: ReturnType<typeof setInterval>;
  private sweeping = false;
  /** The data path's last health() reason seen by register() (logged on change). */
  private lost?: string;

  constructor(opts: RegistryOptions) {
    this.dp = opts.datapath;
    this.clock = opts.clock;
    this.log = opts.log.child({ component: 'registry' });
    this.m = new RegistryMetrics(opts.metrics);
    this.minHoldMs = opts.minHoldMs;
    this.idleMs = opts.idleMs;
    if (opts.hooks) this.peers = new PeerTable(opts.hooks, this.log);
    this.capacity = opts.capacity;
    this.gcIntervalMs = opts.gcIntervalMs ?? 5000;
    this.timer = opts.timer ?? (() => performance.now());
    if (opts.channels) this.setChannels(opts.channels);
    opts.metrics.onCollect(() => this.collect());
  }

  get size(): number {
    return this.entries.size;
  }

  /** Resolves once every address is in the map and peer channels are ready; see RegistryApi. */
  async register(reg: Registration): Promise<void> {
    const t0 = this.timer();
    let outcome: RegisterOutcome = 'ok';
    try {
      await this.registerInner(reg);
    } catch (err) {
      outcome = outcomeOf(err);
      if (outcome === 'map_full') this.m.mapFull.inc();
      throw err;
    } finally {
      this.m.registrations.inc({ outcome });
      this.m.registerSeconds.observe((this.timer() - t0) / 1000, { outcome });
    }
  }

  private async registerInner(reg: Registration): Promise<void> {
    // A data path that cannot protect right now (pins removed, programs detached) must not
    // let a protected answer out: the client gets SERVFAIL until it is back (fail closed).
    // Counted as outcome `datapath_lost`; logged once per change, not per query.
    const lost = this.dp.health();
    if (lost !== this.lost) {
      if (lost !== undefined) this.log.error('data path lost: protected names get SERVFAIL until it is back', { reason: lost });
      else this.log.info('data path back: protected names are answered again', { was: this.lost });
      this.lost = lost;
    }
    if (lost !== undefined) {
      throw new DnssealError('registry', 'datapath_lost', `cannot protect ${reg.queryName}: the data path cannot protect right now: ${lost}`);
    }
    const now = this.clock.monoMs();
    // A missing, negative or non-numeric TTL counts as 0: the hold is min_hold, never NaN.
    const ttlMs = Number.isFinite(reg.ttlS) && reg.ttlS > 0 ? reg.ttlS * 1000 : 0;
    const until = now + Math.max(ttlMs, this.minHoldMs);
    const names = unique(reg.names.length > 0 ? reg.names : [reg.queryName]);
    const ch = reg.channel;

    // 1. Decide, without touching anything: which addresses are new, and is any a conflict?
    const fresh: string[] = [];
    const existing: EntryRecord[] = [];
    for (const addr of unique(reg.addrs)) {
      const rec = this.entries.get(recordKey(reg.group, addr));
      if (!rec) fresh.push(addr);
      else if (!sameChannel(rec.channel, ch)) throw this.conflict(reg, rec);
      else existing.push(rec);
    }
    if (this.capacity !== undefined && this.entries.size + fresh.length > this.capacity) {
      throw new DnssealError(
        'registry',
        'map_full',
        `cannot protect ${reg.queryName}: the destination map holds ${this.entries.size} of ${this.capacity} entries ` +
          `and the answer needs ${fresh.length} more`,
      );
    }

    // 2. Kernel first. On any failure take back what this registration added, then reject.
    const value: DestValue = { channelId: ch.id, mark: ch.mark, flags: 0 };
    const written: DestKey[] = [];
    try {
      for (const addr of fresh) {
        const key = { group: reg.group, addr };
        this.dp.upsert(key, value);
        written.push(key);
      }
    } catch (err) {
      for (const key of written) this.removeFromMap(key, 'rollback');
      throw wrapDatapathError(err, reg);
    }

    // 3. Commit in memory (synchronously, so concurrent registrations see a consistent table).
    const added: EntryRecord[] = fresh.map((addr) => {
      const rec: EntryRecord = { group: reg.group, addr, channel: channelRef(ch), names: new Map(), static: false };
      this.entries.set(recordKey(reg.group, addr), rec);
      return rec;
    });
    for (const rec of [...added, ...existing]) {
      if (!rec.channel.spec) rec.channel = channelRef(ch);
      for (const n of names) rec.names.set(n, Math.max(rec.names.get(n) ?? 0, until));
    }
    if (added.length > 0 && this.log.enabled('debug')) {
      this.log.debug('registered', { name: reg.queryName, group: reg.group, channel: ch.name, added: added.length });
    }

    // 4. Peer channels: the per-peer connection must be ready before the answer goes out.
    const peers = this.peers;
    if (ch.kind !== 'peer' || !peers) return;
    const recs = [...added, ...existing];
    const results = await Promise.allSettled(recs.map((rec) => peers.attach(rec, ch, reg.queryName).done));
    const failed = results.find((r) => r.status === 'rejected');
    if (!failed) {
      for (const rec of recs) rec.blocked = undefined;
      return;
    }
    // Fail closed, nothing rolled back: every address stays in the map, so traffic to one whose
    // peer could not prove its identity (or did not answer) is dropped by the leak guard and
    // counted, never sent clear — also from a client that learnt the address elsewhere. The
    // client gets SERVFAIL; the entry expires like any other, and the next answer tries again.
    const cause = (failed as PromiseRejectedResult).reason;
    results.forEach((r, i) => {
      if (r.status === 'rejected') recs[i]!.blocked = errorMessage(r.reason);
    });
    this.log.warn('peer channel failed; traffic to its addresses is dropped', {
      name: reg.queryName,
      channel: ch.name,
      blocked: recs.filter((r) => r.blocked).map((r) => r.addr).join(','),
    });
    throw new DnssealError('registry', 'channel_failed', `cannot protect ${reg.queryName}: channel ${ch.name}: ${errorMessage(cause)}`, {
      cause,
    });
  }

  private conflict(reg: Registration, rec: EntryRecord): DnssealError {
    const why = rec.static ? 'a static entry' : `held by ${[...rec.names.keys()].join(', ')}`;
    this.log.warn('channel conflict; refusing the answer', {
      name: reg.queryName,
      addr: rec.addr,
      group: reg.group,
      has: rec.channel.name,
      wants: reg.channel.name,
    });
    return new DnssealError(
      'registry',
      'channel_conflict',
      `cannot protect ${reg.queryName}: ${rec.addr} (group ${reg.group}) is already protected by channel ` +
        `${rec.channel.name} (${why}); the answer wants channel ${reg.channel.name}`,
    );
  }

  list(): RegistryEntry[] {
    const seen = new Map<string, number | undefined>();
    for (const e of this.dp.list()) seen.set(destKeyString(e.key), e.lastSeenMs);
    return [...this.entries.values()].map((rec) => toEntry(rec, seen.get(recordKey(rec.group, rec.addr))));
  }

  get(group: number, addr: string): RegistryEntry | undefined {
    const rec = this.entries.get(recordKey(group, addr));
    return rec && toEntry(rec, this.dp.lastSeen(destKey(rec)));
  }

  /**
   * Removes every non-static entry whose hold ran out and that has been idle for `idleMs`
   * (never seen counts as idle). Returns how many were removed.
   */
  gc(): number {
    const now = this.clock.monoMs();
    let removed = 0;
    for (const rec of [...this.entries.values()]) if (this.collectOne(rec, now)) removed++;
    if (removed > 0) this.log.debug('gc removed entries', { removed, left: this.entries.size });
    return removed;
  }

  /**
   * The same sweep in slices of `slice` entries, yielding to the event loop between slices so
   * a sweep over a million entries never stalls the DNS path. Used by `start()`.
   */
  async gcInSlices(slice = 5000): Promise<number> {
    if (this.sweeping) return 0;
    this.sweeping = true;
    let removed = 0;
    try {
      // Map iterators are live: entries removed meanwhile are skipped, new ones are visited.
      const it = this.entries.values();
      for (let done = false; !done; ) {
        const now = this.clock.monoMs();
        for (let i = 0; i < slice; i++) {
          const next = it.next();
          if (next.done) {
            done = true;
            break;
          }
          if (this.collectOne(next.value, now)) removed++;
        }
        if (!done) await new Promise<void>((resolve) => setImmediate(resolve));
      }
    } finally {
      this.sweeping = false;
    }
    if (removed > 0) this.log.debug('gc removed entries', { removed, left: this.entries.size });
    return removed;
  }

  private collectOne(rec: EntryRecord, now: number): boolean {
    pruneNames(rec, now);
    if (rec.static || expiryOf(rec) > now) return false;
    if (rec.peer && !rec.peer.ready) return false; // a registration is still waiting on it
    const lastSeen = this.dp.lastSeen(destKey(rec));
    if (lastSeen !== undefined && now - lastSeen < this.idleMs) return false;
    return this.removeRecord(rec, 'expired');
  }

  /** Runs the sliced gc every `gcIntervalMs` on an unref'd timer (never keeps the process up). */
  start(): void {
    if (this.gcTimer) return;
    this.gcTimer = setInterval(() => {
      this.gcInSlices().catch((err: unknown) => this.log.error('gc failed', { error: errorMessage(err) }));
    }, this.gcIntervalMs);
    this.gcTimer.unref?.();
  }

  stop(): void {
    if (this.gcTimer) clearInterval(this.gcTimer);
    this.gcTimer = undefined;
  }

  /**
   * Rebuilds the registry from the pinned map after a restart: every entry found is kept, held
   * for `minHold` from now under the name `(adopted)`. Nothing is flushed. Returns the count.
   */
  adopt(): number {
    const until = this.clock.monoMs() + this.minHoldMs;
    let n = 0;
    for (const e of this.dp.list()) {
      const key = recordKey(e.key.group, e.key.addr);
      if (this.entries.has(key)) continue;
      const spec = this.channelsById.get(e.value.channelId);
      const channel = spec ? channelRef(spec) : { id: e.value.channelId, mark: e.value.mark, name: `#${e.value.channelId}` };
      this.entries.set(key, {
        group: e.key.group,
        addr: e.key.addr,
        channel,
        names: new Map([[ADOPTED_NAME, until]]),
        static: (e.value.flags & DEST_F_STATIC) !== 0,
        adopted: true,
      });
      n++;
    }
    this.log.info('adopted entries from the pinned map', { adopted: n, datapath: this.dp.kind });
    return n;
  }

  /** The channel table, at start and on every reload before `reconcile` (see reload.ts). */
  setChannels(channels: ChannelSpec[]): void {
    this.channelsById = new Map(channels.map((c) => [c.id, c]));
    this.channelsByName = new Map(channels.map((c) => [c.name, c]));
    followChannels(this.reloadContext());
  }

  /**
   * After a reload: releases names the new policy protects with another channel or not at all,
   * moves entries whose names all want one other channel, removes entries left nameless.
   * `channelFor(group, name)` = the new policy's channel name, or null (see reload.ts).
   */
  reconcile(channelFor: (group: number, name: string) => string | null): ReconcileResult {
    return reconcileEntries(this.reloadContext(), channelFor);
  }

  private reloadContext(): ReloadContext {
    return {
      entries: this.entries,
      dp: this.dp,
      log: this.log,
      channelsById: this.channelsById,
      channelsByName: this.channelsByName,
      detachPeer: (rec) => this.peers?.detach(rec),
      remove: (rec) => this.removeRecord(rec, 'withdrawn'),
    };
  }

  /**
   * Makes the static entries exactly `statics`: new ones are written (a static entry takes an
   * address over from DNS registrations — config says so explicitly), ones no longer listed
   * become ordinary entries if names still hold them, else are removed. All-or-nothing for the
   * writes: on a datapath error the previous state is restored and the error thrown.
   */
  setStatics(statics: StaticRegistration[]): void {
    applyStatics(statics, {
      entries: this.entries,
      dp: this.dp,
      log: this.log,
      now: this.clock.monoMs(),
      detachPeer: (rec) => this.peers?.detach(rec),
      remove: (rec) => this.removeRecord(rec, 'withdrawn'),
    });
  }

  /** Removes every non-static entry `pred` selects (flush, reload). Returns what was removed. */
  withdraw(pred: (e: RegistryEntry) => boolean): RegistryEntry[] {
    const out: RegistryEntry[] = [];
    for (const rec of [...this.entries.values()]) {
      if (rec.static) continue;
      const e = toEntry(rec, undefined);
      if (pred(e) && this.removeRecord(rec, 'withdrawn')) out.push(e);
    }
    if (out.length > 0) this.log.info('withdrew entries', { count: out.length });
    return out;
  }

  /**
   * Lets go of the names `pred` selects (flush --name, reload); a non-static entry left with
   * no name is removed at once, traffic or not. Returns names released and entries removed.
   */
  releaseNames(pred: (name: string, e: RegistryEntry) => boolean): { names: number; removed: RegistryEntry[] } {
    let released = 0;
    const removed: RegistryEntry[] = [];
    for (const rec of [...this.entries.values()]) {
      const e = toEntry(rec, undefined);
      for (const n of e.names) {
        if (pred(n, e)) {
          rec.names.delete(n);
          released++;
        }
      }
      if (!rec.static && rec.names.size === 0 && this.removeRecord(rec, 'withdrawn')) removed.push(e);
    }
    return { names: released, removed };
  }

  stats(): RegistryStats {
    const byChannel: Record<string, number> = {};
    let statics = 0;
    let blocked = 0;
    for (const rec of this.entries.values()) {
      byChannel[rec.channel.name] = (byChannel[rec.channel.name] ?? 0) + 1;
      if (rec.static) statics++;
      if (rec.blocked !== undefined) blocked++;
    }
    const s: RegistryStats = { datapath: this.dp.kind, entries: this.entries.size, statics, blocked, byChannel };
    if (this.capacity) {
      s.capacity = this.capacity;
      s.fill = this.entries.size / this.capacity;
    }
    return s;
  }

  /** Removes from map, registry and peer state. False (entry kept) when the map refused. */
  private removeRecord(rec: EntryRecord, reason: string): boolean {
    if (!this.removeFromMap(destKey(rec), reason)) return false;
    this.entries.delete(recordKey(rec.group, rec.addr));
    this.peers?.detach(rec);
    this.m.removed.inc({ reason });
    return true;
  }

  private removeFromMap(key: DestKey, reason: string): boolean {
    try {
      this.dp.remove(key);
      return true;
    } catch (err) {
      // Kept: it is retried at the next gc. Leaving an entry protected is the safe side.
      this.log.error('cannot remove entry from the map', { addr: key.addr, group: key.group, reason, error: errorMessage(err) });
      return false;
    }
  }

  private collect(): void {
    const byChannel = new Map<string, number>();
    const blocked = new Map<string, number>();
    for (const rec of this.entries.values()) {
      byChannel.set(rec.channel.name, (byChannel.get(rec.channel.name) ?? 0) + 1);
      if (rec.blocked !== undefined) blocked.set(rec.channel.name, (blocked.get(rec.channel.name) ?? 0) + 1);
    }
    this.m.setEntries(byChannel, this.entries.size, this.capacity, blocked);
  }
}

function wrapDatapathError(err: unknown, reg: Registration): DnssealError {
  const code = err instanceof DnssealError ? err.code : 'datapath_error';
  return new DnssealError('registry', code, `cannot protect ${reg.queryName}: ${errorMessage(err)}`, { cause: err });
}
