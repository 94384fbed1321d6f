/**
 * Static entries (config `statics`, patent ¶46): always in the map, never collected. Applying a
 * new set is all-or-nothing for the kernel writes; entries that drop out of the set become
 * ordinary entries while names still hold them, otherwise they are removed.
 */
import type { Datapath, DestValue } from '../datapath/datapath.ts';
import { DEST_F_STATIC } from '../datapath/datapath.ts';
import type { ChannelSpec } from '../policy/types.ts';
import { DnssealError, errorMessage } from '../util/errors.ts';
import type { Logger } from '../util/log.ts';
import { expandCidr } from './cidr.ts';
import type { EntryRecord } from './entry.ts';
import { channelRef, destKey, expiryOf, recordKey } from './entry.ts';

export interface StaticRegistration {
  /** Client group (table) number. */
  group: number;
  /** Address or CIDR; expanded to one map entry per address (at most MAX_STATIC_HOSTS per CIDR). */
  cidr: string;
  channel: ChannelSpec;
}

export interface StaticsContext {
  entries: Map<string, EntryRecord>;
  dp: Datapath;
  log: Logger;
  now: number;
  detachPeer(rec: EntryRecord): void;
  remove(rec: EntryRecord): boolean;
}

interface Wanted {
  group: number;
  addr: string;
  channel: ChannelSpec;
  cidr: string;
}

function valueOf(id: number, mark: number, isStatic: boolean): DestValue {
  return { channelId: id, mark, flags: isStatic ? DEST_F_STATIC : 0 };
}

export function expandStatics(statics: StaticRegistration[]): Map<string, Wanted> {
  const wanted = new Map<string, Wanted>();
  for (const s of statics) {
    for (const addr of expandCidr(s.cidr)) {
      const key = recordKey(s.group, addr);
      const prev = wanted.get(key);
      if (prev && prev.channel.id !== s.channel.id) {
        throw new DnssealError(
          'registry',
          'static_conflict',
          `static entries ${prev.cidr} (channel ${prev.channel.name}) and ${s.cidr} (channel ${s.channel.name}) ` +
            `both cover ${addr} in group ${s.group}; one address can use one channel`,
        );
      }
      wanted.set(key, { group: s.group, addr, channel: s.channel, cidr: s.cidr });
    }
  }
  return wanted;
}

export function applyStatics(statics: StaticRegistration[], ctx: StaticsContext): void {
  const wanted = expandStatics(statics);
  const changes = [...wanted.entries()].filter(([key, w]) => {
    const rec = ctx.entries.get(key);
    return !(rec && rec.static && rec.channel.id === w.channel.id);
  });

  const done: [string, Wanted][] = [];
  try {
    for (const [key, w] of changes) {
      ctx.dp.upsert(destKey(w), valueOf(w.channel.id, w.channel.mark, true));
      done.push([key, w]);
    }
  } catch (err) {
    for (const [key, w] of done) {
      const prev = ctx.entries.get(key);
      try {
        if (prev) ctx.dp.upsert(destKey(w), valueOf(prev.channel.id, prev.channel.mark, prev.static));
        else ctx.dp.remove(destKey(w));
      } catch (undoErr) {
        ctx.log.error('cannot undo a static entry write', { addr: w.addr, error: errorMessage(undoErr) });
      }
    }
    const code = err instanceof DnssealError ? err.code : 'datapath_error';
    throw new DnssealError('registry', code, `cannot install static entries: ${errorMessage(err)}`, { cause: err });
  }

  for (const [key, w] of changes) {
    const rec = ctx.entries.get(key);
    if (!rec) {
      ctx.entries.set(key, { group: w.group, addr: w.addr, channel: channelRef(w.channel), names: new Map(), static: true });
      continue;
    }
    if (rec.channel.id !== w.channel.id) {
      ctx.log.warn('static entry takes an address over from another channel', {
        addr: w.addr,
        group: w.group,
        was: rec.channel.name,
        now: w.channel.name,
      });
      ctx.detachPeer(rec);
      rec.channel = channelRef(w.channel);
    }
    rec.static = true;
  }

  for (const [key, rec] of [...ctx.entries]) {
    if (!rec.static || wanted.has(key)) continue;
    if (expiryOf(rec) <= ctx.now) {
      ctx.remove(rec);
      continue;
    }
    try {
      ctx.dp.upsert(destKey(rec), valueOf(rec.channel.id, rec.channel.mark, false));
      rec.static = false;
    } catch (err) {
      // Stays static (and protected) until the next setStatics; the safe side.
      ctx.log.error('cannot clear the static flag', { addr: rec.addr, error: errorMessage(err) });
    }
  }
}
