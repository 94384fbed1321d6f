/** Helpers shared by the ipsec tests. */
import { expect } from 'bun:test';
import { DnssealError } from '../../src/util/errors.ts';

/**
 * Waits (bounded) until `cond` holds; throws naming `what` when it does not within `ms`. The
 * deadline only matters when the test fails: CI runs on a loaded 2-core machine, so it is generous.
 */
export async function until(cond: () => boolean, ms = 5_000, what = 'a condition'): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await Bun.sleep(10);
  }
}

/** The DnssealError `p` rejects with; fails the test when it resolves or throws anything else. */
export async function rejection(p: Promise<unknown>): Promise<DnssealError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(DnssealError);
    return e as DnssealError;
  }
  throw new Error('expected a rejection');
}
