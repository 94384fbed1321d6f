/**
 * Following a reload: entries keep their channel by name when ids are renumbered, and
 * `reconcile` lets go of what the new policy no longer protects — moving an entry to its new
 * channel in place when that is unambiguous, so a reload never opens a clear-text gap for
 * an address the new policy still protects.
 */
import type { Datapath } from '../datapath/datapath.ts';
import { DEST_F_STATIC } from '../datapath/datapath.ts';
import type { ChannelSpec } from '../policy/types.ts';
import { errorMessage } from '../util/errors.ts';
import type { Logger } from '../util/log.ts';
import type { EntryRecord } from './entry.ts';
import { ADOPTED_NAME, channelRef, destKey, toEntry } from './entry.ts';
import type { RegistryEntry } from './types.ts';

export interface ReloadContext {
  entries: Map<string, EntryRecord>;
  dp: Datapath;
  log: Logger;
  channelsById: Map<number, ChannelSpec>;
  channelsByName: Map<string, ChannelSpec>;
  detachPeer(rec: EntryRecord): void;
  remove(rec: EntryRecord): boolean;
}

export interface ReconcileResult {
  /** Names released. */
  names: number;
  /** Entries moved in place to another channel. */
  moved: number;
  removed: RegistryEntry[];
}

/**
 * Entries follow their channel by name (by id for ones adopted under an unknown channel); a
 * renumbered channel's entries are rewritten in the map in place. Entries whose channel is gone
 * keep protecting until `reconcileEntries` or a flush takes them away.
 */
export function followChannels(ctx: ReloadContext): void {
  for (const rec of ctx.entries.values()) {
    const spec = rec.channel.spec ? ctx.channelsByName.get(rec.channel.name) : ctx.channelsById.get(rec.channel.id);
    if (!spec) continue;
    if (spec.id !== rec.channel.id || spec.mark !== rec.channel.mark) {
      try {
        ctx.dp.upsert(destKey(rec), { channelId: spec.id, mark: spec.mark, flags: rec.static ? DEST_F_STATIC : 0 });
      } catch (err) {
        // Keeps the old mark: the guard drops what no XFRM policy takes (fail closed).
        ctx.log.error('cannot renumber an entry to its channel', { addr: rec.addr, channel: spec.name, error: errorMessage(err) });
        continue;
      }
    }
    rec.channel = channelRef(spec);
  }
}

/**
 * `channelFor(group, name)` is the channel name the new policy gives a name in a group, or null.
 * Per non-static entry:
 * - names still wanting the entry's channel stay (an `(adopted)` hold stays while its channel
 *   is configured); the others are released;
 * - if no name stays but every name now wants one same configured channel, the entry moves to
 *   it in place (map rewritten, no gap);
 * - an entry left without names is removed.
 */
export function reconcileEntries(ctx: ReloadContext, channelFor: (group: number, name: string) => string | null): ReconcileResult {
  let released = 0;
  let moved = 0;
  const removed: RegistryEntry[] = [];
  for (const rec of [...ctx.entries.values()]) {
    if (rec.static) continue;
    const want = new Map<string, string | null>();
    for (const n of rec.names.keys()) {
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
      rec.names.delete(n);
      released++;
    }
    if (rec.names.size === 0) {
      const e = toEntry(rec, undefined);
      if (ctx.remove(rec)) removed.push(e);
    }
  }
  if (released + moved + removed.length > 0) {
    ctx.log.info('reconciled with the new policy', { released, moved, removed: removed.length });
  }
  return { names: released, moved, removed };
}

/** Puts an entry under another channel in place (map first). False if the map refused. */
function moveRecord(ctx: ReloadContext, rec: EntryRecord, spec: ChannelSpec): boolean {
  try {
    ctx.dp.upsert(destKey(rec), { channelId: spec.id, mark: spec.mark, flags: 0 });
  } catch (err) {
    ctx.log.error('cannot move an entry to its new channel', { addr: rec.addr, channel: spec.name, error: errorMessage(err) });
    return false;
  }
  ctx.detachPeer(rec);
  rec.channel = channelRef(spec);
  return true;
}
