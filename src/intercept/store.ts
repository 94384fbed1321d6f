/**
 * Where intercept mappings persist: (group, intercept) ↔ (group, real), with the hold's expiry
 * and the data path's last packet time. Backends: `memory` (the fake, for tests and the `none`
 * datapath) and `ebpf` (the pinned dnsseal_icpt_fwd / dnsseal_icpt_rev maps, which the NAT
 * programs read — see ebpf-store.ts). Both run the shared suite in test/intercept/store-contract.ts.
 * All operations are synchronous (in-process bpf() for the eBPF backend).
 */
import { DnssealError } from '../util/errors.ts';

export interface StoredMapping {
  group: number;
  /** Canonical texts. */
  intercept: string;
  real: string;
  /** Clock.monoMs() when the served TTL / min_hold runs out. */
  expiresMs: number;
  /** Clock.monoMs() of the last translated packet (either direction), undefined if never. */
  lastSeenMs?: number;
}

export interface InterceptStore {
  readonly kind: string;
  /** Writes both directions (insert or overwrite; keeps last_seen). Throws `map_full` when full. */
  put(m: Omit<StoredMapping, 'lastSeenMs'>): void;
  /** Removes both directions; absent is not an error. */
  remove(m: Pick<StoredMapping, 'group' | 'intercept' | 'real'>): void;
  /** Every complete mapping; half-written ones (one direction only) come back with `half` set. */
  list(): (StoredMapping & { half?: 'fwd' | 'rev' })[];
  /** Last packet time of a mapping (monoMs), undefined if never or absent. */
  lastSeen(group: number, intercept: string): number | undefined;
  close(): void;
}

const key = (group: number, addr: string) => `${group}/${addr}`;

/** In-memory store with a capacity, and `touch()` standing in for the data path's stamps. */
export class MemoryInterceptStore implements InterceptStore {
  readonly kind = 'memory';
  private readonly fwd = new Map<string, StoredMapping>();
  private readonly rev = new Map<string, string>();

  constructor(private readonly capacity = 262144) {}

  put(m: Omit<StoredMapping, 'lastSeenMs'>): void {
    const k = key(m.group, m.intercept);
    const old = this.fwd.get(k);
    if (!old && this.fwd.size >= this.capacity) {
      throw new DnssealError('intercept', 'map_full', `intercept map is full (${this.capacity} entries)`);
    }
    if (old && old.real !== m.real) this.rev.delete(key(old.group, old.real));
    this.fwd.set(k, { ...m, lastSeenMs: old?.real === m.real ? old.lastSeenMs : undefined });
    this.rev.set(key(m.group, m.real), m.intercept);
  }

  remove(m: Pick<StoredMapping, 'group' | 'intercept' | 'real'>): void {
    this.fwd.delete(key(m.group, m.intercept));
    if (this.rev.get(key(m.group, m.real)) === m.intercept) this.rev.delete(key(m.group, m.real));
  }

  list(): StoredMapping[] {
    return [...this.fwd.values()].map((m) => ({ ...m }));
  }

  lastSeen(group: number, intercept: string): number | undefined {
    return this.fwd.get(key(group, intercept))?.lastSeenMs;
  }

  /** Test hook: a packet went through the mapping at `monoMs`. */
  touch(group: number, intercept: string, monoMs: number): void {
    const m = this.fwd.get(key(group, intercept));
    if (m) m.lastSeenMs = monoMs;
  }

  /** Test hook: what the NAT would translate `intercept` to for `group`. */
  realOf(group: number, intercept: string): string | undefined {
    return this.fwd.get(key(group, intercept))?.real;
  }

  close(): void {}
}
