/**
 * Which retired entry goes first when an answer needs room in a full map: the one quiet the
 * longest — no packet and retired for the longest time (`quietSince`). Live and static entries are
 * never candidates (only the retired set is). The order is a snapshot built when needed and used
 * until it runs out, so a full map of a million retired entries costs one sort per million
 * evictions, not one per answer. The snapshot sorts by the last packet time the registry knew
 * (gc reads it only when `retire` could have passed), so each candidate's is read again before
 * it goes (one lastSeen): one used since goes back in its place and the next is tried.
 */
import type { EntryRecord } from './entry.ts';

/** monoMs since which a retired entry has been quiet: its retirement or its last packet, whichever is later. */
export function quietSince(rec: EntryRecord): number {
  return Math.max(rec.seenMs ?? Number.NEGATIVE_INFINITY, rec.retiredMs ?? Number.NEGATIVE_INFINITY);
}

export class EvictionOrder {
  /** Newest first, so `pop()` gives the oldest. */
  private snapshot: { rec: EntryRecord; quiet: number }[] = [];

  /** `lastSeen` reads the data path's last packet time of an entry (monoMs), if any. */
  constructor(private readonly lastSeen: (rec: EntryRecord) => number | undefined) {}

  /** The retired entry quiet the longest that is not in `keep`, or undefined when there is none. */
  next(retired: Set<EntryRecord>, keep: Set<EntryRecord>): EntryRecord | undefined {
    for (let rebuilt = false; ; rebuilt = true) {
      for (let c = this.snapshot.pop(); c; c = this.snapshot.pop()) {
        const rec = c.rec;
        if (!retired.has(rec) || keep.has(rec)) continue;
        const seen = this.lastSeen(rec);
        if (seen !== undefined && seen > (rec.seenMs ?? Number.NEGATIVE_INFINITY)) rec.seenMs = seen;
        const quiet = quietSince(rec);
        if (quiet > c.quiet) {
          this.requeue(rec, quiet); // used since the snapshot (or since gc last read it): back in its place
          continue;
        }
        return rec;
      }
      if (rebuilt) return undefined;
      this.snapshot = [...retired].map((rec) => ({ rec, quiet: quietSince(rec) })).sort((a, b) => b.quiet - a.quiet);
    }
  }

  /** Puts `rec` back where `quiet` sorts it (the snapshot is newest first). */
  private requeue(rec: EntryRecord, quiet: number): void {
    let lo = 0;
    let hi = this.snapshot.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.snapshot[mid]!.quiet > quiet) lo = mid + 1;
      else hi = mid;
    }
    this.snapshot.splice(lo, 0, { rec, quiet });
  }
}
