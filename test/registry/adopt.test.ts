import { describe, expect, test } from 'bun:test';
import { DEST_F_STATIC } from '../../src/datapath/datapath.ts';
import { ADOPTED_NAME } from '../../src/registry/registry.ts';
import { HUB, IDLE_MS, MIN_HOLD_MS, OTHER, PARTNER, addrsIn, reg, rig } from './helpers.ts';

const A = '192.0.2.1';
const B = '2001:db8::2';

describe('registry/adopt', () => {
  test('a new registry on the same map shows every entry when it adopts after a restart', async () => {
    const first = rig();
    await first.registry.register(reg({ addrs: [A, B], ttlS: 3600 }));
    first.registry.setStatics([{ group: 5, cidr: '203.0.113.9', channel: HUB }]);
    // "restart": the process dies, the pinned map stays.
    first.clock.advance(1000);
    const second = rig({ datapath: first.dp, clock: first.clock });
    const removesBefore = first.dp.ops.remove;
    expect(second.registry.adopt()).toBe(3);
    expect(first.dp.ops.remove).toBe(removesBefore); // never flushed
    const rows = second.registry.list().sort((x, y) => x.addr.localeCompare(y.addr));
    expect(rows.map((e) => [e.group, e.addr, e.channel, e.names, e.static])).toEqual([
      [0, A, 'hub', [ADOPTED_NAME], false],
      [0, B, 'hub', [ADOPTED_NAME], false],
      [5, '203.0.113.9', 'hub', [ADOPTED_NAME], true],
    ]);
    expect(rows[0]!.expiresMs).toBe(first.clock.monoMs() + MIN_HOLD_MS);
  });

  test('adopted entries show the channel id when the channel is not configured', async () => {
    const first = rig();
    await first.registry.register(reg({ addrs: [A] }));
    const second = rig({ datapath: first.dp, clock: first.clock, channels: [] });
    second.registry.adopt();
    expect(second.registry.get(0, A)!.channel).toBe(`#${HUB.id}`);
    second.registry.setChannels([HUB]);
    expect(second.registry.get(0, A)!.channel).toBe('hub');
  });

  test('an adopted entry is kept when traffic flows and collected when idle after min_hold', async () => {
    const first = rig();
    await first.registry.register(reg({ addrs: [A, B], ttlS: 3600 }));
    const second = rig({ datapath: first.dp, clock: first.clock });
    second.registry.adopt();
    second.clock.advance(MIN_HOLD_MS);
    first.dp.touch({ group: 0, addr: A });
    expect(second.registry.gc()).toBe(1);
    expect(addrsIn(first.dp)).toEqual([`0/${A}`]);
    second.clock.advance(IDLE_MS);
    expect(second.registry.gc()).toBe(1);
  });

  test('an answer adds its names to an adopted entry when the channel matches', async () => {
    const first = rig();
    await first.registry.register(reg({ addrs: [A] }));
    const second = rig({ datapath: first.dp, clock: first.clock });
    second.registry.adopt();
    await second.registry.register(reg({ addrs: [A], names: ['www.corp.example'] }));
    expect(second.registry.get(0, A)!.names).toEqual([ADOPTED_NAME, 'www.corp.example']);
  });

  test('an adopted peer entry brings its channel up when an answer refreshes it', async () => {
    const first = rig();
    await first.registry.register(reg({ addrs: [A], channel: PARTNER }));
    const second = rig({ datapath: first.dp, clock: first.clock });
    second.registry.adopt();
    await second.registry.register(reg({ addrs: [A], channel: PARTNER, names: ['p.partner.test'] }));
    expect(second.hooks.added).toEqual([`partner ${A} p.partner.test`]);
  });

  test('an adopted peer entry gets peerRemoved when it is collected without a new answer', async () => {
    const first = rig();
    await first.registry.register(reg({ addrs: [A], channel: PARTNER }));
    const second = rig({ datapath: first.dp, clock: first.clock });
    second.registry.adopt();
    second.clock.advance(MIN_HOLD_MS);
    second.registry.gc();
    expect(second.hooks.removed).toEqual([`partner ${A}`]);
  });

  test('an adopted static not in config any more is released when statics are applied', async () => {
    const first = rig();
    first.registry.setStatics([{ group: 0, cidr: A, channel: HUB }]);
    const second = rig({ datapath: first.dp, clock: first.clock });
    second.registry.adopt();
    second.registry.setStatics([]);
    // Still held by the adoption hold, no longer static; collected later like any entry.
    expect(second.registry.get(0, A)!.static).toBe(false);
    expect(first.dp.list()[0]!.value.flags & DEST_F_STATIC).toBe(0);
    second.clock.advance(MIN_HOLD_MS);
    expect(second.registry.gc()).toBe(1);
  });

  test('adopt skips entries the registry already has', async () => {
    const { registry } = rig();
    await registry.register(reg({ addrs: [A], names: ['keep.example'] }));
    expect(registry.adopt()).toBe(0);
    expect(registry.get(0, A)!.names).toEqual(['keep.example']);
  });
});

describe('registry/reload', () => {
  test('entries follow their channel by name when a reload renumbers it', async () => {
    const { registry, dp } = rig();
    await registry.register(reg({ addrs: [A] }));
    const renumbered = { ...HUB, id: 9, mark: 0x5e510009 };
    registry.setChannels([renumbered, PARTNER]);
    expect(dp.list()[0]!.value).toEqual({ channelId: 9, mark: 0x5e510009, flags: 0 });
    expect(dp.ops.remove).toBe(0); // rewritten in place, never removed
    // A new answer for the same channel is not a conflict after the renumbering.
    await registry.register(reg({ addrs: [A], channel: renumbered, names: ['again.example'] }));
    expect(registry.get(0, A)!.names).toEqual(['www.corp.example', 'again.example']);
  });

  test('reconcile releases names the new policy gives another channel or none', async () => {
    const { registry, dp } = rig();
    await registry.register(reg({ addrs: [A], names: ['keep.example', 'moved.example'] }));
    await registry.register(reg({ addrs: [B], names: ['dropped.example'] }));
    const policy: Record<string, string> = { 'keep.example': 'hub', 'moved.example': 'other' };
    const r = registry.reconcile((_g, name) => policy[name] ?? null);
    expect(r.names).toBe(2);
    expect(r.moved).toBe(0);
    expect(r.removed.map((e) => e.addr)).toEqual([B]);
    expect(registry.get(0, A)!.names).toEqual(['keep.example']);
    expect(addrsIn(dp)).toEqual([`0/${A}`]);
  });

  test('reconcile keeps adopted holds when their channel is still configured', async () => {
    const first = rig();
    await first.registry.register(reg({ addrs: [A] }));
    await first.registry.register(reg({ addrs: [B], channel: PARTNER }));
    const second = rig({ datapath: first.dp, clock: first.clock, channels: [HUB] });
    second.registry.adopt();
    second.registry.reconcile(() => null);
    expect(addrsIn(first.dp)).toEqual([`0/${A}`]);
  });

  test('reconcile moves an entry in place when every name now wants one other channel', async () => {
    const { registry, dp } = rig();
    await registry.register(reg({ addrs: [A], names: ['a.example', 'alias.example'], channel: PARTNER }));
    const r = registry.reconcile(() => 'hub');
    expect(r).toEqual({ names: 0, moved: 1, removed: [] });
    expect(dp.list()[0]!.value).toEqual({ channelId: HUB.id, mark: HUB.mark, flags: 0 });
    expect(dp.ops.remove).toBe(0);
    expect(registry.get(0, A)!.channel).toBe('hub');
  });

  test('reconcile removes an entry when its names want different channels and none its own', async () => {
    const { registry, dp } = rig({ channels: [HUB, PARTNER, OTHER] });
    await registry.register(reg({ addrs: [A], names: ['a.example', 'b.example'] }));
    const r = registry.reconcile((_g, n) => (n === 'a.example' ? 'other' : 'partner'));
    expect(r.removed.map((e) => e.addr)).toEqual([A]);
    expect(dp.list()).toEqual([]);
  });

  test('reconcile leaves static entries alone when the policy no longer names them', () => {
    const { registry, dp } = rig();
    registry.setStatics([{ group: 0, cidr: A, channel: HUB }]);
    registry.reconcile(() => null);
    expect(addrsIn(dp)).toEqual([`0/${A}`]);
  });
});
