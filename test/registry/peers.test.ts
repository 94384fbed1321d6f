import { describe, expect, test } from 'bun:test';
import { DnssealError } from '../../src/util/errors.ts';
import { IDLE_MS, MIN_HOLD_MS, PARTNER, addrsIn, reg, rejection, rig } from './helpers.ts';

const A = '192.0.2.1';
const B = '192.0.2.2';
const peerReg = (over: Parameters<typeof reg>[0]) => reg({ channel: PARTNER, names: ['peer.partner.test'], ...over });

/** Lets pending promise callbacks run (no timers involved). */
const flush = () => new Promise<void>((r) => setImmediate(r));

describe('registry/peers', () => {
  test('peerAdded is called for each new address with the query name', async () => {
    const { registry, hooks } = rig();
    await registry.register(peerReg({ addrs: [A, B] }));
    expect(hooks.added.sort()).toEqual([`partner ${A} peer.partner.test`, `partner ${B} peer.partner.test`]);
  });

  test('peerAdded is not called again when an answer refreshes the address', async () => {
    const { registry, hooks } = rig();
    await registry.register(peerReg({ addrs: [A] }));
    await registry.register(peerReg({ addrs: [A] }));
    expect(hooks.added).toHaveLength(1);
  });

  test('peerAdded is not called when the channel is a tunnel', async () => {
    const { registry, hooks } = rig();
    await registry.register(reg({ addrs: [A] }));
    expect(hooks.added).toEqual([]);
  });

  test('register waits for the channel when peerAdded is slow, and the map is written first', async () => {
    const { registry, hooks, dp } = rig();
    hooks.gated = true;
    let resolved = false;
    const p = registry.register(peerReg({ addrs: [A] })).then(() => void (resolved = true));
    await flush();
    expect(resolved).toBe(false);
    expect(addrsIn(dp)).toEqual([`0/${A}`]); // guarded (fail closed) while the SA comes up
    hooks.open();
    await p;
    expect(resolved).toBe(true);
  });

  test('a concurrent answer for the same address also waits when the channel is not ready yet', async () => {
    const { registry, hooks } = rig();
    hooks.gated = true;
    let second = false;
    const p1 = registry.register(peerReg({ addrs: [A] }));
    const p2 = registry.register(peerReg({ addrs: [A], names: ['alias.partner.test'] })).then(() => void (second = true));
    await flush();
    expect(second).toBe(false);
    expect(hooks.added).toHaveLength(1);
    hooks.open();
    await Promise.all([p1, p2]);
    expect(second).toBe(true);
  });

  test('a failed peerAdded rejects and keeps the new addresses in the map, blocked (fail closed)', async () => {
    const { registry, hooks, dp, metrics } = rig();
    hooks.fail = new DnssealError('vici', 'initiate_failed', 'initiate failed: AUTH_FAILED');
    const err = await rejection(registry.register(peerReg({ addrs: [A, B] })));
    expect(err.code).toBe('channel_failed');
    expect(err.message).toContain('AUTH_FAILED');
    // Still in the kernel map: the guard drops traffic to them instead of letting it out clear.
    expect(addrsIn(dp).sort()).toEqual([`0/${A}`, `0/${B}`]);
    for (const addr of [A, B]) {
      const e = registry.get(0, addr)!;
      expect(e.names).toEqual(['peer.partner.test']);
      expect(e.blocked).toContain('AUTH_FAILED');
    }
    expect(hooks.removed).toEqual([]);
    expect(metrics.counter('dnsseal_registry_registrations_total', '').get({ outcome: 'channel_failed' })).toBe(1);
    metrics.expose(); // runs the collectors
    expect(metrics.gauge('dnsseal_registry_blocked_entries', '').get({ channel: 'partner' })).toBe(2);
    expect(registry.stats().blocked).toBe(2); // dnsseal status
  });

  test('when one address of an answer fails, the peer that came up stays and only the other is blocked', async () => {
    const { registry, hooks, dp } = rig();
    hooks.fail = new Error('no proposal chosen');
    hooks.failFor = B;
    await rejection(registry.register(peerReg({ addrs: [A, B] })));
    expect(addrsIn(dp).sort()).toEqual([`0/${A}`, `0/${B}`]);
    expect(registry.get(0, A)!.blocked).toBeUndefined();
    expect(registry.get(0, B)!.blocked).toContain('no proposal chosen');
    expect(hooks.removed).toEqual([]);
  });

  test('peerAdded is tried again on the next answer, and success lifts the block', async () => {
    const { registry, hooks, metrics } = rig();
    hooks.fail = new Error('timeout');
    await rejection(registry.register(peerReg({ addrs: [A] })));
    expect(registry.get(0, A)!.blocked).toContain('timeout');
    hooks.fail = undefined;
    await registry.register(peerReg({ addrs: [A] }));
    expect(hooks.added).toHaveLength(2);
    expect(registry.get(0, A)!.blocked).toBeUndefined();
    metrics.expose(); // runs the collectors
    expect(metrics.gauge('dnsseal_registry_blocked_entries', '').get({ channel: 'partner' })).toBe(0);
  });

  test('a blocked entry retires like any other: hold, then idle; no connection is left to remove', async () => {
    const { registry, hooks, clock, dp } = rig();
    hooks.fail = new Error('AUTH_FAILED');
    await rejection(registry.register(peerReg({ addrs: [A], ttlS: 1 })));
    clock.advance(MIN_HOLD_MS - 1);
    expect(registry.gc()).toEqual({ retired: 0, removed: 0 });
    clock.advance(1);
    dp.touch({ group: 0, addr: A }); // dropped packets keep it (and the drop) going
    expect(registry.gc()).toEqual({ retired: 0, removed: 0 });
    clock.advance(IDLE_MS);
    expect(registry.gc()).toEqual({ retired: 1, removed: 0 });
    expect(addrsIn(dp)).toEqual([`0/${A}`]);
    expect(registry.get(0, A)).toMatchObject({ retired: true });
    expect(registry.get(0, A)!.blocked).toBeUndefined();
    expect(hooks.removed).toEqual([]);
  });

  test('a failed refresh of an existing entry keeps it, with the new hold, and marks it blocked', async () => {
    const { registry, hooks, clock } = rig();
    // Adopted entry (no peer state yet): the refresh must bring the channel up and fails.
    await registry.register(reg({ addrs: [A], channel: PARTNER, names: ['x.partner.test'] }));
    const r2 = rig({ datapath: registry['dp'], clock, hooks });
    r2.registry.adopt();
    hooks.fail = new Error('no SA');
    await rejection(r2.registry.register(peerReg({ addrs: [A], ttlS: 9999 })));
    const e = r2.registry.get(0, A)!;
    expect(e.names.sort()).toEqual(['(adopted)', 'peer.partner.test']);
    expect(e.expiresMs).toBe(clock.monoMs() + 9999_000);
    expect(e.blocked).toContain('no SA');
  });

  test('peerRemoved is called when an expired idle entry is retired', async () => {
    const { registry, hooks, clock } = rig();
    await registry.register(peerReg({ addrs: [A], ttlS: 1 }));
    clock.advance(MIN_HOLD_MS);
    registry.gc();
    expect(hooks.removed).toEqual([`partner ${A}`]);
  });

  test('the peer is kept until the last group lets go when two groups use one address', async () => {
    const { registry, hooks, clock, dp } = rig();
    await registry.register(peerReg({ group: 1, addrs: [A], ttlS: 1 }));
    await registry.register(peerReg({ group: 2, addrs: [A], ttlS: 1 }));
    expect(hooks.added).toHaveLength(1);
    clock.advance(MIN_HOLD_MS);
    dp.touch({ group: 2, addr: A });
    registry.gc();
    expect(registry.get(1, A)!.retired).toBe(true);
    expect(registry.get(2, A)!.retired).toBeUndefined();
    expect(hooks.removed).toEqual([]);
    clock.advance(IDLE_MS);
    registry.gc();
    expect(hooks.removed).toEqual([`partner ${A}`]);
  });

  test('gc does not collect an entry when its channel is still being negotiated', async () => {
    const { registry, hooks, clock } = rig();
    hooks.gated = true;
    const p = registry.register(peerReg({ addrs: [A], ttlS: 1 }));
    await flush();
    clock.advance(MIN_HOLD_MS * 10);
    expect(registry.gc()).toEqual({ retired: 0, removed: 0 });
    hooks.open();
    await p;
    expect(registry.gc()).toEqual({ retired: 1, removed: 0 });
  });

  test('an answer waiting on a peer that was flushed is refused when a later answer sets the peer up again', async () => {
    const { registry, hooks } = rig();
    hooks.gated = true;
    const first = rejection(registry.register(peerReg({ addrs: [A] })));
    await flush();
    registry.withdraw(() => true); // retired: the first connection is let go
    let second = false;
    const p2 = registry.register(peerReg({ addrs: [A] })).then(() => void (second = true));
    await flush();
    expect(hooks.added).toHaveLength(2);
    hooks.openFirst(); // the first (let go) set-up settles; the new one is still in flight
    expect((await first).code).toBe('withdrawn');
    expect(second).toBe(false);
    hooks.open();
    await p2;
    expect(registry.get(0, A)!.retired).toBeUndefined();
  });

  test('peerRemoved is called and the answer refused when an entry is withdrawn while its channel is still being negotiated', async () => {
    const { registry, hooks, metrics } = rig();
    hooks.gated = true;
    const p = rejection(registry.register(peerReg({ addrs: [A] })));
    await flush();
    registry.withdraw(() => true);
    expect(hooks.removed).toEqual([`partner ${A}`]);
    hooks.open();
    const err = await p;
    expect(err.code).toBe('withdrawn'); // its connection is gone: the answer must not go out
    expect(registry.get(0, A)).toMatchObject({ retired: true });
    expect(metrics.counter('dnsseal_registry_registrations_total', '').get({ outcome: 'withdrawn' })).toBe(1);
  });
});
