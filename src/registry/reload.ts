/**
 * Following a reload: entries keep their channel by name when ids are renumbered, and
 * `reconcile` lets go of what the new policy no longer protects — moving an entry to its new
 * channel in place when that is unambiguous, so a reload never opens a clear-text gap for
 * an address the new policy still protects.
 *
 * An entry the new policy leaves without a name is retired under its old channel, not removed:
 * - when its names now want several other channels (ambiguous), the policy still protects the
 *   address, so removing it would put it in the clear until the next answer; retired, the next
 *   answer for any of those channels takes it over in place;
 * - when no rule wants its names any more (or its channel is gone), applications that resolved
 *   it earlier may still hold the address; retired, a tunnel entry keeps going through the old
 *   channel and a peer entry's traffic is dropped, until `retire` passes with no packet. A reload
 *   is never the moment protected traffic falls into the clear, also by a mistake in the file.
 */
import type { ChannelSpec } from '../policy/types.ts';
import { errorMessage } from '../util/errors.ts';
import type { Logger } from '../util/log.ts';
import type { EntryRecord } from './entry.ts';
import { ADOPTED_NAME, destValue, toEntry } from './entry.ts';
import { nameCount, namesOf, releaseName } from './name-holds.ts';
import type { EntryTable } from './entry-table.ts';
import type { RegistryEntry } from './types.ts';

export interface ReloadContext {
  table: EntryTable;
  log: Logger;
  now: number;
  channelsById: Map<number, ChannelSpec>;
  channelsByName: Map<string, ChannelSpec>;
  detachPeer(rec: EntryRecord): void;
}

export interface ReconcileResult {
  /** Names released. */
  names: number;
  /** Entries moved in place to another channel. */
  moved: number;
  /**
   * Entries left without a name and retired (not removed: still in the map, never clear). The
   * field keeps its name for the callers.
   */
  removed: RegistryEntry[];
}

/**
 * Entries follow their channel by name (by id for ones adopted under an unknown channel); a
 * renumbered channel's entries are rewritten in the map in place. Entries whose channel is gone
 * keep protecting until `reconcileEntries` or a flush takes them away.
 */
export function followChannels(ctx: ReloadContext): void {
  for (const rec of ctx.table.records()) {
    const spec = rec.channel.spec ? ctx.channelsByName.get(rec.channel.name) : ctx.channelsById.get(rec.channel.id);
    if (!spec) continue;
    if (spec.id !== rec.channel.id || spec.mark !== rec.channel.mark) {
      try {
        ctx.table.write(rec, destValue(rec, spec));
      } catch (err) {
        // Keeps the old mark: the guard drops what no XFRM policy takes (fail closed).
        ctx.log.error('cannot renumber an entry to its channel', { addr: rec.addr, channel: spec.name, error: errorMessage(err) });
        continue;
      }
    }
    rec.channel = ctx.table.channelRef(spec);
  }
}

/**
 * `channelFor(group, name)` is the channel name the new policy gives a name in a group, or null.
 * Per non-static entry:
 * - names still wanting the entry's channel stay (an `(adopted)` hold stays while its channel
 *   is configured); the others are released;
 * - if no name stays but every name now wants one same configured channel, the entry moves to
 *   it in place (map rewritten, no gap);
 * - an entry left without names is retired (see the top of this file).
 */
export function reconcileEntries(ctx: ReloadContext, channelFor: (group: number, name: string) => string | null): ReconcileResult {
  let released = 0;
  let moved = 0;
  const retired: RegistryEntry[] = [];
  for (const rec of [...ctx.table.records()]) {
    if (rec.static) continue;
    const want = new Map<string, string | null>();
    for (const n of namesOf(rec)) {
      const adoptedOk = ctx.channelsByName.has(rec.channel.name) ? rec.channel.name : null;
      want.set(n, n === ADOPTED_NAME ? adoptedOk : channelFor(rec.group, n));
    }
    const targets = new Set(want.values());
    const only = targets.size === 1 ? [...targets][0] : undefined;
    const spec = only ? ctx.channelsByName.get(only) : undefined;
    if (spec && spec.name !== rec.channel.name && moveRecord(ctx, rec, spec)) {
      moved++;
      continue;
    }
    for (const [n, target] of want) {
      if (target === rec.channel.name) continue;
      releaseName(rec, n);
      released++;
    }
    if (nameCount(rec) > 0 || rec.retiredMs !== undefined) {
      ctx.table.sync(rec); // the expiry kept in the map may have moved
      continue;
    }
    if (ctx.table.retire(rec, 'config', ctx.now)) retired.push(toEntry(rec, undefined));
  }
  if (released + moved + retired.length > 0) {
    ctx.log.info('reconciled with the new policy', { released, moved, retired: retired.length });
  }
  return { names: released, moved, removed: retired };
}

/**
 * Puts an entry under another channel in place (map first; a retired one stays retired, a
 * blocked one is not blocked by the new channel). False if the map refused.
 */
function moveRecord(ctx: ReloadContext, rec: EntryRecord, spec: ChannelSpec): boolean {
  try {
    ctx.table.write(rec, destValue({ ...rec, blocked: undefined }, spec));
  } catch (err) {
    ctx.log.error('cannot move an entry to its new channel', { addr: rec.addr, channel: spec.name, error: errorMessage(err) });
    return false;
  }
  ctx.detachPeer(rec);
  rec.adopted = false;
  rec.blocked = undefined;
  rec.channel = ctx.table.channelRef(spec);
  return true;
}
