/**
 * After a restart: the registry rebuilt from the pinned map, never flushing it. The map value
 * keeps what adoption needs — channel, expiry (the latest hold of any name) and the static,
 * retired and blocked flags — so an adopted entry keeps its real hold and state.
 *
 * What adoption still cannot restore (the kernel does not have it): the names (every adopted
 * entry shows `(adopted)` until an answer names it again), each name's own hold (one expiry for
 * all), why a blocked entry was blocked, when a retired entry was retired (its `retire` time
 * counts from the restart: the longer side), and the peer connection state of this run (an
 * adopted peer entry attaches again on its next answer). An entry from a map written before the
 * expiry was kept (no `expiresMs`) is held for `min_hold` from now, as before.
 */
import { DEST_F_BLOCKED, DEST_F_RETIRED, DEST_F_STATIC } from '../datapath/datapath.ts';
import type { ChannelSpec } from '../policy/types.ts';
import type { Logger } from '../util/log.ts';
import { ADOPTED_NAME, type ChannelRef, EntryRecord } from './entry.ts';
import { holdName } from './name-holds.ts';
import type { EntryTable } from './entry-table.ts';

/** The reason an adopted entry carries when the pinned map had it blocked. */
export const ADOPTED_BLOCKED = 'blocked before the restart (its peer channel had failed)';

export interface AdoptContext {
  table: EntryTable;
  log: Logger;
  now: number;
  minHoldMs: number;
  channelsById: Map<number, ChannelSpec>;
}

/** Adds every map entry the table does not have yet; returns how many. Nothing is written. */
export function adoptEntries(ctx: AdoptContext): number {
  const { table, now } = ctx;
  let n = 0;
  /** Refs of channels the table does not know (`#id`), one per id and mark, shared like known ones. */
  const unknown = new Map<string, ChannelRef>();
  for (const e of table.dp.list()) {
    if (table.get(e.key.group, e.key.addr)) continue;
    const { channelId: id, mark } = e.value;
    const spec = ctx.channelsById.get(id);
    let channel = spec ? table.channelRef(spec) : unknown.get(`${id}/${mark}`);
    if (!channel) unknown.set(`${id}/${mark}`, (channel = { id, mark, name: `#${id}` }));
    const f = e.value.flags;
    const retired = (f & DEST_F_RETIRED) !== 0;
    const kept = e.value.expiresMs ?? 0;
    const hold = kept > 0 ? kept : retired ? 0 : now + ctx.minHoldMs;
    const rec = new EntryRecord(e.key.group, e.key.addr, channel, e.value, !retired && (f & DEST_F_STATIC) !== 0);
    holdName(rec, ADOPTED_NAME, hold);
    rec.adopted = true;
    if (retired) {
      rec.retiredMs = now;
      rec.seenMs = e.lastSeenMs;
    } else if ((f & DEST_F_BLOCKED) !== 0) {
      rec.blocked = ADOPTED_BLOCKED;
    }
    table.add(rec);
    n++;
  }
  ctx.log.info('adopted entries from the pinned map', { adopted: n, retired: table.retired.size, datapath: table.dp.kind });
  return n;
}
