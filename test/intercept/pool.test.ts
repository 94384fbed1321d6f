/** InterceptPool on the memory store with a FakeClock: allocation, exhaustion, reuse, restart. */
import { describe, expect, test } from 'bun:test';
import { InterceptPool, ADOPTED_NAME } from '../../src/intercept/pool.ts';
import { MemoryInterceptStore } from '../../src/intercept/store.ts';
import { FakeClock } from '../../src/util/clock.ts';
import { DnssealError } from '../../src/util/errors.ts';

const MIN_HOLD = 30_000;
const IDLE = 300_000;

function make(pools: string[], store = new MemoryInterceptStore(), clock = new FakeClock()) {
  const pool = InterceptPool.open({ pools, store, clock, minHoldMs: MIN_HOLD, idleMs: IDLE });
  return { pool, store, clock };
}

function code(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return err instanceof DnssealError ? err.code : String(err);
  }
  return undefined;
}

describe('intercept/pool', () => {
  test('gives the same intercept address when the same real address is asked again', () => {
    const { pool } = make(['100.64.0.0/30']);
    const a = pool.allocate(1, ['192.0.2.10'], 60, ['a.corp.example']).get('192.0.2.10');
    const b = pool.allocate(1, ['192.0.2.10'], 60, ['b.corp.example']).get('192.0.2.10');
    expect(a).toBe('100.64.0.0');
    expect(b).toBe(a!);
    expect(pool.list()[0]!.names.sort()).toEqual(['a.corp.example', 'b.corp.example']);
  });

  test('gives each of several A records its own intercept address when the answer has several', () => {
    const { pool, store } = make(['100.64.0.0/29']);
    const reals = ['192.0.2.1', '192.0.2.2', '192.0.2.3'];
    const m = pool.allocate(1, reals, 60);
    const intercepts = reals.map((r) => m.get(r)!);
    expect(new Set(intercepts).size).toBe(3);
    for (const r of reals) expect(store.realOf(1, m.get(r)!)).toBe(r);
  });

  test('refuses the fifth name with pool_exhausted when a pool of 4 holds four live mappings', () => {
    const { pool, store } = make(['100.64.0.0/30']);
    for (let i = 1; i <= 4; i++) pool.allocate(1, [`192.0.2.${i}`], 60, [`n${i}.corp.example`]);
    expect(code(() => pool.allocate(1, ['192.0.2.5'], 60, ['n5.corp.example']))).toBe('pool_exhausted');
    expect(store.list().length).toBe(4);
    expect(pool.lookup(1, '192.0.2.5')).toBeUndefined();
  });

  test('reuses an address when its mapping is past its TTL and idle', () => {
    const { pool, clock } = make(['100.64.0.0/30']);
    const first = new Map<string, string>();
    for (let i = 1; i <= 4; i++) first.set(`192.0.2.${i}`, pool.allocate(1, [`192.0.2.${i}`], 60).get(`192.0.2.${i}`)!);
    clock.advance(60_000 + IDLE);
    const got = pool.allocate(1, ['192.0.2.5'], 60).get('192.0.2.5')!;
    expect([...first.values()]).toContain(got);
    expect(pool.realOf(got)).toEqual({ group: 1, real: '192.0.2.5' });
    // one real address per intercept address: the old mapping of that address is gone
    expect(pool.list().filter((r) => r.intercept === got)).toHaveLength(1);
  });

  test.each([
    ['the served TTL is still running', 59_000, undefined],
    ['min_hold is still running after a shorter TTL', MIN_HOLD - 1_000, 'short-ttl'],
    ['traffic was seen within idle after the TTL ran out', 60_000 + IDLE - 1, 'traffic'],
  ])('never reuses a live address when %s', (_why, advance, kind) => {
    const { pool, clock, store } = make(['100.64.0.0/31']);
    const ttl = kind === 'short-ttl' ? 5 : 60;
    const a = pool.allocate(1, ['192.0.2.1'], ttl).get('192.0.2.1')!;
    const b = pool.allocate(1, ['192.0.2.2'], ttl).get('192.0.2.2')!;
    if (kind === 'traffic') {
      clock.advance(60_000);
      store.touch(1, a, clock.monoMs());
      store.touch(1, b, clock.monoMs());
      clock.advance(advance - 60_000);
    } else clock.advance(advance);
    expect(code(() => pool.allocate(1, ['192.0.2.3'], ttl))).toBe('pool_exhausted');
    expect(pool.realOf(a)).toEqual({ group: 1, real: '192.0.2.1' });
  });

  test('extends the hold and never shortens it when a later answer has a shorter TTL', () => {
    const { pool, clock } = make(['100.64.0.0/31']);
    pool.allocate(1, ['192.0.2.1'], 300);
    const exp = pool.list()[0]!.expiresMs;
    pool.allocate(1, ['192.0.2.1'], 10);
    expect(pool.list()[0]!.expiresMs).toBe(exp);
    clock.advance(200_000);
    pool.allocate(1, ['192.0.2.1'], 300);
    expect(pool.list()[0]!.expiresMs).toBe(exp + 200_000);
  });

  test('keeps groups apart when the same real address is asked by two client groups', () => {
    const { pool } = make(['100.64.0.0/30']);
    const a = pool.allocate(1, ['192.0.2.1'], 60).get('192.0.2.1');
    const b = pool.allocate(2, ['192.0.2.1'], 60).get('192.0.2.1');
    expect(a).not.toBe(b!);
    expect(pool.realOf(b!)).toEqual({ group: 2, real: '192.0.2.1' });
  });

  test('maps IPv6 in the shape of figure 8 when the pool is a ULA prefix', () => {
    const { pool } = make(['100.64.0.0/30', 'fd00:fe80::3090/124']);
    const m = pool.allocate(1, ['fd00:aa91::1001', '192.0.2.1'], 60);
    expect(m.get('fd00:aa91::1001')).toBe('fd00:fe80::3090');
    expect(m.get('192.0.2.1')).toBe('100.64.0.0');
  });

  test('rolls back the mappings of the call when one address of the answer cannot be had', () => {
    const { pool, store } = make(['100.64.0.0/31']);
    expect(code(() => pool.allocate(1, ['192.0.2.1', '192.0.2.2', '192.0.2.3'], 60))).toBe('pool_exhausted');
    expect(store.list()).toEqual([]);
    expect(pool.list()).toEqual([]);
  });

  test.each([
    ['an IPv6 address and only an IPv4 pool', ['100.64.0.0/30'], 'fd00:aa91::1', 'no_pool'],
    ['an IPv4-mapped address', ['100.64.0.0/30', 'fd00:fe80::/120'], '::ffff:192.0.2.1', 'unsupported_address'],
  ])('refuses when asked for %s', (_why, pools, real, want) => {
    const { pool } = make(pools);
    expect(code(() => pool.allocate(1, [real], 60))).toBe(want);
  });

  test('rebuilds every mapping from the store when the daemon restarts', () => {
    const store = new MemoryInterceptStore();
    const clock = new FakeClock();
    const before = make(['100.64.0.0/29'], store, clock).pool;
    const m = before.allocate(1, ['192.0.2.1', '192.0.2.2'], 60, ['www.corp.example']);
    const after = make(['100.64.0.0/29'], store, clock).pool;
    expect(after.lookup(1, '192.0.2.1')).toBe(m.get('192.0.2.1')!);
    expect(after.list().map((r) => r.names)).toEqual([[ADOPTED_NAME], [ADOPTED_NAME]]);
    // the same real address keeps its address; a new one gets an unused one
    expect(after.allocate(1, ['192.0.2.2'], 60).get('192.0.2.2')).toBe(m.get('192.0.2.2')!);
    const fresh = after.allocate(1, ['192.0.2.3'], 60).get('192.0.2.3')!;
    expect([...m.values()]).not.toContain(fresh);
  });

  test('frees expired idle mappings from the store when gc runs', () => {
    const { pool, store, clock } = make(['100.64.0.0/30']);
    pool.allocate(1, ['192.0.2.1'], 60);
    const live = pool.allocate(1, ['192.0.2.2'], 60).get('192.0.2.2')!;
    clock.advance(60_000 + IDLE - 10);
    store.touch(1, live, clock.monoMs());
    clock.advance(10);
    expect(pool.gc()).toBe(1);
    expect(store.list().map((r) => r.real)).toEqual(['192.0.2.2']);
  });

  test.each([['300.1.1.1/30'], ['100.64.0.1/30'], ['::ffff:0:0/96']])('rejects the pool %s when it is not a usable prefix', (cidr) => {
    expect(code(() => make([cidr]))).toBe('bad_pool');
  });
});
