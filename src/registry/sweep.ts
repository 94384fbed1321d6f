/**
 * The registry's background gc: one pass over every entry (entry-table.ts `collect` decides:
 * retire a live entry whose hold ran out and that went idle, remove a retired one quiet for
 * `retire`). The timed sweep runs in slices so a million entries never stall the DNS path.
 */
import type { Clock } from '../util/clock.ts';
import { errorMessage } from '../util/errors.ts';
import type { Logger } from '../util/log.ts';
import type { Collected, EntryTable } from './entry-table.ts';

/** What one sweep did. */
export interface GcResult {
  retired: number;
  removed: number;
}

export class Sweeper {
  private timer?: ReturnType<typeof setInterval>;
  private sweeping = false;

  constructor(
    private readonly t: EntryTable,
    private readonly clock: Clock,
    private readonly log: Logger,
    private readonly intervalMs: number,
  ) {}

  /** One pass at once (tests, and callers that must see the result). */
  gc(): GcResult {
    const now = this.clock.monoMs();
    const r: GcResult = { retired: 0, removed: 0 };
    for (const rec of [...this.t.records()]) count(r, this.t.collect(rec, now));
    this.logSweep(r);
    return r;
  }

  /**
   * The same pass in slices of `slice` entries, yielding to the event loop between slices so
   * a sweep over a million entries never stalls the DNS path. Used by `start()`.
   */
  async gcInSlices(slice = 5000): Promise<GcResult> {
    const r: GcResult = { retired: 0, removed: 0 };
    if (this.sweeping) return r;
    this.sweeping = true;
    try {
      // `records()` is live: entries removed meanwhile are skipped, new ones may be visited.
      const it = this.t.records();
      for (let done = false; !done; ) {
        const now = this.clock.monoMs();
        for (let i = 0; i < slice; i++) {
          const next = it.next();
          if (next.done) {
            done = true;
            break;
          }
          count(r, this.t.collect(next.value, now));
        }
        if (!done) await new Promise<void>((resolve) => setImmediate(resolve));
      }
    } finally {
      this.sweeping = false;
    }
    this.logSweep(r);
    return r;
  }

  /** Runs the sliced gc every interval on an unref'd timer (never keeps the process up). */
  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => {
      this.gcInSlices().catch((err: unknown) => this.log.error('gc failed', { error: errorMessage(err) }));
    }, this.intervalMs);
    this.timer.unref?.();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  private logSweep(r: GcResult): void {
    if (r.retired + r.removed > 0) this.log.debug('gc retired or removed entries', { retired: r.retired, removed: r.removed, left: this.t.size });
  }
}

function count(r: GcResult, what: Collected): void {
  if (what) r[what]++;
}
