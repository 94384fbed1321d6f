/**
 * The registry's entries and every change of their state in the map: write a value, retire,
 * remove, evict, and the gc decision for one entry. Every change goes to the map first and is
 * committed in memory only when the map took it, so the map never protects less than the
 * registry believes (a failed write leaves the entry as it was: the safe side).
 *
 * An entry's life: live (a hold runs, or packets flowed within `idle`) → retired (DEST_F_RETIRED:
 * a tunnel entry is still steered into its channel, a peer entry's connection is let go so the
 * guard drops its traffic) → removed once `retire` passed with no packet, or evicted (oldest
 * first) when an answer needs room. A new answer brings a retired entry back (the registry).
 */
import type { Datapath, DestKey, DestValue } from '../datapath/datapath.ts';
import { DEST_F_RETIRED } from '../datapath/datapath.ts';
import { DnssealError, errorMessage } from '../util/errors.ts';
import type { Logger } from '../util/log.ts';
import type { ChannelSpec } from '../policy/types.ts';
import type { ChannelRef, EntryRecord } from './entry.ts';
import { channelRef, destKey, destValue, isWritten, noteWritten } from './entry.ts';
import { endHolds, expiryOf, pruneNames } from './name-holds.ts';
import { EvictionOrder, quietSince } from './eviction.ts';
import type { PeerTable } from './peers.ts';
import type { RegistryMetrics, RemoveReason, RetireReason } from './registry-metrics.ts';

export interface EntryTableOptions {
  dp: Datapath;
  log: Logger;
  m: RegistryMetrics;
  peers?: PeerTable;
  /** An entry whose hold ran out is retired after this long without packets, ms. */
  idleMs: number;
  /** A retired entry is removed after this long without packets, ms. */
  retireMs: number;
  /** The map's max_entries when known: room is made (or refused) before anything is written. */
  capacity?: number;
}

/** Entries by channel name, and the blocked and retired ones among them (status, metrics). */
export interface TableCounts {
  byChannel: Map<string, number>;
  blocked: Map<string, number>;
  retired: Map<string, number>;
  statics: number;
}

/** What gc did to one entry. */
export type Collected = 'retired' | 'removed' | undefined;

export class EntryTable {
  /**
   * The records by group, then address text: `get` — once per address of every protected
   * answer, cache hits included — looks up without building a key string. The only index: a
   * second one over all records (a `group/addr` key, or a Set) would cost 50–130 heap bytes per
   * entry, and every walk over the records goes group by group instead (`records`).
   */
  private readonly byGroup = new Map<number, Map<string, EntryRecord>>();
  readonly retired = new Set<EntryRecord>();
  readonly dp: Datapath;
  readonly capacity?: number;
  private readonly log: Logger;
  private readonly m: RegistryMetrics;
  private readonly peers?: PeerTable;
  private readonly idleMs: number;
  private readonly retireMs: number;
  private readonly order: EvictionOrder;
  /** One ChannelRef per channel spec, shared by its entries (`channelRef`). */
  private readonly refs = new WeakMap<ChannelSpec, ChannelRef>();

  constructor(o: EntryTableOptions) {
    this.dp = o.dp;
    this.log = o.log;
    this.m = o.m;
    this.peers = o.peers;
    this.idleMs = o.idleMs;
    this.retireMs = o.retireMs;
    this.capacity = o.capacity;
    this.order = new EvictionOrder((rec) => this.dp.lastSeen(destKey(rec)));
  }

  /** How many entries there are, live and retired (a sum over the groups: a handful). */
  get size(): number {
    let n = 0;
    for (const g of this.byGroup.values()) n += g.size;
    return n;
  }

  /**
   * Every record, group by group, each group's in the order added. Live like a Map iterator:
   * a record removed meanwhile and not reached yet is skipped, one added meanwhile may be visited.
   */
  *records(): Generator<EntryRecord, void, undefined> {
    for (const g of this.byGroup.values()) yield* g.values();
  }

  get(group: number, addr: string): EntryRecord | undefined {
    return this.byGroup.get(group)?.get(addr);
  }

  add(rec: EntryRecord): void {
    let g = this.byGroup.get(rec.group);
    if (!g) this.byGroup.set(rec.group, (g = new Map()));
    g.set(rec.addr, rec);
    if (rec.retiredMs !== undefined) this.retired.add(rec);
  }

  /** The ref entries of `spec` share (one per spec object: a reload's new specs get new refs). */
  channelRef(spec: ChannelSpec): ChannelRef {
    let ref = this.refs.get(spec);
    if (ref === undefined) this.refs.set(spec, (ref = channelRef(spec)));
    return ref;
  }

  counts(): TableCounts {
    const c: TableCounts = { byChannel: new Map(), blocked: new Map(), retired: new Map(), statics: 0 };
    const bump = (m: Map<string, number>, ch: string) => m.set(ch, (m.get(ch) ?? 0) + 1);
    for (const rec of this.records()) {
      bump(c.byChannel, rec.channel.name);
      if (rec.blocked !== undefined) bump(c.blocked, rec.channel.name);
      if (rec.retiredMs !== undefined) bump(c.retired, rec.channel.name);
      if (rec.static) c.statics++;
    }
    return c;
  }

  /** Writes `value` for `rec` (throws what the map throws); what `rec` notes as written follows. */
  write(rec: EntryRecord, value: DestValue): void {
    // A record is made only for an entry the registry wrote or adopted: a refresh (`known`).
    this.dp.upsert(destKey(rec), value, true);
    noteWritten(rec, value);
    rec.dirty = false;
  }

  /**
   * Brings the map in line with the entry's state (one write, or none when it already is). A
   * failure is logged and left for gc to retry: only for changes that do not decide protection
   * (the blocked flag, the expiry kept for a restart).
   */
  sync(rec: EntryRecord): void {
    const value = destValue(rec);
    if (isWritten(rec, value)) {
      rec.dirty = false;
      return;
    }
    try {
      this.write(rec, value);
    } catch (err) {
      rec.dirty = true;
      this.log.error('cannot update an entry in the map; retried at the next gc', { addr: rec.addr, group: rec.group, error: errorMessage(err) });
    }
  }

  /** A new answer for a retired entry: live again (the caller wrote the value already). */
  revive(rec: EntryRecord): void {
    rec.retiredMs = undefined;
    rec.seenMs = undefined;
    this.retired.delete(rec);
  }

  /**
   * Retires a live entry: every hold ends now, the static and blocked marks go, DEST_F_RETIRED
   * is written, and a peer entry lets go of its connection (its traffic is then dropped by the
   * guard, never sent clear). False (nothing changed) when the map refused the write.
   */
  retire(rec: EntryRecord, reason: RetireReason, now: number): boolean {
    if (rec.retiredMs !== undefined) return false;
    const value: DestValue = { channelId: rec.channel.id, mark: rec.channel.mark, flags: DEST_F_RETIRED, expiresMs: Math.min(expiryOf(rec), now) };
    try {
      this.write(rec, value);
    } catch (err) {
      this.log.error('cannot retire an entry; it stays live', { addr: rec.addr, group: rec.group, reason, error: errorMessage(err) });
      return false;
    }
    endHolds(rec, now);
    rec.static = false;
    rec.blocked = undefined;
    rec.retiredMs = now;
    this.retired.add(rec);
    this.peers?.detach(rec);
    rec.adopted = false;
    this.m.retiredTotal.inc({ reason });
    return true;
  }

  /** Removes from map, table and peer state. False (entry kept) when the map refused. */
  remove(rec: EntryRecord, reason: RemoveReason): boolean {
    if (!this.removeFromMap(destKey(rec), reason)) return false;
    const g = this.byGroup.get(rec.group);
    if (g?.get(rec.addr) === rec) {
      g.delete(rec.addr);
      if (g.size === 0) this.byGroup.delete(rec.group);
    }
    this.retired.delete(rec);
    this.peers?.detach(rec);
    this.m.removed.inc({ reason });
    return true;
  }

  removeFromMap(key: DestKey, reason: string): boolean {
    try {
      this.dp.remove(key);
      return true;
    } catch (err) {
      // Kept: it is retried at the next gc. Leaving an entry protected is the safe side.
      this.log.error('cannot remove entry from the map', { addr: key.addr, group: key.group, reason, error: errorMessage(err) });
      return false;
    }
  }

  /**
   * gc for one entry: a live non-static entry whose holds ran out and that saw no packet for
   * `idle` is retired; a retired one quiet for `retire` is removed. Never an entry a registration
   * is still waiting on (its peer channel being set up).
   */
  collect(rec: EntryRecord, now: number): Collected {
    pruneNames(rec, now);
    if (rec.dirty) this.sync(rec);
    if (rec.static) return undefined;
    if (rec.retiredMs === undefined) {
      if (expiryOf(rec) > now) return undefined;
      if (rec.peer && !rec.peer.ready) return undefined;
      const lastSeen = this.dp.lastSeen(destKey(rec));
      if (lastSeen !== undefined && now - lastSeen < this.idleMs) return undefined;
      return this.retire(rec, 'expired', now) ? 'retired' : undefined;
    }
    // last_seen only moves forward: while the time known says `retire` cannot have passed, the
    // entry is not due and its last packet need not be read (one read per entry per `retire`,
    // not per sweep, for the many retired entries a day of answers leaves).
    if (now - quietSince(rec) < this.retireMs) return undefined;
    const lastSeen = this.dp.lastSeen(destKey(rec));
    if (lastSeen !== undefined && lastSeen > (rec.seenMs ?? Number.NEGATIVE_INFINITY)) rec.seenMs = lastSeen;
    if (now - quietSince(rec) < this.retireMs) return undefined;
    return this.remove(rec, 'expired') ? 'removed' : undefined;
  }

  /**
   * Before an answer adds `count` entries to a map of known capacity: evicts retired entries
   * (oldest first, none of `keep`) to make room, or refuses with map_full — evicting nothing —
   * when even all of them would not be enough. `what` names the answer in the error.
   */
  makeRoom(count: number, keep: ReadonlySet<EntryRecord>, what: string): void {
    if (this.capacity === undefined) return;
    const size = this.size;
    const over = size + count - this.capacity;
    if (over <= 0) return;
    let evictable = this.retired.size;
    for (const rec of keep) if (this.retired.has(rec)) evictable--;
    if (over > evictable) {
      throw new DnssealError(
        'registry',
        'map_full',
        `cannot protect ${what}: the destination map holds ${size} of ${this.capacity} entries ` +
          `(${this.retired.size} retired) and the answer needs ${count} more`,
      );
    }
    for (let i = 0; i < over; i++) if (!this.evictOne(keep)) break;
  }

  /** Writes a new key; when the map is full, evicts the oldest retired entry and tries again. */
  insert(key: DestKey, value: DestValue, keep: ReadonlySet<EntryRecord>): void {
    for (;;) {
      try {
        this.dp.upsert(key, value);
        return;
      } catch (err) {
        if (!(err instanceof DnssealError && err.code === 'map_full') || !this.evictOne(keep)) throw err;
      }
    }
  }

  /** Removes the retired entry quiet the longest (not in `keep`). False when there is none. */
  evictOne(keep: ReadonlySet<EntryRecord>): boolean {
    const skip = new Set(keep);
    for (let rec = this.order.next(this.retired, skip); rec; rec = this.order.next(this.retired, skip)) {
      if (!this.remove(rec, 'evicted')) {
        skip.add(rec); // the map refused: the next one
        continue;
      }
      this.m.evicted.inc();
      if (this.log.enabled('debug')) this.log.debug('evicted a retired entry for room', { addr: rec.addr, group: rec.group });
      return true;
    }
    return false;
  }
}
