/**
 * The registry (patent step S105): which (group, address) entries are protected, by which
 * channel, held by which names until when. It writes every entry into the Datapath before
 * `register()` resolves. An entry whose hold ran out AND that saw no packet for `idleMs` is not
 * removed but *retired* (entry-table.ts): still in the map, so an application that kept the
 * address never talks in clear; it goes only after `retireMs` with no packet, or when an answer
 * needs room in a full map (retired entries are evicted oldest first, never a live one).
 *
 * Lifetime rules:
 * - hold of a name on an address = now + max(TTL, minHold); a later answer never shortens it
 *   (a client may still use the earlier, longer-lived answer);
 * - several names can hold one address; the entry stays until the last hold runs out;
 * - static entries (config `statics`) are always present and never collected;
 * - the map value carries the entry's expiry and its static/retired/blocked flags, so `adopt()`
 *   on start rebuilds the registry from the pinned map (never flushes it) with the real holds;
 * - a new answer for a retired entry's address brings it back (a peer entry attaches its peer
 *   again before the answer goes out); flush and reload withdrawals retire, never remove;
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
 * is retired (no hold any more: expired and idle, flushed, or withdrawn) the other channel takes
 * the address over in place (one map write, no clear gap).
 */
import type { Datapath, DestKey, DestValue } from '../datapath/datapath.ts';
import { DEST_F_BLOCKED, DEST_F_STATIC, destKeyString } from '../datapath/datapath.ts';
import type { Metrics } from '../ops/metrics.ts';
import type { ChannelSpec } from '../policy/types.ts';
import type { Clock } from '../util/clock.ts';
import { DnssealError, errorMessage } from '../util/errors.ts';
import type { Logger } from '../util/log.ts';
import { destKey, EntryRecord, isWritten, mapExpiry, recordKey, sameChannel, toEntry, unique, writtenValue } from './entry.ts';
import { clearNames, expiryOf, holdNames, namesOf } from './name-holds.ts';
import { adoptEntries } from './adopt.ts';
import { EntryTable } from './entry-table.ts';
import { releaseEntryNames, withdrawEntries } from './flush.ts';
import { PeerTable } from './peers.ts';
import { outcomeOf, RegistryMetrics, type RegisterOutcome } from './registry-metrics.ts';
import { followChannels, reconcileEntries, type ReconcileResult, type ReloadContext } from './reload.ts';
import { applyStatics, type StaticRegistration } from './statics.ts';
import { Sweeper, type GcResult } from './sweep.ts';
import type { ChannelHooks, Registration, RegistryApi, RegistryEntry } from './types.ts';

export { ADOPTED_NAME } from './entry.ts';
export { ADOPTED_BLOCKED } from './adopt.ts';
export type { GcResult } from './sweep.ts';
export type { StaticRegistration } from './statics.ts';

/** Default of `retireMs`: a retired entry goes after 24 h without a packet. */
export const DEFAULT_RETIRE_MS = 24 * 3600_000;

const RESOLVED: Promise<void> = Promise.resolve();
const NO_RECORDS: ReadonlySet<EntryRecord> = new Set();

export interface RegistryOptions {
  datapath: Datapath;
  clock: Clock;
  log: Logger;
  metrics: Metrics;
  /** Floor of every hold past the DNS TTL, ms (config `minHoldS` × 1000). */
  minHoldMs: number;
  /** An entry whose hold ran out is retired after this long without packets, ms. */
  idleMs: number;
  /** A retired entry is removed after this long without packets, ms (config `retire`; default 24 h). */
  retireMs?: number;
  hooks?: ChannelHooks;
  /**
   * The destination map's max_entries: room for new entries is made by evicting retired ones
   * (oldest first) or refused before anything is written, and fill is reported. Without it the
   * registry evicts when the map itself reports map_full.
   */
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
  /** Entries whose hold ran out (or that were withdrawn): kept in the map, never clear. */
  retired: number;
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
  private readonly capacity?: number;
  private readonly timer: () => number;
  private readonly t: EntryTable;
  /** Present when hooks were given: per-peer connections for `peer` channels. */
  private readonly peers?: PeerTable;
  private channelsById = new Map<number, ChannelSpec>();
  private channelsByName = new Map<string, ChannelSpec>();
  private readonly sweeper: Sweeper;
  /** The data path's last health() reason seen by register() (logged on change). */
  private lost?: string;

  constructor(opts: RegistryOptions) {
    this.dp = opts.datapath;
    this.clock = opts.clock;
    this.log = opts.log.child({ component: 'registry' });
    this.m = new RegistryMetrics(opts.metrics);
    this.minHoldMs = opts.minHoldMs;
    if (opts.hooks) this.peers = new PeerTable(opts.hooks, this.log);
    this.capacity = opts.capacity;
    this.timer = opts.timer ?? (() => performance.now());
    this.t = new EntryTable({
      dp: this.dp,
      log: this.log,
      m: this.m,
      peers: this.peers,
      idleMs: opts.idleMs,
      retireMs: opts.retireMs ?? DEFAULT_RETIRE_MS,
      capacity: opts.capacity,
    });
    this.sweeper = new Sweeper(this.t, this.clock, this.log, opts.gcIntervalMs ?? 5000);
    if (opts.channels) this.setChannels(opts.channels);
    opts.metrics.onCollect(() => this.collect());
  }

  get size(): number {
    return this.t.size;
  }

  /**
   * Resolves once every address is in the map and peer channels are ready; see RegistryApi.
   * Steps 1–3 run synchronously (no async frame, no microtask hop for a tunnel channel: the
   * cache-hit path registers every protected answer again); only a peer channel waits.
   */
  register(reg: Registration): Promise<void> {
    try {
      return this.registerNow(reg) ?? RESOLVED;
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** `register` without a promise when nothing waits (see RegistryApi): the cache-hit path. */
  registerNow(reg: Registration): Promise<void> | undefined {
    const t0 = this.timer();
    let recs: EntryRecord[] | null;
    try {
      recs = this.commit(reg);
    } catch (err) {
      throw this.settled(t0, err);
    }
    if (recs === null) {
      this.settled(t0, undefined);
      return undefined;
    }
    return this.awaitPeers(reg, recs).then(
      () => void this.settled(t0, undefined),
      (err: unknown) => {
        throw this.settled(t0, err);
      },
    );
  }

  /** Counts a registration's outcome and time; returns `err`. */
  private settled(t0: number, err: unknown): unknown {
    const seconds = (this.timer() - t0) / 1000;
    if (err === undefined) {
      this.m.registrationsOk.inc();
      this.m.registerSecondsOk.observe(seconds);
      return err;
    }
    const outcome: RegisterOutcome = outcomeOf(err);
    if (outcome === 'map_full') this.m.mapFull.inc();
    this.m.registrations.inc({ outcome });
    this.m.registerSeconds.observe(seconds, { outcome });
    return err;
  }

  /**
   * Steps 1–3 of a registration (synchronous; throws on a conflict or a map error). Returns the
   * entries whose peer channel must come up before the answer goes out, or null (not a peer channel).
   */
  private commit(reg: Registration): EntryRecord[] | null {
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
    const names = reg.names.length > 0 ? unique(reg.names) : [reg.queryName];
    const ch = reg.channel;

    // 1. Decide, without touching anything: which addresses are new, and is any a conflict?
    //    A retired entry of another channel holds no answer any more: the new channel takes it.
    const fresh: string[] = [];
    const existing: EntryRecord[] = [];
    const addrs = unique(reg.addrs);
    for (let i = 0; i < addrs.length; i++) {
      const addr = addrs[i]!;
      const rec = this.t.get(reg.group, addr);
      if (!rec) fresh.push(addr);
      else if (!sameChannel(rec.channel, ch) && rec.retiredMs === undefined) throw this.conflict(reg, rec);
      else existing.push(rec);
    }
    // Only new entries need room (and a set of the entries eviction must spare).
    const keep = fresh.length > 0 ? new Set(existing) : NO_RECORDS;
    if (fresh.length > 0) this.t.makeRoom(fresh.length, keep, reg.queryName);

    // 2. Kernel first: new keys, and existing entries whose value changes (a later expiry, back
    //    from retired, taken over). An entry whose expiry does not move (in whole 10 s:
    //    mapExpiry) costs no write. On any failure take back what this registration wrote, then
    //    reject.
    const value: DestValue = { channelId: ch.id, mark: ch.mark, flags: 0, expiresMs: mapExpiry(until) };
    const written: DestKey[] = [];
    const rewritten: [EntryRecord, DestValue][] = [];
    try {
      for (let i = 0; i < fresh.length; i++) {
        const key = { group: reg.group, addr: fresh[i]! };
        this.t.insert(key, value, keep);
        written.push(key);
      }
      for (let i = 0; i < existing.length; i++) {
        const rec = existing[i]!;
        const next = refreshedValue(rec, ch, until);
        if (isWritten(rec, next)) continue;
        rewritten.push([rec, writtenValue(rec)]);
        this.t.write(rec, next);
      }
    } catch (err) {
      for (const key of written) this.t.removeFromMap(key, 'rollback');
      for (const [rec, prev] of rewritten) this.restore(rec, prev);
      throw wrapDatapathError(err, reg);
    }

    // 3. Commit in memory (synchronously, so concurrent registrations see a consistent table).
    const peer = ch.kind === 'peer' && this.peers !== undefined;
    const recs: EntryRecord[] | null = peer ? [] : null;
    for (let i = 0; i < fresh.length; i++) {
      const rec = new EntryRecord(reg.group, fresh[i]!, this.t.channelRef(ch), value);
      this.t.add(rec);
      holdNames(rec, names, until);
      recs?.push(rec);
    }
    for (let i = 0; i < existing.length; i++) {
      const rec = existing[i]!;
      if (rec.retiredMs !== undefined) {
        if (!sameChannel(rec.channel, ch)) this.takeOver(rec, ch, reg);
        this.t.revive(rec);
      }
      if (!rec.channel.spec) rec.channel = this.t.channelRef(ch);
      holdNames(rec, names, until);
      recs?.push(rec);
    }
    if (fresh.length > 0 && this.log.enabled('debug')) {
      this.log.debug('registered', { name: reg.queryName, group: reg.group, channel: ch.name, added: fresh.length });
    }
    return recs;
  }

  /** 4. Peer channels: the per-peer connection must be ready before the answer goes out. */
  private async awaitPeers(reg: Registration, recs: EntryRecord[]): Promise<void> {
    const peers = this.peers!;
    const ch = reg.channel;
    const states = recs.map((rec) => peers.attach(rec, ch, reg.queryName));
    const results = await Promise.allSettled(states.map((p) => p.done));
    // Flushed or withdrawn by a reload while the channel came up: retired, its connection let
    // go (or already being set up again for another answer). Releasing this answer would send
    // the client to an address whose traffic is dropped: it gets SERVFAIL and asks again.
    const gone = recs.filter(
      (rec, i) =>
        rec.retiredMs !== undefined || this.t.get(rec.group, rec.addr) !== rec || (results[i]!.status === 'fulfilled' && rec.peer !== states[i]),
    );
    const failed = results.find((r) => r.status === 'rejected');
    // Fail closed, nothing rolled back: every address stays in the map, so traffic to one whose
    // peer could not prove its identity (or did not answer) is dropped by the leak guard and
    // counted, never sent clear — also from a client that learnt the address elsewhere. The
    // client gets SERVFAIL; the entry expires like any other, and the next answer tries again.
    // The block is written into the map (DEST_F_BLOCKED) so a restarted daemon keeps it.
    results.forEach((r, i) => {
      const rec = recs[i]!;
      if (gone.includes(rec)) return;
      const blocked = r.status === 'rejected' ? errorMessage(r.reason) : undefined;
      if (rec.blocked === blocked) return;
      rec.blocked = blocked;
      this.t.sync(rec);
    });
    if (failed) {
      const cause = (failed as PromiseRejectedResult).reason;
      this.log.warn('peer channel failed; traffic to its addresses is dropped', {
        name: reg.queryName,
        channel: ch.name,
        blocked: recs.filter((r) => r.blocked).map((r) => r.addr).join(','),
      });
      throw new DnssealError('registry', 'channel_failed', `cannot protect ${reg.queryName}: channel ${ch.name}: ${errorMessage(cause)}`, {
        cause,
      });
    }
    if (gone.length > 0) {
      throw new DnssealError(
        'registry',
        'withdrawn',
        `cannot protect ${reg.queryName}: ${gone.map((r) => r.addr).join(', ')} was withdrawn while channel ${ch.name} came up`,
      );
    }
  }

  /** A retired entry taken by an answer for another channel: its old names and peer go. */
  private takeOver(rec: EntryRecord, ch: ChannelSpec, reg: Registration): void {
    this.log.info('a retired entry is taken over by another channel', {
      name: reg.queryName,
      addr: rec.addr,
      group: rec.group,
      was: rec.channel.name,
      now: ch.name,
    });
    this.peers?.detach(rec);
    rec.adopted = false;
    clearNames(rec);
    rec.channel = this.t.channelRef(ch);
    rec.blocked = undefined;
  }

  /** Puts back what a failed registration overwrote (best effort: logged when the map refuses). */
  private restore(rec: EntryRecord, prev: DestValue): void {
    try {
      this.t.write(rec, prev);
    } catch (err) {
      rec.dirty = true;
      this.log.error('cannot restore an entry after a failed registration', { addr: rec.addr, error: errorMessage(err) });
    }
  }

  private conflict(reg: Registration, rec: EntryRecord): DnssealError {
    const why = rec.static ? 'a static entry' : `held by ${namesOf(rec).join(', ')}`;
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
    return [...this.t.records()].map((rec) => toEntry(rec, seen.get(recordKey(rec.group, rec.addr))));
  }

  get(group: number, addr: string): RegistryEntry | undefined {
    const rec = this.t.get(group, addr);
    return rec && toEntry(rec, this.dp.lastSeen(destKey(rec)));
  }

  /** Retires and removes what is due now (see sweep.ts). */
  gc(): GcResult {
    return this.sweeper.gc();
  }

  /** The same sweep in slices, yielding between them (see sweep.ts). */
  gcInSlices(slice?: number): Promise<GcResult> {
    return this.sweeper.gcInSlices(slice);
  }

  /** Runs the sliced gc every `gcIntervalMs` on an unref'd timer (never keeps the process up). */
  start(): void {
    this.sweeper.start();
  }

  stop(): void {
    this.sweeper.stop();
  }

  /**
   * Rebuilds the registry from the pinned map after a restart (see adopt.ts): every entry is kept
   * under the name `(adopted)`, with its kept hold and static/retired/blocked state. Returns the count.
   */
  adopt(): number {
    return adoptEntries({ table: this.t, log: this.log, now: this.clock.monoMs(), minHoldMs: this.minHoldMs, channelsById: this.channelsById });
  }

  /** The channel table, at start and on every reload before `reconcile` (see reload.ts). */
  setChannels(channels: ChannelSpec[]): void {
    this.channelsById = new Map(channels.map((c) => [c.id, c]));
    this.channelsByName = new Map(channels.map((c) => [c.name, c]));
    followChannels(this.reloadContext());
  }

  /**
   * After a reload: releases names the new policy protects with another channel or not at all,
   * moves entries whose names all want one other channel, retires entries left nameless (never
   * removes: nothing a reload withdraws falls into the clear).
   * `channelFor(group, name)` = the new policy's channel name, or null (see reload.ts).
   */
  reconcile(channelFor: (group: number, name: string) => string | null): ReconcileResult {
    return reconcileEntries(this.reloadContext(), channelFor);
  }

  private reloadContext(): ReloadContext {
    return {
      table: this.t,
      log: this.log,
      now: this.clock.monoMs(),
      channelsById: this.channelsById,
      channelsByName: this.channelsByName,
      detachPeer: (rec) => this.peers?.detach(rec),
    };
  }

  /**
   * Makes the static entries exactly `statics`: new ones are written (a static entry takes an
   * address over from DNS registrations — config says so explicitly), ones no longer listed
   * become ordinary entries if names still hold them, else are retired. All-or-nothing for the
   * writes: on a datapath error the previous state is restored and the error thrown.
   */
  setStatics(statics: StaticRegistration[]): void {
    applyStatics(statics, { table: this.t, log: this.log, now: this.clock.monoMs(), detachPeer: (rec) => this.peers?.detach(rec) });
  }

  /**
   * Retires every live non-static entry `pred` selects (flush): its holds end, it stays in the
   * map (a tunnel entry steered, a peer entry's traffic dropped), never falls into the clear.
   * Returns the entries retired (already retired ones are not counted again).
   */
  withdraw(pred: (e: RegistryEntry) => boolean): RegistryEntry[] {
    return withdrawEntries(this.t, this.log, this.clock.monoMs(), pred);
  }

  /**
   * Lets go of the names `pred` selects (flush --name); a live non-static entry left with no
   * name is retired at once, traffic or not (never removed). Returns the names released and, as
   * `removed`, the entries this retired (the field keeps its name for the callers).
   */
  releaseNames(pred: (name: string, e: RegistryEntry) => boolean): { names: number; removed: RegistryEntry[] } {
    return releaseEntryNames(this.t, this.clock.monoMs(), pred);
  }

  stats(): RegistryStats {
    const c = this.t.counts();
    const sum = (m: Map<string, number>) => [...m.values()].reduce((a, b) => a + b, 0);
    const s: RegistryStats = {
      datapath: this.dp.kind,
      entries: this.t.size,
      statics: c.statics,
      blocked: sum(c.blocked),
      retired: sum(c.retired),
      byChannel: Object.fromEntries(c.byChannel),
    };
    if (this.capacity) {
      s.capacity = this.capacity;
      s.fill = this.t.size / this.capacity;
    }
    return s;
  }

  private collect(): void {
    const c = this.t.counts();
    this.m.setEntries(c.byChannel, this.t.size, this.capacity, c.blocked, c.retired);
  }
}

/**
 * The value an existing entry gets from an answer for `ch` holding it until `until`: live again
 * if it was retired, its expiry moved to `until` if that is later; a retired entry of another
 * channel is taken over (its old names go).
 */
function refreshedValue(rec: EntryRecord, ch: ChannelSpec, until: number): DestValue {
  // destValue() of the entry as it will be (live, blocked only if it stays on its channel),
  // without copying the record.
  const moving = !sameChannel(rec.channel, ch);
  const c = moving ? ch : rec.channel;
  let flags = rec.static ? DEST_F_STATIC : 0;
  if (!moving && rec.blocked !== undefined) flags |= DEST_F_BLOCKED;
  return { channelId: c.id, mark: c.mark, flags, expiresMs: mapExpiry(Math.max(moving ? 0 : expiryOf(rec), until)) };
}

function wrapDatapathError(err: unknown, reg: Registration): DnssealError {
  const code = err instanceof DnssealError ? err.code : 'datapath_error';
  return new DnssealError('registry', code, `cannot protect ${reg.queryName}: ${errorMessage(err)}`, { cause: err });
}
