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

  test('register rejects and removes the new addresses when peerAdded fails', async () => {
    const { registry, hooks, dp, metrics } = rig();
    hooks.fail = new DnssealError('vici', 'initiate_failed', 'initiate failed: AUTH_FAILED');
    const err = await rejection(registry.register(peerReg({ addrs: [A, B] })));
    expect(err.code).toBe('channel_failed');
    expect(err.message).toContain('AUTH_FAILED');
    expect(dp.list()).toEqual([]);
    expect(registry.list()).toEqual([]);
    expect(hooks.removed).toEqual([]);
    expect(metrics.counter('dnsseal_registry_registrations_total', '').get({ outcome: 'channel_failed' })).toBe(1);
  });

  test('the peers that came up are removed again when another address of the answer fails', async () => {
    const { registry, hooks, dp } = rig();
    hooks.fail = new Error('no proposal chosen');
    hooks.failFor = B;
    await rejection(registry.register(peerReg({ addrs: [A, B] })));
    expect(dp.list()).toEqual([]);
    expect(hooks.removed).toEqual([`partner ${A}`]);
  });

  test('peerAdded is tried again when the previous attempt failed', async () => {
    const { registry, hooks } = rig();
    hooks.fail = new Error('timeout');
    await rejection(registry.register(peerReg({ addrs: [A] })));
    hooks.fail = undefined;
    await registry.register(peerReg({ addrs: [A] }));
    expect(hooks.added).toHaveLength(2);
    expect(registry.get(0, A)).toBeDefined();
  });

  test('an existing entry keeps its previous holds when a refresh fails on the channel', async () => {
    const { registry, hooks, clock } = rig();
    const t0 = clock.monoMs();
    // Adopted entry (no peer state yet): the refresh must bring the channel up and fails.
    await registry.register(reg({ addrs: [A], channel: PARTNER, names: ['x.partner.test'] }));
    const r2 = rig({ datapath: registry['dp'], clock, hooks });
    r2.registry.adopt();
    hooks.fail = new Error('no SA');
    await rejection(r2.registry.register(peerReg({ addrs: [A], ttlS: 9999 })));
    expect(r2.registry.get(0, A)!.names).toEqual(['(adopted)']);
    expect(r2.registry.get(0, A)!.expiresMs).toBe(t0 + MIN_HOLD_MS);
  });

  test('peerRemoved is called when an expired idle entry is collected', async () => {
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
    expect(addrsIn(dp)).toEqual([`2/${A}`]);
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
    expect(registry.gc()).toBe(0);
    hooks.open();
    await p;
    expect(registry.gc()).toBe(1);
  });

  test('peerRemoved is called when an entry is withdrawn while its channel is still being negotiated', async () => {
    const { registry, hooks } = rig();
    hooks.gated = true;
    const p = registry.register(peerReg({ addrs: [A] }));
    await flush();
    registry.withdraw(() => true);
    expect(hooks.removed).toEqual([`partner ${A}`]);
    hooks.open();
    await p;
    expect(registry.get(0, A)).toBeUndefined();
  });
});
