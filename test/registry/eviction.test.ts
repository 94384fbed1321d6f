import { describe, expect, test } from 'bun:test';
import { HUB, MIN_HOLD_MS, OTHER, addrsIn, reg, rejection, rig } from './helpers.ts';

const RETIRE_MS = 3_600_000;
const a = (i: number) => `192.0.2.${i}`;

/**
 * A map of `cap` entries holding: `live` live entries (.101…), and retired ones (.1…) retired one
 * second apart in order — .1 has been retired the longest. `registryCapacity`: whether the
 * registry is told the capacity (else only the map's own map_full tells it).
 */
async function fullMap(opts: { retired: number; live: number; statics?: number; registryCapacity: boolean }) {
  const cap = opts.retired + opts.live + (opts.statics ?? 0);
  const r = rig({ retireMs: RETIRE_MS, dpCapacity: cap, ...(opts.registryCapacity ? { capacity: cap } : {}) });
  for (let i = 1; i <= opts.retired; i++) {
    await r.registry.register(reg({ addrs: [a(i)], ttlS: 1, names: [`r${i}.example`] }));
    r.clock.advance(1000);
  }
  // Each one retires once its hold (min_hold) has run out: the first registered the longest ago.
  for (let i = 1; i <= opts.retired; i++) {
    r.clock.advance(i === 1 ? MIN_HOLD_MS - opts.retired * 1000 : 1000);
    expect(r.registry.gc().retired).toBe(1);
  }
  for (let i = 1; i <= opts.live; i++) await r.registry.register(reg({ addrs: [a(100 + i)], ttlS: 3600, names: [`l${i}.example`] }));
  for (let i = 1; i <= (opts.statics ?? 0); i++) r.registry.setStatics([{ group: 0, cidr: `203.0.113.${i}`, channel: HUB }]);
  expect(r.dp.list()).toHaveLength(cap);
  return r;
}

describe.each([
  ['the registry knows the capacity', true],
  ['only the map reports map_full', false],
])('registry/eviction when %s', (_label, registryCapacity) => {
  test('an answer for new addresses evicts the retired entries retired longest when the map is full', async () => {
    const r = await fullMap({ retired: 4, live: 2, registryCapacity });
    await r.registry.register(reg({ addrs: ['198.51.100.1', '198.51.100.2'], names: ['new.example'] }));
    const left = addrsIn(r.dp);
    expect(left).not.toContain(`0/${a(1)}`);
    expect(left).not.toContain(`0/${a(2)}`);
    for (const keep of [a(3), a(4), a(101), a(102), '198.51.100.1', '198.51.100.2']) expect(left).toContain(`0/${keep}`);
    expect(r.metrics.counter('dnsseal_registry_evicted_total', '').get()).toBe(2);
    expect(r.metrics.counter('dnsseal_registry_removed_total', '').get({ reason: 'evicted' })).toBe(2);
    expect(r.metrics.counter('dnsseal_registry_registrations_total', '').get({ outcome: 'map_full' })).toBe(0);
  });

  test('the retired entry seen least recently goes first when a packet hit an older one', async () => {
    const r = await fullMap({ retired: 3, live: 1, registryCapacity });
    r.dp.touch({ group: 0, addr: a(1) }); // the oldest retired one is still used (steered or dropped)
    r.registry.gc(); // the sweep reads last_seen
    await r.registry.register(reg({ addrs: ['198.51.100.1'] }));
    expect(addrsIn(r.dp)).not.toContain(`0/${a(2)}`);
    expect(addrsIn(r.dp)).toContain(`0/${a(1)}`);
  });

  test('a packet after the order was taken moves a retired entry back when evictions follow', async () => {
    const r = await fullMap({ retired: 3, live: 1, registryCapacity });
    await r.registry.register(reg({ addrs: ['198.51.100.1'] })); // evicts .1 and takes the order
    r.dp.touch({ group: 0, addr: a(2) }); // no gc in between
    await r.registry.register(reg({ addrs: ['198.51.100.2'] }));
    expect(addrsIn(r.dp)).toContain(`0/${a(2)}`);
    expect(addrsIn(r.dp)).not.toContain(`0/${a(3)}`);
  });

  test('a retired entry used after it retired keeps its place by its last packet when gc has not read it yet', async () => {
    const r = await fullMap({ retired: 3, live: 1, registryCapacity });
    const retiredAt = (i: number) => r.registry.get(0, a(i))!.retiredMs!;
    // .1 retired first but saw a packet between the retirements of .2 and .3.
    r.dp.touch({ group: 0, addr: a(1) }, (retiredAt(2) + retiredAt(3)) / 2);
    await r.registry.register(reg({ addrs: ['198.51.100.1'] }));
    expect(r.registry.get(0, a(2))).toBeUndefined();
    await r.registry.register(reg({ addrs: ['198.51.100.2'] }));
    expect(r.registry.get(0, a(1))).toBeUndefined();
    expect(r.registry.get(0, a(3))!.retired).toBe(true);
  });

  test('live and static entries are never evicted and the answer gets map_full when retired ones are not enough', async () => {
    const r = await fullMap({ retired: 1, live: 2, statics: 1, registryCapacity });
    const before = addrsIn(r.dp);
    const err = await rejection(r.registry.register(reg({ addrs: ['198.51.100.1', '198.51.100.2'], names: ['new.example'] })));
    expect(err.code).toBe('map_full');
    for (const keep of [a(101), a(102), '203.0.113.1']) expect(addrsIn(r.dp)).toContain(`0/${keep}`);
    expect(r.registry.get(0, a(101))!.retired).toBeUndefined();
    if (registryCapacity) expect(addrsIn(r.dp)).toEqual(before); // refused before anything was evicted
    expect(r.metrics.counter('dnsseal_registry_registrations_total', '').get({ outcome: 'map_full' })).toBe(1);
  });

  test('an answer that brings a retired entry back never evicts that entry to make room', async () => {
    const r = await fullMap({ retired: 2, live: 1, registryCapacity });
    await r.registry.register(reg({ addrs: [a(1), '198.51.100.1'], names: ['r1.example'] }));
    expect(r.registry.get(0, a(1))!.retired).toBeUndefined();
    expect(r.registry.get(0, a(2))).toBeUndefined();
    expect(addrsIn(r.dp)).toContain('0/198.51.100.1');
  });

  test('a retired entry of another channel is taken over, not evicted, when the map is full', async () => {
    const r = await fullMap({ retired: 1, live: 1, registryCapacity });
    await r.registry.register(reg({ addrs: [a(1)], channel: OTHER, names: ['other.example'] }));
    expect(r.registry.get(0, a(1))).toMatchObject({ channel: 'other', names: ['other.example'] });
    expect(r.metrics.counter('dnsseal_registry_evicted_total', '').get()).toBe(0);
  });
});
