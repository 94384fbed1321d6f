/** `flush` filters through the control handler: what each selects, how they combine, what is refused (and then nothing is flushed). */
import { describe, expect, test } from 'bun:test';
import { createControlHandlers } from '../../src/control/handlers.ts';
import { checkFlushFilter } from '../../src/control/flush-filter.ts';
import { HUB, OTHER, reg, rejection, rig } from '../registry/helpers.ts';

const NAMES = { channels: ['hub', 'partner', 'other'], tables: [{ id: 'engineering', group: 502 }] };

async function setup() {
  const r = rig();
  await r.registry.register(reg({ addrs: ['192.0.2.1', '192.0.2.2'], names: ['www.corp.example', 'edge.cdn.example'], ttlS: 120 }));
  await r.registry.register(reg({ addrs: ['198.51.100.7'], names: ['git.corp.example'], channel: OTHER }));
  await r.registry.register(reg({ group: 502, addrs: ['2001:db8::5'], names: ['mail.corp.example'], channel: OTHER }));
  await r.registry.register(reg({ group: 502, addrs: ['192.0.2.9'], names: ['app.biglobe.ne.jp'], channel: HUB }));
  r.registry.setStatics([{ group: 0, cidr: '203.0.113.9', channel: HUB }]);
  const h = createControlHandlers({ registry: r.registry, clock: r.clock, policyNames: () => NAMES });
  // What a flush selects is retired, not removed (issue #11 item 12): `left` is what stays live.
  const left = () =>
    r.registry
      .list()
      .filter((e) => !e.retired)
      .map((e) => `${e.group}/${e.addr}=${e.names.join('+')}`)
      .sort();
  return { ...r, h, left };
}

const ALL = ['0/192.0.2.1=www.corp.example+edge.cdn.example', '0/192.0.2.2=www.corp.example+edge.cdn.example', '0/198.51.100.7=git.corp.example', '0/203.0.113.9=', '502/192.0.2.9=app.biglobe.ne.jp', '502/2001:db8::5=mail.corp.example'];
const without = (...gone: string[]) => ALL.filter((x) => !gone.some((g) => x.startsWith(g)));

describe('control/flush-filter', () => {
  test.each([
    ['a channel (not everything)', { channel: 'other' }, without('0/198.51.100.7', '502/2001:db8::5')],
    ['a table id', { table: 'engineering' }, without('502/')],
    ['the default table', { table: 'default' }, without('0/192.0.2.1', '0/192.0.2.2', '0/198.51.100.7')],
    ['an address', { address: '192.0.2.2' }, without('0/192.0.2.2')],
    ['an IPv6 address in another form', { address: '2001:DB8:0::5' }, without('502/2001:db8::5')],
    ['a CIDR', { address: '192.0.2.0/24' }, without('0/192.0.2.1', '0/192.0.2.2', '502/192.0.2.9')],
    ['a channel and a table together', { channel: 'other', table: 'engineering' }, without('502/2001:db8::5')],
    ['a CIDR and a table together', { address: '192.0.2.0/24', table: 'engineering' }, without('502/192.0.2.9')],
    ['a channel matching nothing there', { channel: 'partner' }, ALL],
  ])('flush withdraws only what %s selects', async (_what, args, want) => {
    const { h, left } = await setup();
    await h.flush!(args);
    expect(left()).toEqual(want);
  });

  test.each([
    ['a suffix pattern', { name: '*.corp.example' }, ['0/192.0.2.1=edge.cdn.example', '0/192.0.2.2=edge.cdn.example', '0/203.0.113.9=', '502/192.0.2.9=app.biglobe.ne.jp']],
    ['an infix pattern', { name: '*.biglobe.*' }, without('502/192.0.2.9')],
    ['an exact name in capitals with a trailing dot', { name: 'GIT.corp.example.' }, without('0/198.51.100.7')],
    ['a pattern and a channel', { name: '*.corp.example', channel: 'other' }, without('0/198.51.100.7', '502/2001:db8::5')],
    ['a pattern and an address', { name: 'www.corp.example', address: '192.0.2.1' }, ['0/192.0.2.1=edge.cdn.example', ...ALL.slice(1)]],
  ])('flush releases the names %s selects and withdraws entries left without one', async (_what, args, want) => {
    const { h, left } = await setup();
    await h.flush!(args);
    expect(left()).toEqual(want);
  });

  test('flush without a filter withdraws every non-static entry, retired and still in the map', async () => {
    const { h, left, dp, registry } = await setup();
    expect(await h.flush!({})).toEqual({ released: 0, retired: 5 });
    expect(left()).toEqual(['0/203.0.113.9=']);
    expect(dp.list()).toHaveLength(6); // nothing flushed falls into the clear
    expect(registry.stats().retired).toBe(5);
  });

  test.each([
    ['an unknown channel', { channel: 'partnr' }, 'flush --channel: unknown channel "partnr" (known: hub, partner, other); nothing was flushed'],
    ['an unknown table', { table: 'enginering' }, 'flush --table: unknown table "enginering" (known: default, engineering); nothing was flushed'],
    ['a known channel with an unknown table', { channel: 'hub', table: '7' }, 'unknown table "7"'],
    ['a malformed pattern', { name: 'a.*.b' }, 'flush --name: "a.*.b": "*" must be a whole label'],
    ['a CIDR with host bits', { address: '192.0.2.1/24' }, 'flush --address: "192.0.2.1/24" has host bits set'],
    ['a host name as address', { address: 'www.example' }, 'is not an IPv4 or IPv6 address'],
    ['an unknown filter', { group: 0 }, 'unknown filter "group"'],
    ['an empty value', { name: '' }, 'name must be a non-empty string'],
  ])('flush refuses %s and flushes nothing', async (_what, args, message) => {
    const { h, left } = await setup();
    const err = await rejection(h.flush!(args));
    expect(err.code).toBe('bad_args');
    expect(err.message).toContain(message);
    expect(left()).toEqual(ALL);
  });

  test('flush checks only the syntax when the daemon gives no policy names', async () => {
    const r = await setup();
    const h = createControlHandlers({ registry: r.registry, clock: r.clock });
    await h.flush!({ channel: 'other', table: '502' });
    expect(r.left()).toEqual(without('502/2001:db8::5'));
  });

  test.each([
    ['well-formed filters', { name: '*.corp.example', address: '10.0.0.0/8', channel: 'any' }, undefined],
    ['a match-everything pattern', { name: '*' }, 'name'],
    ['a prefix too long', { address: '10.0.0.0/33' }, 'address'],
  ])('checkFlushFilter names the bad filter without knowing the configuration when given %s', (_what, args, bad) => {
    expect(checkFlushFilter(args)?.filter).toBe(bad);
  });
});
