import { describe, expect, test } from 'bun:test';
import { DEST_F_BLOCKED, DEST_F_RETIRED, DEST_F_STATIC } from '../../src/datapath/datapath.ts';
import { ADOPTED_BLOCKED, ADOPTED_NAME } from '../../src/registry/registry.ts';
import { HUB, IDLE_MS, MIN_HOLD_MS, OTHER, PARTNER, addrsIn, reg, rejection, rig } from './helpers.ts';

const A = '192.0.2.1';
const B = '2001:db8::2';

describe('registry/adopt', () => {
  test('a new registry on the same map shows every entry when it adopts after a restart', async () => {
    const first = rig();
    const t0 = first.clock.monoMs();
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
    expect(rows[0]!.expiresMs).toBe(t0 + 3600_000); // the real hold, kept in the map
    expect(rows[2]!.expiresMs).toBe(first.clock.monoMs() + MIN_HOLD_MS); // a static has none: min_hold
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

  test('an adopted entry is kept while its hold runs or traffic flows and retired when idle after it', async () => {
    const first = rig();
    await first.registry.register(reg({ addrs: [A, B], ttlS: 3600 }));
    const second = rig({ datapath: first.dp, clock: first.clock });
    second.registry.adopt();
    second.clock.advance(3600_000 - 1);
    expect(second.registry.gc()).toEqual({ retired: 0, removed: 0 });
    second.clock.advance(1);
    first.dp.touch({ group: 0, addr: A });
    expect(second.registry.gc()).toEqual({ retired: 1, removed: 0 });
    expect(second.registry.get(0, B)!.retired).toBe(true);
    second.clock.advance(IDLE_MS);
    expect(second.registry.gc()).toEqual({ retired: 1, removed: 0 });
    expect(addrsIn(first.dp)).toEqual([`0/${A}`, `0/${B}`]);
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
    // Still held by the adoption hold, no longer static; retired later like any entry.
    expect(second.registry.get(0, A)!.static).toBe(false);
    expect(first.dp.list()[0]!.value.flags & DEST_F_STATIC).toBe(0);
    second.clock.advance(MIN_HOLD_MS);
    expect(second.registry.gc()).toEqual({ retired: 1, removed: 0 });
  });

  test('adopt restores the real hold when the map kept the expiry', async () => {
    const first = rig();
    const t0 = first.clock.monoMs();
    await first.registry.register(reg({ addrs: [A], ttlS: 7200 }));
    first.clock.advance(600_000); // down for ten minutes (kill -9, upgrade)
    const second = rig({ datapath: first.dp, clock: first.clock });
    second.registry.adopt();
    expect(second.registry.get(0, A)!.expiresMs).toBe(t0 + 7200_000);
    second.clock.advance(7200_000 - 600_000 - 1);
    expect(second.registry.gc()).toEqual({ retired: 0, removed: 0 }); // not min_hold: the client still holds the address
    second.clock.advance(1);
    expect(second.registry.gc()).toEqual({ retired: 1, removed: 0 });
  });

  test('an entry whose hold ran out while the daemon was down is retired at the first gc when idle', async () => {
    const first = rig();
    await first.registry.register(reg({ addrs: [A], ttlS: 1 }));
    first.clock.advance(MIN_HOLD_MS + IDLE_MS);
    const second = rig({ datapath: first.dp, clock: first.clock });
    second.registry.adopt();
    expect(second.registry.gc()).toEqual({ retired: 1, removed: 0 });
    expect(first.dp.list()[0]!.value.flags).toBe(DEST_F_RETIRED);
  });

  test('adopt restores retired, blocked and static entries when the map has their flags', async () => {
    const first = rig();
    await first.registry.register(reg({ addrs: [A], ttlS: 1 }));
    first.clock.advance(MIN_HOLD_MS);
    first.registry.gc(); // A retired
    first.hooks.fail = new Error('AUTH_FAILED');
    await rejection(first.registry.register(reg({ addrs: [B], channel: PARTNER, names: ['p.partner.test'] })));
    first.registry.setStatics([{ group: 0, cidr: '203.0.113.9', channel: HUB }]);
    const second = rig({ datapath: first.dp, clock: first.clock });
    expect(second.registry.adopt()).toBe(3);
    expect(second.registry.get(0, A)).toMatchObject({ retired: true, static: false });
    expect(second.registry.get(0, B)).toMatchObject({ blocked: ADOPTED_BLOCKED, static: false });
    expect(second.registry.get(0, B)!.retired).toBeUndefined();
    expect(second.registry.get(0, '203.0.113.9')).toMatchObject({ static: true });
    expect(second.registry.stats()).toMatchObject({ retired: 1, blocked: 1, statics: 1 });
    // Adopted as they were: nothing is written back.
    expect(first.dp.list().map((e) => e.value.flags).sort()).toEqual([DEST_F_STATIC, DEST_F_RETIRED, DEST_F_BLOCKED].sort());
  });

  test('an adopted retired entry is removed when retire passes with no packet, counted from the restart', async () => {
    const first = rig({ retireMs: 3_600_000 });
    await first.registry.register(reg({ addrs: [A], ttlS: 1 }));
    first.clock.advance(MIN_HOLD_MS);
    first.registry.gc();
    first.clock.advance(1_800_000);
    const second = rig({ datapath: first.dp, clock: first.clock, retireMs: 3_600_000 });
    second.registry.adopt();
    second.clock.advance(3_600_000 - 1);
    expect(second.registry.gc()).toEqual({ retired: 0, removed: 0 });
    second.clock.advance(1);
    expect(second.registry.gc()).toEqual({ retired: 0, removed: 1 });
  });

  test('an adopted retired entry comes back live when an answer names it again', async () => {
    const first = rig();
    await first.registry.register(reg({ addrs: [A], ttlS: 1 }));
    first.clock.advance(MIN_HOLD_MS);
    first.registry.gc();
    const second = rig({ datapath: first.dp, clock: first.clock });
    second.registry.adopt();
    await second.registry.register(reg({ addrs: [A], ttlS: 300 }));
    expect(second.registry.get(0, A)!.retired).toBeUndefined();
    expect(first.dp.list()[0]!.value).toEqual({ channelId: HUB.id, mark: HUB.mark, flags: 0, expiresMs: first.clock.monoMs() + 300_000 });
  });

  test('an adopted blocked entry is unblocked in the map when an answer brings its peer up', async () => {
    const first = rig();
    first.hooks.fail = new Error('AUTH_FAILED');
    await rejection(first.registry.register(reg({ addrs: [B], channel: PARTNER, names: ['p.partner.test'] })));
    const second = rig({ datapath: first.dp, clock: first.clock });
    second.registry.adopt();
    await second.registry.register(reg({ addrs: [B], channel: PARTNER, names: ['p.partner.test'] }));
    expect(second.registry.get(0, B)!.blocked).toBeUndefined();
    expect(first.dp.list()[0]!.value.flags).toBe(0);
  });

  test('an entry from a map without expiries is held for min_hold from now when adopted', () => {
    const { registry, dp, clock } = rig();
    // What an older version wrote: no expiry in the value.
    dp.upsert({ group: 0, addr: A }, { channelId: HUB.id, mark: HUB.mark, flags: 0 });
    registry.adopt();
    expect(registry.get(0, A)!.expiresMs).toBe(clock.monoMs() + MIN_HOLD_MS);
    clock.advance(MIN_HOLD_MS - 1);
    expect(registry.gc()).toEqual({ retired: 0, removed: 0 });
    clock.advance(1);
    expect(registry.gc()).toEqual({ retired: 1, removed: 0 });
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
    expect(dp.list()[0]!.value).toMatchObject({ channelId: 9, mark: 0x5e510009, flags: 0 });
    expect(dp.ops.remove).toBe(0); // rewritten in place, never removed
    // A new answer for the same channel is not a conflict after the renumbering.
    await registry.register(reg({ addrs: [A], channel: renumbered, names: ['again.example'] }));
    expect(registry.get(0, A)!.names).toEqual(['www.corp.example', 'again.example']);
  });

  test('reconcile releases names the new policy gives another channel or none and retires an entry left with none', async () => {
    const { registry, dp } = rig();
    await registry.register(reg({ addrs: [A], names: ['keep.example', 'moved.example'] }));
    await registry.register(reg({ addrs: [B], names: ['dropped.example'] }));
    const policy: Record<string, string> = { 'keep.example': 'hub', 'moved.example': 'other' };
    const r = registry.reconcile((_g, name) => policy[name] ?? null);
    expect(r.names).toBe(2);
    expect(r.moved).toBe(0);
    expect(r.removed.map((e) => [e.addr, e.channel, e.retired])).toEqual([[B, 'hub', true]]);
    expect(registry.get(0, A)!.names).toEqual(['keep.example']);
    expect(addrsIn(dp)).toEqual([`0/${A}`, `0/${B}`]); // B retired under its old channel, not clear
    expect(dp.list().find((e) => e.key.addr === B)!.value).toMatchObject({ channelId: HUB.id, flags: DEST_F_RETIRED });
    expect(dp.ops.remove).toBe(0);
  });

  test('reconcile keeps adopted holds when their channel is still configured', async () => {
    const first = rig();
    await first.registry.register(reg({ addrs: [A] }));
    await first.registry.register(reg({ addrs: [B], channel: PARTNER }));
    const second = rig({ datapath: first.dp, clock: first.clock, channels: [HUB] });
    second.registry.adopt();
    second.registry.reconcile(() => null);
    expect(second.registry.get(0, A)!.retired).toBeUndefined();
    expect(second.registry.get(0, B)!.retired).toBe(true); // its channel is gone: retired, not clear
  });

  test('reconcile moves an entry in place when every name now wants one other channel', async () => {
    const { registry, dp } = rig();
    await registry.register(reg({ addrs: [A], names: ['a.example', 'alias.example'], channel: PARTNER }));
    const r = registry.reconcile(() => 'hub');
    expect(r).toEqual({ names: 0, moved: 1, removed: [] });
    expect(dp.list()[0]!.value).toMatchObject({ channelId: HUB.id, mark: HUB.mark, flags: 0 });
    expect(dp.ops.remove).toBe(0);
    expect(registry.get(0, A)!.channel).toBe('hub');
  });

  test('reconcile retires an entry under its old channel when its names want different channels and none its own', async () => {
    const { registry, dp } = rig({ channels: [HUB, PARTNER, OTHER] });
    await registry.register(reg({ addrs: [A], names: ['a.example', 'b.example'] }));
    const r = registry.reconcile((_g, n) => (n === 'a.example' ? 'other' : 'partner'));
    expect(r.removed.map((e) => e.addr)).toEqual([A]);
    expect(dp.list()[0]!.value).toMatchObject({ channelId: HUB.id, flags: DEST_F_RETIRED });
    // The next answer for either name takes the address over in place.
    await registry.register(reg({ addrs: [A], names: ['a.example'], channel: OTHER }));
    expect(dp.list()[0]!.value).toMatchObject({ channelId: OTHER.id, flags: 0 });
    expect(dp.ops.remove).toBe(0);
  });

  test('reconcile leaves static entries alone when the policy no longer names them', () => {
    const { registry, dp } = rig();
    registry.setStatics([{ group: 0, cidr: A, channel: HUB }]);
    registry.reconcile(() => null);
    expect(addrsIn(dp)).toEqual([`0/${A}`]);
  });
});
