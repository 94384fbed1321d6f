import { describe, expect, test } from 'bun:test';
import { CnameHolds } from '../../src/policy/cname-holds.ts';
import { explain } from '../../src/policy/explain.ts';
import { Policy } from '../../src/policy/policy.ts';
import type { Decision } from '../../src/policy/types.ts';
import { FakeClock } from '../../src/util/clock.ts';
import { channels, config, table } from './fixtures.ts';

const [HUB, PARTNER] = channels(['hub', { kind: 'tunnel', gateway: '192.0.2.1' }], ['partner', { kind: 'peer', esp: 'chacha20poly1305' }]);
const policy = Policy.fromConfig(
  config({
    channels: [HUB!, PARTNER!],
    tables: [table('default', [['*.corp.example', 'hub']]), table('lab', [['*.lab.example', 'partner']])],
    clients: [{ cidr: '10.9.0.0/16', table: 'lab' }],
  }),
);
const LAB = policy.tableFor('10.9.0.1').group;

function setup(minHoldS = 60, maxEntries?: number) {
  const clock = new FakeClock();
  const holds = new CnameHolds({ clock, minHoldS, policy, ...(maxEntries ? { maxEntries } : {}) });
  return { clock, holds };
}

/** The decision for `chain` as the pipeline makes it: rule first, then holds. */
function decide(holds: CnameHolds, client: string, chain: string[]): Decision {
  const d = policy.decide(client, chain);
  return d.channel ? d : (holds.decide(client, d, chain) ?? d);
}

describe('policy/cname-holds', () => {
  test('protects a CNAME target for the group with the decision that named it when it is asked for alone', () => {
    const { holds } = setup();
    holds.hold(decide(holds, '10.1.1.1', ['app.corp.example', 'app.cloudhost.example']), ['app.corp.example', 'app.cloudhost.example'], [0, 300]);
    const d = decide(holds, '10.1.1.1', ['app.cloudhost.example']);
    expect(d).toMatchObject({ table: 'default', group: 0, channel: { name: 'hub' }, matchedName: 'app.cloudhost.example', heldBy: 'app.corp.example' });
    expect(d.rule?.condition.pattern).toBe('*.corp.example');
  });

  test('leaves another client group alone when one group holds a name', () => {
    const { holds } = setup();
    holds.hold(decide(holds, '10.1.1.1', ['app.corp.example', 'app.cloudhost.example']), ['app.corp.example', 'app.cloudhost.example'], [0, 300]);
    const d = decide(holds, '10.9.0.1', ['app.cloudhost.example']);
    expect([d.group, d.channel]).toEqual([LAB, null]);
  });

  test.each([
    [30, 60],
    [300, 300],
  ])('holds for max(CNAME TTL %i s, min_hold 60 s) = %i s and no longer', (ttl, held) => {
    const { clock, holds } = setup(60);
    holds.hold(decide(holds, '10.1.1.1', ['a.corp.example', 'b.cloud.example']), ['a.corp.example', 'b.cloud.example'], [0, ttl]);
    clock.advance(held * 1000 - 1);
    expect(decide(holds, '10.1.1.1', ['b.cloud.example']).channel?.name).toBe('hub');
    clock.advance(1);
    expect(decide(holds, '10.1.1.1', ['b.cloud.example']).channel).toBeNull();
    expect(holds.size).toBe(0);
  });

  test('holds every name after the one that matched and none before it when the chain is long', () => {
    const { holds } = setup();
    const chain = ['x.public.example', 'a.corp.example', 'b.cloud.example', 'c.cdn.example'];
    holds.hold(decide(holds, '10.1.1.1', chain), chain, [0, 60, 60, 60]);
    expect(holds.list().map((h) => [h.name, h.by])).toEqual([
      ['b.cloud.example', 'a.corp.example'],
      ['c.cdn.example', 'a.corp.example'],
    ]);
  });

  test('never renews a hold through the names it holds when the held name is asked for again', () => {
    const { clock, holds } = setup(60);
    holds.hold(decide(holds, '10.1.1.1', ['a.corp.example', 'b.cloud.example']), ['a.corp.example', 'b.cloud.example'], [0, 60]);
    clock.advance(50_000);
    // the client asks b (held) and gets b CNAME c: c is held, b itself is not renewed
    const viaHold = decide(holds, '10.1.1.1', ['b.cloud.example', 'c.cdn.example']);
    holds.hold(viaHold, ['b.cloud.example', 'c.cdn.example'], [0, 60]);
    // and a name asking through b does not renew b either
    const x = decide(holds, '10.1.1.1', ['x.other.example', 'b.cloud.example']);
    holds.hold(x, ['x.other.example', 'b.cloud.example'], [0, 600]);
    clock.advance(10_000);
    // b's own hold is over; c lives on its own TTL (the rule that began it still protects a)
    expect(decide(holds, '10.1.1.1', ['b.cloud.example']).channel).toBeNull();
    expect(decide(holds, '10.1.1.1', ['c.cdn.example'])).toMatchObject({ channel: { name: 'hub' }, heldBy: 'b.cloud.example' });
  });

  test('evicts the least recently renewed hold and counts it when the table is full', () => {
    const { holds } = setup(60, 2);
    const hit = decide(holds, '10.1.1.1', ['a.corp.example']);
    holds.hold(hit, ['a.corp.example', 'one.example'], [0, 60]);
    holds.hold(hit, ['a.corp.example', 'two.example'], [0, 60]);
    holds.hold(hit, ['a.corp.example', 'one.example'], [0, 60]); // renewed: now the newest
    holds.hold(hit, ['a.corp.example', 'three.example'], [0, 60]);
    expect(holds.list().map((h) => h.name)).toEqual(['one.example', 'three.example']);
    expect([holds.size, holds.evicted]).toEqual([2, 1]);
  });

  test('does not count an expired hold as evicted when it makes room', () => {
    const { clock, holds } = setup(60, 1);
    const hit = decide(holds, '10.1.1.1', ['a.corp.example']);
    holds.hold(hit, ['a.corp.example', 'one.example'], [0, 60]);
    clock.advance(61_000);
    holds.hold(hit, ['a.corp.example', 'two.example'], [0, 60]);
    expect([holds.list().map((h) => h.name), holds.evicted]).toEqual([['two.example'], 0]);
  });

  test('protects nothing through a hold when the running policy no longer protects the name that brought it', () => {
    let live = policy;
    const clock = new FakeClock();
    const holds = new CnameHolds({ clock, minHoldS: 60, policy: { decide: (ip, names) => live.decide(ip, names) } });
    const chain = ['a.corp.example', 'b.cloud.example', 'c.cdn.example'];
    holds.hold(live.decide('10.1.1.1', chain), chain, [0, 300, 300]);
    const choose = (g: number, n: string) => live.decide(g === 0 ? '10.1.1.1' : '10.9.0.1', [n]).channel?.name ?? null;
    expect(holds.channelFor(0, 'c.cdn.example', choose)).toBe('hub');
    // a reload moves *.corp.example to another channel: the hold follows
    live = Policy.fromConfig(config({ channels: [HUB!, PARTNER!], tables: [table('default', [['*.corp.example', 'partner']])] }));
    expect(holds.decide('10.1.1.1', live.decide('10.1.1.1', ['c.cdn.example']), ['c.cdn.example'])).toMatchObject({ channel: { name: 'partner' }, heldBy: 'a.corp.example' });
    // a reload drops the rule: nothing is protected through the hold, and it goes
    live = Policy.fromConfig(config({ channels: [HUB!], tables: [table('default', [['www.example', 'hub']])] }));
    expect(holds.channelFor(0, 'b.cloud.example', choose)).toBeNull();
    expect(holds.decide('10.1.1.1', live.decide('10.1.1.1', ['b.cloud.example']), ['b.cloud.example'])).toBeNull();
    expect(holds.list().map((h) => h.name)).toEqual(['c.cdn.example']);
  });

  test('keeps a policy server\'s decision through a hold when no local rule brought it', () => {
    const { holds } = setup();
    const server: Decision = { table: 'default', group: 0, rule: null, channel: PARTNER!, upstream: null };
    holds.hold(server, ['x.partner.example', 'y.cloud.example'], [0, 300]);
    expect(decide(holds, '10.1.1.1', ['y.cloud.example'])).toMatchObject({ channel: { name: 'partner' }, rule: null, heldBy: 'x.partner.example' });
    expect(holds.channelFor(0, 'y.cloud.example', () => null)).toBe('partner');
  });

  test('explain names the protected name that brought a hold when the name is held', () => {
    const { clock, holds } = setup();
    holds.hold(decide(holds, '10.1.1.1', ['app.corp.example', 'app.cloudhost.example']), ['app.corp.example', 'app.cloudhost.example'], [0, 300]);
    clock.advance(100_000);
    const e = explain(policy, 'App.Cloudhost.Example.', '10.1.1.1', holds);
    expect(e).toMatchObject({ name: 'app.cloudhost.example', table: 'default', rule: { pattern: '*.corp.example' }, channel: { name: 'hub' }, heldBy: { name: 'app.corp.example', expiresInS: 200 } });
    expect(explain(policy, 'app.cloudhost.example', '10.9.0.1', holds)).toMatchObject({ rule: null, channel: null });
    expect(explain(policy, 'app.cloudhost.example', '10.1.1.1').heldBy).toBeUndefined();
  });
});
