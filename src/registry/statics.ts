/**
 * Static entries (config `statics`, patent ¶46): always in the map, never collected. Applying a
 * new set is all-or-nothing for the kernel writes; entries that drop out of the set become
 * ordinary entries while names still hold them, otherwise they are retired (never removed: an
 * address the config stops listing does not fall into the clear at once).
 */
import type { DestValue } from '../datapath/datapath.ts';
import { DEST_F_STATIC } from '../datapath/datapath.ts';
import type { ChannelSpec } from '../policy/types.ts';
import { DnssealError, errorMessage } from '../util/errors.ts';
import type { Logger } from '../util/log.ts';
import { expandCidr } from './cidr.ts';
import { destKey, destValue, EntryRecord, noteWritten, recordKey, writtenValue } from './entry.ts';
import { expiryOf } from './name-holds.ts';
import type { EntryTable } from './entry-table.ts';

export interface StaticRegistration {
  /** Client group (table) number. */
  group: number;
  /** Address or CIDR; expanded to one map entry per address (at most MAX_STATIC_HOSTS per CIDR). */
  cidr: string;
  channel: ChannelSpec;
}

export interface StaticsContext {
  table: EntryTable;
  log: Logger;
  now: number;
  detachPeer(rec: EntryRecord): void;
}

interface Wanted {
  group: number;
  addr: string;
  channel: ChannelSpec;
  cidr: string;
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

/** The value of `w` as a static entry: a DNS entry it takes over keeps its holds (and its block, same channel). */
function staticValue(w: Wanted, rec: EntryRecord | undefined): DestValue {
  if (!rec) return { channelId: w.channel.id, mark: w.channel.mark, flags: DEST_F_STATIC, expiresMs: 0 };
  const same = rec.channel.id === w.channel.id;
  return destValue({ ...rec, static: true, retiredMs: undefined, blocked: same ? rec.blocked : undefined }, w.channel);
}

export function applyStatics(statics: StaticRegistration[], ctx: StaticsContext): void {
  const { table } = ctx;
  const wanted = expandStatics(statics);
  const changes = [...wanted.values()].filter((w) => {
    const rec = table.get(w.group, w.addr);
    return !(rec && rec.static && rec.channel.id === w.channel.id);
  });

  const done: [Wanted, DestValue][] = [];
  try {
    for (const w of changes) {
      const value = staticValue(w, table.get(w.group, w.addr));
      table.dp.upsert(destKey(w), value);
      done.push([w, value]);
    }
  } catch (err) {
    for (const [w] of done) {
      const prev = table.get(w.group, w.addr);
      try {
        if (prev) table.dp.upsert(destKey(w), writtenValue(prev));
        else table.dp.remove(destKey(w));
      } catch (undoErr) {
        ctx.log.error('cannot undo a static entry write', { addr: w.addr, error: errorMessage(undoErr) });
      }
    }
    const code = err instanceof DnssealError ? err.code : 'datapath_error';
    throw new DnssealError('registry', code, `cannot install static entries: ${errorMessage(err)}`, { cause: err });
  }

  for (const [w, value] of done) {
    const rec = table.get(w.group, w.addr);
    if (!rec) {
      table.add(new EntryRecord(w.group, w.addr, table.channelRef(w.channel), value, true));
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
      rec.adopted = false;
      rec.blocked = undefined;
      rec.channel = table.channelRef(w.channel);
    }
    if (rec.retiredMs !== undefined) table.revive(rec);
    rec.static = true;
    noteWritten(rec, value);
    rec.dirty = false;
  }

  for (const rec of [...table.records()]) {
    if (!rec.static || wanted.has(recordKey(rec.group, rec.addr))) continue;
    if (expiryOf(rec) <= ctx.now) {
      table.retire(rec, 'config', ctx.now); // on failure it stays static (and protected): the safe side
      continue;
    }
    try {
      table.write(rec, destValue({ ...rec, static: false }));
      rec.static = false;
    } catch (err) {
      // Stays static (and protected) until the next setStatics; the safe side.
      ctx.log.error('cannot clear the static flag', { addr: rec.addr, error: errorMessage(err) });
    }
  }
}
