/**
 * The shared Datapath conformance suite against the real kernel maps (root only), and what only a
 * pinned map can show: a restarted daemon (a new backend on the same pins, its Clock with another
 * zero) lists the expiry and flags that were written.
 */
import { afterAll, describe, expect, test } from 'bun:test';
import { DEST_F_BLOCKED, DEST_F_RETIRED, DEST_F_STATIC } from '../../../src/datapath/datapath.ts';
import { FakeClock, realClock } from '../../../src/util/clock.ts';
import { datapathConformance } from '../conformance.ts';
import { makeDp, privSkipReason, scratchPinRoot, wipe } from './helpers.ts';

const skip = privSkipReason();
const ROOT = scratchPinRoot('conf');
const REOPEN_ROOT = scratchPinRoot('conf-reopen');

if (skip) {
  console.log(`conformance-ebpf: skipping: ${skip}`);
  describe.skip('datapath conformance: ebpf', () => test('needs root', () => {}));
} else {
  afterAll(async () => {
    await wipe(ROOT);
    await wipe(REOPEN_ROOT);
  });
  datapathConformance(
    'ebpf',
    async () => {
      await wipe(ROOT); // every case starts from an EMPTY map
      return makeDp(ROOT, { capacity: 64 });
    },
    { capacity: 64, nowMs: () => realClock.monoMs() },
  );

  describe('datapath/ebpf restart', () => {
    test('list after reopening the pins returns the expiry and flags in the new Clock base when the daemon restarted', async () => {
      await wipe(REOPEN_ROOT);
      // Two processes' clocks: the same instants, another zero (as Bun's hrtime after a restart).
      const before = new FakeClock(1_700_000_000_000, 50_000_000);
      const t0 = performance.now();
      const dp1 = makeDp(REOPEN_ROOT, { clock: before });
      const rows = [
        { key: { group: 0, addr: '192.0.2.10' }, value: { channelId: 1, mark: 0x5e510001, flags: 0, expiresMs: 50_000_000 + 3_600_000 } },
        { key: { group: 5, addr: '2001:db8::10' }, value: { channelId: 2, mark: 0x5e510002, flags: DEST_F_RETIRED, expiresMs: 50_000_000 - 1_000 } },
        { key: { group: 0, addr: '::ffff:c000:20b' }, value: { channelId: 3, mark: 0x5e510003, flags: DEST_F_BLOCKED, expiresMs: 50_000_000 + 30_000 } },
        { key: { group: 0, addr: '198.51.100.0' }, value: { channelId: 1, mark: 0x5e510001, flags: DEST_F_STATIC } },
      ];
      for (const r of rows) dp1.upsert(r.key, r.value);
      dp1.close();

      const after = new FakeClock(1_700_000_000_000, 7_000);
      const dp2 = makeDp(REOPEN_ROOT, { clock: after });
      const between = performance.now() - t0; // real time between the two offset measurements
      try {
        const got = new Map(dp2.list().map((e) => [`${e.key.group}/${e.key.addr}`, e.value]));
        expect(got.size).toBe(rows.length);
        for (const r of rows) {
          const v = got.get(`${r.key.group}/${r.key.addr}`)!;
          expect({ ...v, expiresMs: undefined }).toEqual({ ...r.value, expiresMs: undefined });
          if (r.value.expiresMs === undefined) {
            expect(v.expiresMs).toBeUndefined();
            continue;
          }
          // What was left of the hold then is what is left now, in the new base, less the real
          // time that passed between the two offset measurements (±1 ms of rounding).
          const leftBefore = r.value.expiresMs - before.monoMs();
          const leftAfter = v.expiresMs! - after.monoMs();
          expect(leftAfter).toBeLessThanOrEqual(leftBefore + 1);
          expect(leftAfter).toBeGreaterThanOrEqual(leftBefore - between - 1);
        }
      } finally {
        dp2.close();
      }
    });
  });
}
