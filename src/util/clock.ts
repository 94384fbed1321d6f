/**
 * Time behind an interface so lifetimes can be tested without sleeping.
 * `monoMs` is CLOCK_MONOTONIC in milliseconds — the same base as the eBPF programs'
 * `bpf_ktime_get_ns()`, so `last_seen` stamps compare directly.
 */
export interface Clock {
  /** Wall-clock milliseconds since the epoch (for display and TSIG time). */
  nowMs(): number;
  /** Monotonic milliseconds (CLOCK_MONOTONIC); never goes backwards. */
  monoMs(): number;
}

export const realClock: Clock = {
  nowMs: () => Date.now(),
  // Bun's hrtime is CLOCK_MONOTONIC on Linux, like bpf_ktime_get_ns().
  monoMs: () => Number(process.hrtime.bigint() / 1_000_000n),
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
