/**
 * The `fake` backend: an in-memory stand-in for the pinned HASH map, for tests. Like the
 * kernel map it has a fixed capacity and refuses an insert when full (never evicts), and
 * overwriting an existing key always succeeds. `touch()` stamps `last_seen` as if the eBPF
 * programs had seen a packet. Runs the same conformance suite as the real backend.
 */
import type { Clock } from '../util/clock.ts';
import { DnssealError } from '../util/errors.ts';
import type { DestKey, DestValue } from './datapath.ts';
import { destKeyString } from './datapath.ts';
import { NoneDatapath } from './none.ts';

export interface FakeDatapathOptions {
  /** Maximum entries (like the map's max_entries); default 65536. */
  capacity?: number;
  /** Used by `touch()` without an explicit time. */
  clock?: Clock;
}

export class FakeDatapath extends NoneDatapath {
  override readonly kind: string = 'fake';
  readonly capacity: number;
  private readonly clock?: Clock;
  /** Test hook: when set, the next upsert/remove throws it once (simulates a kernel error). */
  failNext?: Error;
  /** Counts of operations, for tests that check nothing was written. */
  ops = { upsert: 0, remove: 0 };
  /** Test hook: what `health()` answers (a reason = the data path is lost). */
  unhealthy?: string;

  constructor(opts: FakeDatapathOptions = {}) {
    super();
    this.capacity = opts.capacity ?? 65536;
    this.clock = opts.clock;
  }

  override upsert(key: DestKey, value: DestValue): void {
    this.takeFailure();
    if (!this.table.has(key) && this.table.size >= this.capacity) {
      throw new DnssealError(
        'datapath',
        'map_full',
        `destination map is full (${this.capacity} entries); cannot add ${destKeyString(key)}`,
      );
    }
    this.ops.upsert++;
    super.upsert(key, value);
  }

  override remove(key: DestKey): void {
    this.takeFailure();
    this.ops.remove++;
    super.remove(key);
  }

  override health(): string | undefined {
    return this.unhealthy;
  }

  /** Stamp `last_seen` as the eBPF programs would on a packet. No-op for an absent key. */
  touch(key: DestKey, monoMs?: number): void {
    const row = this.table.get(key);
    if (!row) return;
    const at = monoMs ?? this.clock?.monoMs();
    if (at === undefined) throw new Error('fake datapath: touch() needs a time or a clock');
    row.lastSeenMs = at;
  }

  private takeFailure(): void {
    const err = this.failNext;
    if (err) {
      this.failNext = undefined;
      throw err;
    }
  }
}
