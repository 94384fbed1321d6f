import { describe, expect, test } from 'bun:test';
import { DEST_F_BLOCKED, DEST_F_RETIRED } from '../../src/datapath/datapath.ts';
import { MAP_EXPIRY_GRAIN_MS, mapExpiry } from '../../src/registry/entry.ts';
import { DEFAULT_RETIRE_MS } from '../../src/registry/registry.ts';
import { DnssealError } from '../../src/util/errors.ts';
import { HUB, IDLE_MS, MIN_HOLD_MS, PARTNER, addrsIn, reg, rejection, rig } from './helpers.ts';

const A = '192.0.2.1';
const B = '192.0.2.2';
const KA = { group: 0, addr: A };
const RETIRE_MS = 3_600_000;
const peerReg = (over: Parameters<typeof reg>[0]) => reg({ channel: PARTNER, names: ['peer.partner.test'], ...over });
const valueOf = (r: ReturnType<typeof rig>, addr: string) => r.dp.list().find((e) => e.key.addr === addr)?.value;
/** Lets pending promise callbacks run (no timers involved). */
const flush = () => new Promise<void>((r) => setImmediate(r));

/** A rig whose entry A (hold min_hold) has run out and gone idle, then swept once: retired. */
async function retiredRig(over: Parameters<typeof rig>[0] = {}, channel = HUB) {
  const r = rig({ retireMs: RETIRE_MS, ...over });
  await r.registry.register(reg({ addrs: [A], ttlS: 1, channel, names: ['app.corp.example'] }));
  r.clock.advance(MIN_HOLD_MS);
  expect(r.registry.gc()).toEqual({ retired: 1, removed: 0 });
  return r;
}

describe('registry/retire', () => {
  test('an entry past its hold and idle stays in the map as retired when gc runs', async () => {
    const r = rig({ retireMs: RETIRE_MS });
    await r.registry.register(reg({ addrs: [A], ttlS: 1, names: ['app.corp.example'] }));
    r.clock.advance(MIN_HOLD_MS);
    r.registry.gc();
    // Still in the map, still under its channel's mark (a tunnel entry stays steered), flagged.
    expect(addrsIn(r.dp)).toEqual([`0/${A}`]);
    expect(valueOf(r, A)).toMatchObject({ channelId: HUB.id, mark: HUB.mark, flags: DEST_F_RETIRED });
    expect(r.dp.ops.remove).toBe(0);
    expect(r.registry.get(0, A)).toMatchObject({ retired: true, retiredMs: r.clock.monoMs(), names: ['app.corp.example'] });
    expect(r.registry.stats().retired).toBe(1);
    expect(r.metrics.counter('dnsseal_registry_retired_total', '').get({ reason: 'expired' })).toBe(1);
    r.metrics.expose(); // runs the collectors
    expect(r.metrics.gauge('dnsseal_registry_retired_entries', '').get({ channel: 'hub' })).toBe(1);
  });

  test('a retired entry is removed when retire passed with no packet', async () => {
    const r = await retiredRig();
    r.clock.advance(RETIRE_MS - 1);
    expect(r.registry.gc()).toEqual({ retired: 0, removed: 0 });
    r.clock.advance(1);
    expect(r.registry.gc()).toEqual({ retired: 0, removed: 1 });
    expect(r.dp.list()).toEqual([]);
    expect(r.registry.get(0, A)).toBeUndefined();
    expect(r.metrics.counter('dnsseal_registry_removed_total', '').get({ reason: 'expired' })).toBe(1);
  });

  test('a retired entry is kept when packets still hit it, until retire passes after the last one', async () => {
    const r = await retiredRig();
    r.clock.advance(RETIRE_MS - 10_000);
    r.dp.touch(KA); // an application that kept the address (dropped or steered, never clear)
    r.clock.advance(RETIRE_MS - 1);
    expect(r.registry.gc()).toEqual({ retired: 0, removed: 0 });
    r.clock.advance(1);
    expect(r.registry.gc()).toEqual({ retired: 0, removed: 1 });
  });

  test('gc reads a retired entry\'s last packet only when retire could have passed', async () => {
    const r = await retiredRig();
    let reads = 0;
    const lastSeen = r.dp.lastSeen.bind(r.dp);
    r.dp.lastSeen = (key) => {
      reads++;
      return lastSeen(key);
    };
    for (let i = 0; i < 100; i++) {
      r.clock.advance(RETIRE_MS / 100 - (i === 99 ? 1 : 0));
      r.registry.gc();
    }
    expect(reads).toBe(0);
    r.dp.touch(KA); // a packet now: the next read finds it and the entry stays another `retire`
    r.clock.advance(100);
    r.registry.gc();
    expect(reads).toBe(1);
    r.clock.advance(RETIRE_MS - 101); // 1 ms short of `retire` after the packet
    expect(r.registry.gc()).toEqual({ retired: 0, removed: 0 });
    r.clock.advance(1);
    expect(r.registry.gc()).toEqual({ retired: 0, removed: 1 });
  });

  test('retire defaults to 24 hours when not given', async () => {
    expect(DEFAULT_RETIRE_MS).toBe(24 * 3600_000);
    const r = rig();
    await r.registry.register(reg({ addrs: [A], ttlS: 1 }));
    r.clock.advance(MIN_HOLD_MS);
    r.registry.gc();
    r.clock.advance(DEFAULT_RETIRE_MS - 1);
    expect(r.registry.gc()).toEqual({ retired: 0, removed: 0 });
    r.clock.advance(1);
    expect(r.registry.gc()).toEqual({ retired: 0, removed: 1 });
  });

  test('a retired peer entry lets go of its peer connection and stays in the map when it retires', async () => {
    const r = rig({ retireMs: RETIRE_MS });
    await r.registry.register(peerReg({ addrs: [A], ttlS: 1 }));
    r.clock.advance(MIN_HOLD_MS);
    r.registry.gc();
    // The SA goes: the guard drops what is sent to it (like a blocked entry), never clear.
    expect(r.hooks.removed).toEqual([`partner ${A}`]);
    expect(valueOf(r, A)).toMatchObject({ channelId: PARTNER.id, mark: PARTNER.mark, flags: DEST_F_RETIRED });
    // Removed later without a second peerRemoved.
    r.clock.advance(RETIRE_MS);
    expect(r.registry.gc()).toEqual({ retired: 0, removed: 1 });
    expect(r.hooks.removed).toEqual([`partner ${A}`]);
  });

  test('a retired entry comes back live with its new hold when a new answer names it', async () => {
    const r = await retiredRig();
    const writes = r.dp.ops.upsert;
    await r.registry.register(reg({ addrs: [A], ttlS: 300, names: ['app.corp.example'] }));
    expect(r.dp.ops.upsert).toBe(writes + 1); // one value rewritten in place
    expect(r.dp.ops.remove).toBe(0);
    const until = r.clock.monoMs() + 300_000;
    expect(valueOf(r, A)).toEqual({ channelId: HUB.id, mark: HUB.mark, flags: 0, expiresMs: until });
    const e = r.registry.get(0, A)!;
    expect([e.retired, e.expiresMs]).toEqual([undefined, until]);
    expect(r.registry.stats().retired).toBe(0);
  });

  test('a retired peer entry attaches its peer again before the answer is released when a new answer names it', async () => {
    const r = rig({ retireMs: RETIRE_MS });
    await r.registry.register(peerReg({ addrs: [A], ttlS: 1 }));
    r.clock.advance(MIN_HOLD_MS);
    r.registry.gc();
    r.hooks.gated = true;
    let released = false;
    const p = r.registry.register(peerReg({ addrs: [A] })).then(() => void (released = true));
    await flush();
    expect(r.hooks.added).toEqual([`partner ${A} peer.partner.test`, `partner ${A} peer.partner.test`]);
    expect(released).toBe(false); // waits for the SA like a fresh registration
    expect(valueOf(r, A)!.flags).toBe(0);
    r.hooks.open();
    await p;
    expect(r.registry.get(0, A)!.retired).toBeUndefined();
  });

  test('a retired entry is revived as blocked when its peer fails again on a new answer', async () => {
    const r = rig({ retireMs: RETIRE_MS });
    await r.registry.register(peerReg({ addrs: [A], ttlS: 1 }));
    r.clock.advance(MIN_HOLD_MS);
    r.registry.gc();
    r.hooks.fail = new Error('AUTH_FAILED');
    await rejection(r.registry.register(peerReg({ addrs: [A] })));
    expect(r.registry.get(0, A)).toMatchObject({ blocked: 'AUTH_FAILED' });
    expect(valueOf(r, A)!.flags).toBe(DEST_F_BLOCKED);
  });

  test('a refresh that does not move the expiry writes nothing and one that does rewrites one value', async () => {
    const { registry, dp, clock } = rig();
    await registry.register(reg({ addrs: [A, B], ttlS: 600 }));
    const writes = dp.ops.upsert;
    await registry.register(reg({ addrs: [A, B], ttlS: 100 })); // a shorter hold: nothing moves
    await registry.register(reg({ addrs: [A], ttlS: 600 })); // the same expiry (same instant)
    expect(dp.ops.upsert).toBe(writes);
    clock.advance(MAP_EXPIRY_GRAIN_MS);
    await registry.register(reg({ addrs: [A], ttlS: 600 }));
    expect(dp.ops.upsert).toBe(writes + 1);
    expect(valueOf({ dp } as ReturnType<typeof rig>, A)!.expiresMs).toBe(mapExpiry(clock.monoMs() + 600_000));
  });

  test('refreshes within the same 10 s write the map once: its expiry is kept in whole 10 s, rounded up', async () => {
    // Every answer or cache hit of a popular protected name refreshes the hold; the kernel never
    // reads the expiry (only a restarted daemon adopts it), so one write per 10 s is enough.
    const grain = MAP_EXPIRY_GRAIN_MS;
    expect(grain).toBe(10_000);
    const { registry, dp, clock } = rig();
    clock.advance(grain - (clock.monoMs() % grain) + 100); // 100 ms into a grain
    await registry.register(reg({ addrs: [A], ttlS: 60 }));
    const first = valueOf({ dp } as ReturnType<typeof rig>, A)!.expiresMs!;
    expect(first % grain).toBe(0);
    expect(first).toBeGreaterThanOrEqual(clock.monoMs() + 60_000); // never shorter than the hold
    expect(first - (clock.monoMs() + 60_000)).toBeLessThan(grain); // at most one grain longer
    const writes = dp.ops.upsert;
    for (let i = 0; i < 9; i++) {
      clock.advance(1000); // 9.1 s in: still the same grain
      await registry.register(reg({ addrs: [A], ttlS: 60 }));
    }
    expect(dp.ops.upsert).toBe(writes);
    expect(registry.get(0, A)!.expiresMs).toBe(clock.monoMs() + 60_000); // the hold itself is exact
    clock.advance(1000); // the next grain
    await registry.register(reg({ addrs: [A], ttlS: 60 }));
    expect(dp.ops.upsert).toBe(writes + 1);
    expect(valueOf({ dp } as ReturnType<typeof rig>, A)!.expiresMs).toBe(first + grain);
  });

  test('a failed expiry write rejects the answer and leaves the map as it was', async () => {
    const { registry, dp, clock } = rig();
    await registry.register(reg({ addrs: [A], ttlS: 60 }));
    const before = dp.list()[0]!.value;
    clock.advance(1000);
    dp.failNext = new DnssealError('datapath', 'kernel', 'EPERM');
    const err = await rejection(registry.register(reg({ addrs: [A], ttlS: 600 })));
    expect(err.code).toBe('kernel');
    expect(dp.list()[0]!.value).toEqual(before);
    expect(registry.get(0, A)!.expiresMs).toBe(before.expiresMs!);
  });

  test('releasing a name writes the expiry the remaining names hold when it moves', async () => {
    const { registry, dp, clock } = rig();
    await registry.register(reg({ addrs: [A], names: ['short.example'], ttlS: 100 }));
    await registry.register(reg({ addrs: [A], names: ['long.example'], ttlS: 1000 }));
    registry.releaseNames((n) => n === 'long.example');
    expect(dp.list()[0]!.value.expiresMs).toBe(clock.monoMs() + 100_000);
  });

  test('the blocked flag is written when a peer fails and cleared when an answer brings it up', async () => {
    const { registry, hooks, dp } = rig();
    hooks.fail = new Error('AUTH_FAILED');
    await rejection(registry.register(peerReg({ addrs: [A] })));
    expect(dp.list()[0]!.value.flags).toBe(DEST_F_BLOCKED);
    hooks.fail = undefined;
    await registry.register(peerReg({ addrs: [A] }));
    expect(dp.list()[0]!.value.flags).toBe(0);
  });

  test('a blocked flag that could not be written is written by the next gc', async () => {
    const { registry, hooks, dp } = rig();
    let failing = true;
    hooks.fail = new Error('AUTH_FAILED');
    // The SA fails, and so does the write of the flag after it (the map refuses once).
    const orig = hooks.peerAdded.bind(hooks);
    hooks.peerAdded = async (...args) => {
      try {
        await orig(...args);
      } finally {
        if (failing) dp.failNext = new DnssealError('datapath', 'kernel', 'EBUSY');
        failing = false;
      }
    };
    await rejection(registry.register(peerReg({ addrs: [A] })));
    expect(registry.get(0, A)!.blocked).toBe('AUTH_FAILED');
    expect(dp.list()[0]!.value.flags).toBe(0);
    registry.gc();
    expect(dp.list()[0]!.value.flags).toBe(DEST_F_BLOCKED);
  });

  test('a retired entry is not retired again nor counted twice when gc and flush run again', async () => {
    const r = await retiredRig();
    const writes = r.dp.ops.upsert;
    expect(r.registry.withdraw(() => true)).toEqual([]);
    expect(r.registry.gc()).toEqual({ retired: 0, removed: 0 });
    expect(r.dp.ops.upsert).toBe(writes);
    expect(r.metrics.counter('dnsseal_registry_retired_total', '').get({ reason: 'expired' })).toBe(1);
  });

  test('a flushed entry with a running hold is retired at once and its hold ends', async () => {
    const { registry, dp, clock, metrics } = rig();
    await registry.register(reg({ addrs: [A], ttlS: 3600 }));
    dp.touch(KA);
    const [e] = registry.withdraw((x) => x.addr === A);
    expect(e).toMatchObject({ addr: A, retired: true, expiresMs: clock.monoMs() });
    expect(dp.list()[0]!.value).toMatchObject({ flags: DEST_F_RETIRED, expiresMs: clock.monoMs() });
    expect(metrics.counter('dnsseal_registry_retired_total', '').get({ reason: 'flushed' })).toBe(1);
  });

  test('a flushed peer entry lets go of its connection when it is retired', async () => {
    const { registry, hooks } = rig();
    await registry.register(peerReg({ addrs: [A] }));
    registry.releaseNames(() => true);
    expect(hooks.removed).toEqual([`partner ${A}`]);
    expect(registry.get(0, A)).toMatchObject({ retired: true, names: [] });
  });

  test('a reload withdrawal and a static dropped from config count as config when they retire', async () => {
    const { registry, metrics } = rig();
    await registry.register(reg({ addrs: [A] }));
    registry.setStatics([{ group: 0, cidr: B, channel: HUB }]);
    registry.reconcile(() => null);
    registry.setStatics([]);
    expect(metrics.counter('dnsseal_registry_retired_total', '').get({ reason: 'config' })).toBe(2);
    expect(registry.stats().retired).toBe(2);
  });

  test('a static entry takes a retired address back as static when statics list it', async () => {
    const r = await retiredRig();
    r.registry.setStatics([{ group: 0, cidr: A, channel: HUB }]);
    expect(r.registry.get(0, A)).toMatchObject({ static: true });
    expect(r.registry.get(0, A)!.retired).toBeUndefined();
    expect(r.registry.stats().retired).toBe(0);
  });

  test('an entry whose hold is over but which saw packets within idle is not retired', async () => {
    const { registry, dp, clock } = rig();
    await registry.register(reg({ addrs: [A], ttlS: 1 }));
    clock.advance(MIN_HOLD_MS);
    dp.touch(KA, clock.monoMs() - IDLE_MS + 1);
    expect(registry.gc()).toEqual({ retired: 0, removed: 0 });
  });
});
