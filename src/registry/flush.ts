/**
 * `flush` on the registry: what it selects is retired, never removed (issue #11 item 12): a
 * flushed entry stays in the map — a tunnel entry still steered into its channel, a peer entry's
 * connection let go so the guard drops its traffic — and goes after `retire` with no packet, or
 * comes back with the next answer. Nothing flushed falls into the clear.
 */
import type { Logger } from '../util/log.ts';
import { toEntry } from './entry.ts';
import { nameCount, releaseName } from './name-holds.ts';
import type { EntryTable } from './entry-table.ts';
import type { RegistryEntry } from './types.ts';

/** Retires every live non-static entry `pred` selects; returns them (as retired). */
export function withdrawEntries(t: EntryTable, log: Logger, now: number, pred: (e: RegistryEntry) => boolean): RegistryEntry[] {
  const out: RegistryEntry[] = [];
  for (const rec of [...t.records()]) {
    if (rec.static || rec.retiredMs !== undefined) continue;
    if (pred(toEntry(rec, undefined)) && t.retire(rec, 'flushed', now)) out.push(toEntry(rec, undefined));
  }
  if (out.length > 0) log.info('flushed entries: retired', { count: out.length });
  return out;
}

/**
 * Lets go of the names `pred` selects; a live non-static entry left with no name is retired,
 * traffic or not. Returns the names released and, as `removed`, the entries retired.
 */
export function releaseEntryNames(
  t: EntryTable,
  now: number,
  pred: (name: string, e: RegistryEntry) => boolean,
): { names: number; removed: RegistryEntry[] } {
  let released = 0;
  const retired: RegistryEntry[] = [];
  for (const rec of [...t.records()]) {
    const e = toEntry(rec, undefined);
    let changed = false;
    for (const n of e.names) {
      if (!pred(n, e)) continue;
      releaseName(rec, n);
      released++;
      changed = true;
    }
    if (!changed) continue;
    if (!rec.static && rec.retiredMs === undefined && nameCount(rec) === 0) {
      if (t.retire(rec, 'flushed', now)) retired.push(toEntry(rec, undefined));
    } else {
      t.sync(rec); // the expiry kept in the map may have moved
    }
  }
  return { names: released, removed: retired };
}
