import { describe, expect, test } from 'bun:test';
import { DEST_F_RETIRED, DEST_F_STATIC } from '../../src/datapath/datapath.ts';
import { mapExpiry } from '../../src/registry/entry.ts';
import { DnssealError } from '../../src/util/errors.ts';
import { HUB, IDLE_MS, MIN_HOLD_MS, OTHER, PARTNER, addrsIn, reg, rejection, rig } from './helpers.ts';

const A = '192.0.2.1';
const B = '192.0.2.2';
const C = '2001:db8::3';
const NONE = { retired: 0, removed: 0 };
const RETIRED_ONE = { retired: 1, removed: 0 };

describe('registry', () => {
  test.each([
    ['the TTL when it is longer than min_hold', 300, 300_000],
    ['min_hold when the TTL is shorter', 5, MIN_HOLD_MS],
    ['min_hold when the TTL is zero', 0, MIN_HOLD_MS],
    ['min_hold when the TTL is negative', -5, MIN_HOLD_MS],
    ['min_hold when the TTL is not a number', Number.NaN, MIN_HOLD_MS],
  ])('hold is %s', async (_label, ttlS, holdMs) => {
    const { registry, clock } = rig();
    const t0 = clock.monoMs();
    await registry.register(reg({ addrs: [A], ttlS }));
    expect(registry.get(0, A)!.expiresMs).toBe(t0 + holdMs);
  });

  test('every address is in the map when register resolves', async () => {
    const { registry, dp } = rig();
    await registry.register(reg({ addrs: [A, C] }));
    expect(addrsIn(dp)).toEqual([`0/${A}`, `0/${C}`]);
    const row = dp.list().find((e) => e.key.addr === A)!;
    expect(row.value).toEqual({ channelId: HUB.id, mark: HUB.mark, flags: 0, expiresMs: registry.get(0, A)!.expiresMs });
    expect(registry.list().map((e) => e.addr).sort()).toEqual([A, C]);
  });

  test('registerNow writes a tunnel answer before it returns, throws a conflict at once, and gives a promise only for a peer channel', async () => {
    const { registry, dp, hooks, metrics } = rig();
    expect(registry.registerNow(reg({ addrs: [A] }))).toBeUndefined();
    expect(addrsIn(dp)).toEqual([`0/${A}`]);
    let thrown: unknown;
    try {
      registry.registerNow(reg({ addrs: [A], channel: OTHER }));
    } catch (err) {
      thrown = err;
    }
    expect((thrown as DnssealError).code).toBe('channel_conflict');
    expect(metrics.expose()).toMatch(/^dnsseal_registry_registrations_total\{outcome="conflict"\} 1$/m);
    hooks.gated = true;
    const waiting = registry.registerNow(reg({ addrs: [B], channel: PARTNER }));
    expect(waiting).toBeInstanceOf(Promise);
    expect(addrsIn(dp)).toEqual([`0/${A}`, `0/${B}`]); // in the map first, then the channel
    hooks.open();
    await waiting;
    expect(metrics.expose()).toMatch(/^dnsseal_registry_registrations_total\{outcome="ok"\} 2$/m);
  });

  test('duplicate addresses and names are counted once when an answer repeats them', async () => {
    const { registry, dp } = rig();
    await registry.register(reg({ addrs: [A, A], names: ['a.example', 'a.example'] }));
    expect(dp.list()).toHaveLength(1);
    expect(registry.get(0, A)!.names).toEqual(['a.example']);
  });

  test('entry is kept when its hold is still running', async () => {
    const { registry, clock } = rig();
    await registry.register(reg({ addrs: [A], ttlS: 120 }));
    clock.advance(119_999);
    expect(registry.gc()).toEqual(NONE);
    expect(registry.get(0, A)).toBeDefined();
  });

  test('entry is retired, not removed, when expired and never seen by the data path', async () => {
    const { registry, dp, clock } = rig();
    await registry.register(reg({ addrs: [A], ttlS: 120 }));
    clock.advance(120_000);
    expect(registry.gc()).toEqual(RETIRED_ONE);
    expect(registry.get(0, A)!.retired).toBe(true);
    expect(dp.list()[0]!.value.flags).toBe(DEST_F_RETIRED);
  });

  test('entry is kept when expired but packets flowed within idle', async () => {
    const { registry, dp, clock } = rig();
    await registry.register(reg({ addrs: [A], ttlS: 5 }));
    clock.advance(MIN_HOLD_MS + 10_000);
    dp.touch({ group: 0, addr: A }); // a packet now
    clock.advance(IDLE_MS - 1);
    expect(registry.gc()).toEqual(NONE);
    expect(registry.get(0, A)!.lastSeenMs).toBe(clock.monoMs() - (IDLE_MS - 1));
  });

  test('entry is retired when expired and idle for the idle time', async () => {
    const { registry, dp, clock } = rig();
    await registry.register(reg({ addrs: [A], ttlS: 5 }));
    clock.advance(MIN_HOLD_MS + 10_000);
    dp.touch({ group: 0, addr: A });
    clock.advance(IDLE_MS);
    expect(registry.gc()).toEqual(RETIRED_ONE);
    expect(addrsIn(dp)).toEqual([`0/${A}`]);
  });

  test('a live flow keeps its entry when it runs far past the TTL', async () => {
    const { registry, dp, clock } = rig();
    await registry.register(reg({ addrs: [A], ttlS: 5 }));
    for (let i = 0; i < 100; i++) {
      clock.advance(60_000);
      dp.touch({ group: 0, addr: A });
      registry.gc();
    }
    expect(registry.get(0, A)!.retired).toBeUndefined();
  });

  test('address stays until the last name lets go when several names hold it', async () => {
    const { registry, clock } = rig();
    await registry.register(reg({ addrs: [A], names: ['short.example'], ttlS: 100 }));
    await registry.register(reg({ addrs: [A], names: ['long.example'], ttlS: 1000 }));
    clock.advance(100_000);
    expect(registry.gc()).toEqual(NONE);
    expect(registry.get(0, A)!.names).toEqual(['long.example']);
    clock.advance(900_000);
    expect(registry.gc()).toEqual(RETIRED_ONE);
  });

  test('names of an expired entry are still shown when only traffic keeps it', async () => {
    const { registry, dp, clock } = rig();
    await registry.register(reg({ addrs: [A], names: ['x.example', 'cdn.example'], ttlS: 5 }));
    clock.advance(MIN_HOLD_MS * 2);
    dp.touch({ group: 0, addr: A });
    registry.gc();
    expect(registry.get(0, A)!.names).toEqual(['x.example', 'cdn.example']);
  });

  test('a new answer refreshes the hold when it comes before expiry', async () => {
    const { registry, clock } = rig();
    await registry.register(reg({ addrs: [A], ttlS: 100 }));
    clock.advance(90_000);
    await registry.register(reg({ addrs: [A], ttlS: 100 }));
    clock.advance(90_000);
    expect(registry.gc()).toEqual(NONE);
    expect(registry.get(0, A)!.expiresMs).toBe(clock.monoMs() + 10_000);
  });

  test('a shorter TTL never shortens the hold when an answer repeats', async () => {
    const { registry, clock } = rig();
    const t0 = clock.monoMs();
    await registry.register(reg({ addrs: [A], ttlS: 600 }));
    await registry.register(reg({ addrs: [A], ttlS: 1 }));
    expect(registry.get(0, A)!.expiresMs).toBe(t0 + 600_000);
  });

  test('one address in two groups gives two independent entries', async () => {
    const { registry, dp, clock } = rig();
    await registry.register(reg({ group: 1, addrs: [A], ttlS: 100 }));
    await registry.register(reg({ group: 2, addrs: [A], ttlS: 1000, channel: OTHER }));
    clock.advance(100_000);
    expect(registry.gc()).toEqual(RETIRED_ONE);
    expect(registry.get(1, A)!.retired).toBe(true);
    expect(registry.get(2, A)!.retired).toBeUndefined();
    expect(addrsIn(dp)).toEqual([`1/${A}`, `2/${A}`]);
  });

  describe('failures', () => {
    test('map_full rejects, rolls back the new addresses and counts when the map fills mid-answer', async () => {
      const { registry, dp, metrics } = rig({ dpCapacity: 3 });
      await registry.register(reg({ addrs: [A, B], names: ['old.example'], ttlS: 100 }));
      const before = registry.get(0, A)!;
      const err = await rejection(registry.register(reg({ addrs: [A, C, '192.0.2.9'], names: ['new.example'], ttlS: 900 })));
      expect(err).toBeInstanceOf(DnssealError);
      expect(err.code).toBe('map_full');
      expect(err.message).toStartWith('registry: cannot protect new.example:');
      expect(addrsIn(dp)).toEqual([`0/${A}`, `0/${B}`]);
      expect(registry.list()).toHaveLength(2);
      expect(registry.get(0, A)).toEqual(before); // the refresh of A was not committed either
      expect(metrics.counter('dnsseal_registry_map_full_total', '').get()).toBe(1);
      expect(metrics.counter('dnsseal_registry_registrations_total', '').get({ outcome: 'map_full' })).toBe(1);
      expect(metrics.counter('dnsseal_registry_registrations_total', '').get({ outcome: 'ok' })).toBe(1);
    });

    test('map_full rejects before writing anything when the registry knows the capacity', async () => {
      const { registry, dp } = rig({ capacity: 2 });
      await registry.register(reg({ addrs: [A] }));
      const writes = dp.ops.upsert;
      const err = await rejection(registry.register(reg({ addrs: [B, C] })));
      expect(err.code).toBe('map_full');
      expect(dp.ops.upsert).toBe(writes);
      expect(addrsIn(dp)).toEqual([`0/${A}`]);
    });

    test('a kernel error rejects with its code and leaves nothing behind', async () => {
      const { registry, dp, metrics } = rig();
      dp.failNext = new DnssealError('datapath', 'kernel', 'bpf(MAP_UPDATE_ELEM): EPERM');
      const err = await rejection(registry.register(reg({ addrs: [A, B] })));
      expect(err.code).toBe('kernel');
      expect(err.message).toContain('EPERM');
      expect(dp.list()).toEqual([]);
      expect(registry.list()).toEqual([]);
      expect(metrics.counter('dnsseal_registry_registrations_total', '').get({ outcome: 'datapath_error' })).toBe(1);
    });

    test('puts back the values a failed answer rewrote and writes them again when the answer comes again', async () => {
      const { registry, dp } = rig();
      await registry.register(reg({ addrs: [A, B], ttlS: 100 }));
      const before = dp.list();
      // The refresh of A is written, the one of B fails: A's old value goes back into the map.
      const upsert = dp.upsert.bind(dp);
      let failB = true;
      dp.upsert = (key, value) => {
        if (key.addr === B && failB) {
          failB = false;
          throw new DnssealError('datapath', 'kernel', 'bpf(MAP_UPDATE_ELEM): EPERM');
        }
        upsert(key, value);
      };
      expect((await rejection(registry.register(reg({ addrs: [A, B], ttlS: 900 })))).code).toBe('kernel');
      expect(dp.list()).toEqual(before);
      // What the registry notes as written is what the map holds: the old answer writes nothing,
      // the new one both values.
      const writes = dp.ops.upsert;
      await registry.register(reg({ addrs: [A, B], ttlS: 100 }));
      expect(dp.ops.upsert).toBe(writes);
      await registry.register(reg({ addrs: [A, B], ttlS: 900 }));
      expect(dp.ops.upsert).toBe(writes + 2);
      expect(dp.list().map((e) => e.value.expiresMs)).toEqual(registry.list().map((e) => mapExpiry(e.expiresMs)));
    });

    test('refuses with datapath_lost and writes nothing while the data path cannot protect, then registers once it is back', async () => {
      const { registry, dp, metrics } = rig();
      dp.unhealthy = 'link tcx_wan_wan0 detached';
      const err = await rejection(registry.register(reg({ addrs: [A] })));
      expect(err.code).toBe('datapath_lost');
      expect(err.message).toContain('tcx_wan_wan0 detached');
      expect(dp.ops.upsert).toBe(0);
      expect(registry.list()).toEqual([]);
      expect(metrics.counter('dnsseal_registry_registrations_total', '').get({ outcome: 'datapath_lost' })).toBe(1);
      dp.unhealthy = undefined;
      await registry.register(reg({ addrs: [A] }));
      expect(addrsIn(dp)).toEqual([`0/${A}`]);
    });

    test('a different channel is refused and the entry kept when the address is already registered', async () => {
      const { registry, dp, metrics } = rig();
      await registry.register(reg({ addrs: [A], names: ['a.example'] }));
      const err = await rejection(registry.register(reg({ addrs: [B, A], names: ['b.example'], channel: OTHER })));
      expect(err.code).toBe('channel_conflict');
      expect(err.message).toContain('already protected by channel hub');
      expect(addrsIn(dp)).toEqual([`0/${A}`]); // B was not written either
      expect(dp.list()[0]!.value.channelId).toBe(HUB.id);
      expect(registry.get(0, A)!.names).toEqual(['a.example']);
      expect(metrics.counter('dnsseal_registry_registrations_total', '').get({ outcome: 'conflict' })).toBe(1);
    });

    test('the other channel takes the address over in place when the first entry is retired', async () => {
      const { registry, dp, clock } = rig();
      await registry.register(reg({ addrs: [A], ttlS: 1, names: ['old.example'] }));
      clock.advance(MIN_HOLD_MS);
      registry.gc();
      await registry.register(reg({ addrs: [A], channel: OTHER, names: ['new.example'] }));
      expect(dp.list()[0]!.value).toMatchObject({ channelId: OTHER.id, mark: OTHER.mark, flags: 0 });
      expect(dp.ops.remove).toBe(0); // never out of the map
      const e = registry.get(0, A)!;
      expect([e.channel, e.names, e.retired]).toEqual(['other', ['new.example'], undefined]);
    });

    test('a registration on a static address is refused when the channel differs', async () => {
      const { registry } = rig();
      registry.setStatics([{ group: 0, cidr: A, channel: HUB }]);
      const err = await rejection(registry.register(reg({ addrs: [A], channel: OTHER })));
      expect(err.code).toBe('channel_conflict');
      expect(err.message).toContain('static entry');
    });
  });

  describe('withdraw and release', () => {
    test('withdraw retires the selected entries and leaves statics alone', async () => {
      const { registry, dp } = rig();
      registry.setStatics([{ group: 0, cidr: '203.0.113.5', channel: HUB }]);
      await registry.register(reg({ addrs: [A, B] }));
      const gone = registry.withdraw(() => true);
      expect(gone.map((e) => [e.addr, e.retired]).sort()).toEqual([
        [A, true],
        [B, true],
      ]);
      expect(addrsIn(dp)).toEqual([`0/${A}`, `0/${B}`, '0/203.0.113.5']);
      expect(dp.ops.remove).toBe(0);
      expect(registry.get(0, '203.0.113.5')!.static).toBe(true);
      expect(registry.withdraw(() => true)).toEqual([]); // already retired: not counted again
    });

    test('releaseNames retires an entry when its last name is released, traffic or not', async () => {
      const { registry, dp } = rig();
      await registry.register(reg({ addrs: [A], names: ['a.example', 'alias.example'] }));
      await registry.register(reg({ addrs: [B], names: ['b.example'] }));
      dp.touch({ group: 0, addr: B });
      const r1 = registry.releaseNames((n) => n === 'a.example');
      expect(r1).toEqual({ names: 1, removed: [] });
      expect(registry.get(0, A)!.names).toEqual(['alias.example']);
      const r2 = registry.releaseNames((n) => n === 'b.example');
      expect(r2.removed.map((e) => e.addr)).toEqual([B]);
      expect(registry.get(0, B)!.retired).toBe(true);
      expect(addrsIn(dp)).toEqual([`0/${A}`, `0/${B}`]);
    });

    test('an entry stays live and is retried when the map refuses to retire it', async () => {
      const { registry, dp, clock } = rig();
      await registry.register(reg({ addrs: [A], ttlS: 1 }));
      clock.advance(MIN_HOLD_MS);
      dp.failNext = new DnssealError('datapath', 'kernel', 'EBUSY');
      expect(registry.gc()).toEqual(NONE);
      expect(registry.get(0, A)!.retired).toBeUndefined();
      expect(dp.list()[0]!.value.flags).toBe(0);
      expect(registry.gc()).toEqual(RETIRED_ONE);
    });
  });

  describe('statics', () => {
    test('static entries are never collected when time passes', async () => {
      const { registry, dp, clock } = rig();
      registry.setStatics([{ group: 0, cidr: '203.0.113.4/30', channel: HUB }]);
      clock.advance(365 * 24 * 3600_000);
      registry.gc();
      expect(addrsIn(dp)).toEqual(['0/203.0.113.4', '0/203.0.113.5', '0/203.0.113.6', '0/203.0.113.7']);
      expect(dp.list().every((e) => e.value.flags === DEST_F_STATIC)).toBe(true);
      expect(registry.list().every((e) => e.static)).toBe(true);
    });

    test('a static dropped from config is retired, not removed, when no name holds it', () => {
      const { registry, dp } = rig();
      registry.setStatics([{ group: 0, cidr: A, channel: HUB }, { group: 0, cidr: B, channel: HUB }]);
      registry.setStatics([{ group: 0, cidr: B, channel: HUB }]);
      expect(addrsIn(dp)).toEqual([`0/${A}`, `0/${B}`]);
      expect(dp.list().find((e) => e.key.addr === A)!.value.flags).toBe(DEST_F_RETIRED);
      expect(registry.get(0, A)).toMatchObject({ static: false, retired: true });
    });

    test('a static dropped from config becomes an ordinary entry when a name holds it', async () => {
      const { registry, dp, clock } = rig();
      registry.setStatics([{ group: 0, cidr: A, channel: HUB }]);
      await registry.register(reg({ addrs: [A], names: ['a.example'], ttlS: 100 }));
      registry.setStatics([]);
      expect(registry.get(0, A)!.static).toBe(false);
      expect(dp.list()[0]!.value.flags).toBe(0);
      clock.advance(100_000);
      expect(registry.gc()).toEqual(RETIRED_ONE);
    });

    test('a static takes an address over when DNS had it under another channel', async () => {
      const { registry, dp } = rig();
      await registry.register(reg({ addrs: [A], channel: OTHER }));
      registry.setStatics([{ group: 0, cidr: A, channel: HUB }]);
      expect(dp.list()[0]!.value).toEqual({ channelId: HUB.id, mark: HUB.mark, flags: DEST_F_STATIC, expiresMs: registry.get(0, A)!.expiresMs });
      expect(registry.get(0, A)!.channel).toBe('hub');
    });

    test('setStatics changes nothing when a write fails', () => {
      const { registry, dp } = rig({ dpCapacity: 3 });
      registry.setStatics([{ group: 0, cidr: A, channel: HUB }]);
      expect(() => registry.setStatics([{ group: 0, cidr: '203.0.113.0/30', channel: HUB }])).toThrow(DnssealError);
      expect(addrsIn(dp)).toEqual([`0/${A}`]);
      expect(registry.list().map((e) => e.addr)).toEqual([A]);
    });

    test('two statics with different channels on one address are refused', () => {
      const { registry } = rig();
      const run = () =>
        registry.setStatics([
          { group: 0, cidr: '203.0.113.0/30', channel: HUB },
          { group: 0, cidr: '203.0.113.2', channel: OTHER },
        ]);
      expect(run).toThrow('both cover 203.0.113.2 in group 0');
    });
  });

  describe('metrics', () => {
    test('entries and retired gauges count by channel when entries are registered and withdrawn', async () => {
      const { registry, metrics } = rig();
      await registry.register(reg({ addrs: [A, B] }));
      await registry.register(reg({ addrs: [C], channel: OTHER }));
      const text1 = metrics.expose();
      expect(text1).toContain('dnsseal_registry_entries{channel="hub"} 2');
      expect(text1).toContain('dnsseal_registry_entries{channel="other"} 1');
      registry.withdraw((e) => e.channel === 'other');
      const text2 = metrics.expose();
      expect(text2).toContain('dnsseal_registry_entries{channel="other"} 1'); // retired, still in the map
      expect(text2).toContain('dnsseal_registry_retired_entries{channel="other"} 1');
      expect(text2).toContain('dnsseal_registry_retired_entries{channel="hub"} 0');
    });

    test('registration latency is observed when a registration completes', async () => {
      let t = 0;
      const { registry, metrics } = rig({ timer: () => (t += 0.5) });
      await registry.register(reg({ addrs: [A] }));
      expect(metrics.expose()).toContain('dnsseal_registry_register_seconds_sum{outcome="ok"} 0.0005');
    });
  });

  test('the sliced gc retires the same entries when the sweep spans several slices', async () => {
    const { registry, dp, clock } = rig();
    for (let i = 0; i < 50; i++) await registry.register(reg({ addrs: [`10.0.0.${i}`], ttlS: i < 25 ? 1 : 3600 }));
    for (let i = 0; i < 50; i += 5) dp.touch({ group: 0, addr: `10.0.0.${i}` }, clock.monoMs() + MIN_HOLD_MS);
    clock.advance(MIN_HOLD_MS);
    expect(await registry.gcInSlices(7)).toEqual({ retired: 20, removed: 0 }); // 25 expired, 5 of them still active
    expect(registry.size).toBe(50);
    expect(registry.stats().retired).toBe(20);
  });

  test('start and stop manage the gc timer when called repeatedly', () => {
    const { registry } = rig();
    registry.start();
    registry.start();
    registry.stop();
    registry.stop();
  });
});
