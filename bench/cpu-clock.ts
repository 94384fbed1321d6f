/**
 * Wall and on-CPU time for the benches. The machine is shared: wall time includes the time
 * neighbours held the CPU, on-CPU time (/proc/thread-self/schedstat) does not (cache and
 * memory-bandwidth contention still count). Benches print both.
 */
import { readFileSync } from 'node:fs';

/** Nanoseconds this thread has been on a CPU; NaN where schedstat is missing. */
export function onCpuNs(): number {
  try {
    return Number(readFileSync('/proc/thread-self/schedstat', 'utf8').split(' ')[0]);
  } catch {
    return NaN;
  }
}

export interface Stamp {
  wall: number;
  cpu: number;
}

export const stamp = (): Stamp => ({ wall: Bun.nanoseconds(), cpu: onCpuNs() });

/** Wall and on-CPU nanoseconds since `a`, divided by `per` (e.g. per call). */
export const since = (a: Stamp, per = 1): Stamp => ({ wall: (Bun.nanoseconds() - a.wall) / per, cpu: (onCpuNs() - a.cpu) / per });
