/**
 * Time behind an interface so lifetimes can be tested without sleeping.
 * `monoMs` is a monotonic millisecond count; backends that read kernel time stamps
 * (eBPF `last_seen`) translate them into this base.
 */
export interface Clock {
  /** Wall-clock milliseconds since the epoch (for display and TSIG time). */
  nowMs(): number;
  /** Monotonic milliseconds; never goes backwards. Its zero is arbitrary: the eBPF backend
   *  measures the offset to CLOCK_MONOTONIC (`bpf_ktime_get_ns`) itself. */
  monoMs(): number;
}

export const realClock: Clock = {
  nowMs: () => Date.now(),
  // Monotonic, counted from process start, not from boot (the eBPF backends measure the offset
  // to CLOCK_MONOTONIC). performance.now() rather than hrtime.bigint(): no BigInt allocated and
  // divided on every call — the cache and the registry read the clock on every hit.
  monoMs: () => Math.floor(performance.now()),
};

/** A clock tests move by hand. */
export class FakeClock implements Clock {
  constructor(
    private wall = 1_700_000_000_000,
    private mono = 1_000_000,
  ) {}
  nowMs(): number {
    return this.wall;
  }
  monoMs(): number {
    return this.mono;
  }
  advance(ms: number): void {
    this.wall += ms;
    this.mono += ms;
  }
}
