/**
 * PLACEHOLDER (owned by the eBPF work, #3): `dnsseal down` without a running daemon —
 * detach every program, remove every pin under /sys/fs/bpf/dnsseal. Idempotent.
 * Returns a line per object removed.
 */
import type { Logger } from '../util/log.ts';

export async function teardown(_log: Logger): Promise<string[]> {
  return [];
}
