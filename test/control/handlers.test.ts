import { describe, expect, test } from 'bun:test';
import { createControlHandlers } from '../../src/control/handlers.ts';
import { DEST_F_RETIRED, DEST_F_STATIC } from '../../src/datapath/datapath.ts';
import { DnssealError } from '../../src/util/errors.ts';
import { HUB, OTHER, PARTNER, reg, rig } from '../registry/helpers.ts';

async function setup() {
  const r = rig();
  await r.registry.register(reg({ addrs: ['192.0.2.1', '192.0.2.2'], names: ['www.corp.example', 'edge.cdn.example'], ttlS: 120 }));
  await r.registry.register(reg({ group: 502, addrs: ['2001:db8::5'], names: ['mail.corp.example'], channel: OTHER, ttlS: 600 }));
  r.registry.setStatics([{ group: 0, cidr: '203.0.113.9', channel: HUB }]);
  const h = createControlHandlers({ registry: r.registry, clock: r.clock });
  return { ...r, h };
}

type Row = { address: string; group: number; expiresInS: number | null; idleS: number | null; names: string[] };
const addrs = (rows: unknown) => (rows as Row[]).map((r) => `${r.group}/${r.address}`);

async function failure(p: Promise<unknown>): Promise<DnssealError> {
  try {
    await p;
  } catch (err) {
    return err as DnssealError;
  }
  throw new Error('expected a rejection');
}

describe('control/handlers', () => {
  test.each([
    ['no filter', {}, ['0/192.0.2.1', '0/192.0.2.2', '0/203.0.113.9', '502/2001:db8::5']],
    ['an exact name', { name: 'mail.corp.example' }, ['502/2001:db8::5']],
    ['a name with a trailing dot and capitals', { name: 'WWW.corp.example.' }, ['0/192.0.2.1', '0/192.0.2.2']],
    ['a *.suffix name', { name: '*.corp.example' }, ['0/192.0.2.1', '0/192.0.2.2', '502/2001:db8::5']],
    ['an address in non-canonical form', { address: '2001:DB8:0::5' }, ['502/2001:db8::5']],
    ['a channel', { channel: 'hub' }, ['0/192.0.2.1', '0/192.0.2.2', '0/203.0.113.9']],
    ['a group', { group: 502 }, ['502/2001:db8::5']],
    ['a group as text', { group: '0' }, ['0/192.0.2.1', '0/192.0.2.2', '0/203.0.113.9']],
    ['a name nobody registered', { name: 'nope.example' }, []],
  ])('list returns the matching rows when filtered by %s', async (_label, args, want) => {
    const { h } = await setup();
    expect(addrs(await h.list!(args))).toEqual(want);
  });

  test('list gives seconds remaining and idle seconds when time has passed', async () => {
    const { h, clock, dp } = await setup();
    clock.advance(20_500);
    dp.touch({ group: 0, addr: '192.0.2.1' }, clock.monoMs() - 7_000);
    const rows = (await h.list!({})) as Row[];
    const byAddr = new Map(rows.map((r) => [r.address, r]));
    expect(byAddr.get('192.0.2.1')).toMatchObject({ expiresInS: 100, idleS: 7 });
    expect(byAddr.get('192.0.2.2')).toMatchObject({ expiresInS: 100, idleS: null });
    expect(byAddr.get('203.0.113.9')).toMatchObject({ expiresInS: null, static: true });
  });

  test('list names the reason when an entry is blocked because its peer channel failed', async () => {
    const r = rig();
    r.hooks.fail = new Error('AUTH_FAILED');
    await failure(r.registry.register(reg({ addrs: ['192.0.2.3'], names: ['peer.partner.test'], channel: PARTNER })));
    await r.registry.register(reg({ addrs: ['192.0.2.1'], names: ['www.corp.example'] }));
    const h = createControlHandlers({ registry: r.registry, clock: r.clock });
    const rows = (await h.list!({})) as Array<Row & { blocked?: string }>;
    expect(rows.find((x) => x.address === '192.0.2.3')!.blocked).toContain('AUTH_FAILED');
    expect('blocked' in rows.find((x) => x.address === '192.0.2.1')!).toBe(false);
  });

  test('list marks retired entries and leaves the field out for live ones', async () => {
    const { h, registry, clock } = await setup();
    clock.advance(200_000); // the holds of 192.0.2.1 and .2 ran out, and they were never seen
    registry.gc();
    const rows = (await h.list!({})) as Array<Row & { retired?: boolean; channel: string }>;
    const byAddr = new Map(rows.map((r) => [r.address, r]));
    expect(byAddr.get('192.0.2.1')).toMatchObject({ retired: true, channel: 'hub', expiresInS: 0, names: ['www.corp.example', 'edge.cdn.example'] });
    expect('retired' in byAddr.get('2001:db8::5')!).toBe(false);
    expect('retired' in byAddr.get('203.0.113.9')!).toBe(false);
  });

  test('list shows 0 seconds when the hold ran out but traffic keeps the entry', async () => {
    const { h, clock } = await setup();
    clock.advance(200_000);
    const row = ((await h.list!({ address: '192.0.2.1' })) as Row[])[0]!;
    expect(row.expiresInS).toBe(0);
  });

  test.each([
    ['an unknown filter', { colour: 'red' }, 'unknown filter "colour"'],
    ['a bad address', { address: 'www.example' }, 'is not an IP address'],
    ['a negative group', { group: -1 }, 'group must be a number'],
    ['an empty name', { name: '' }, 'name must be a non-empty string'],
  ])('list refuses %s', async (_label, args, msg) => {
    const { h } = await setup();
    const err = await failure(h.list!(args));
    expect(err.code).toBe('bad_args');
    expect(err.message).toContain(msg);
  });

  // Flushed entries are retired, never removed (issue #11 item 12): `removed` counts them.
  test('flush by name releases the name and retires entries left without one', async () => {
    const { h, registry, dp } = await setup();
    await registry.register(reg({ addrs: ['192.0.2.1'], names: ['other.corp.example'] }));
    expect(await h.flush!({ name: 'www.corp.example' })).toEqual({ released: 2, retired: 0 });
    expect(await h.flush!({ name: 'edge.cdn.example' })).toEqual({ released: 2, retired: 1 });
    expect(registry.get(0, '192.0.2.1')!.names).toEqual(['other.corp.example']);
    expect(registry.get(0, '192.0.2.1')!.retired).toBeUndefined();
    expect(registry.get(0, '192.0.2.2')!.retired).toBe(true);
    expect(dp.list()).toHaveLength(4);
  });

  test('flush by address retires that entry only and keeps it in the map', async () => {
    const { h, registry, dp } = await setup();
    expect(await h.flush!({ address: '192.0.2.2' })).toEqual({ released: 0, retired: 1 });
    expect(registry.get(0, '192.0.2.2')!.retired).toBe(true);
    expect(dp.list().find((e) => e.key.addr === '192.0.2.2')!.value.flags).toBe(DEST_F_RETIRED);
    expect(registry.get(0, '192.0.2.1')!.retired).toBeUndefined();
  });

  test('flush without arguments retires every entry except statics and removes none', async () => {
    const { h, dp } = await setup();
    expect(await h.flush!({})).toEqual({ released: 0, retired: 3 });
    expect(dp.list().map((e) => [e.key.addr, e.value.flags]).sort()).toEqual([
      ['192.0.2.1', DEST_F_RETIRED],
      ['192.0.2.2', DEST_F_RETIRED],
      ['2001:db8::5', DEST_F_RETIRED],
      ['203.0.113.9', DEST_F_STATIC],
    ]);
    expect(dp.ops.remove).toBe(0);
  });

  test('flush combines a name and an address when given both', async () => {
    const { h, registry } = await setup();
    expect(await h.flush!({ name: 'www.corp.example', address: '192.0.2.2' })).toEqual({ released: 1, retired: 0 });
    expect(registry.get(0, '192.0.2.2')!.names).toEqual(['edge.cdn.example']);
    expect(registry.get(0, '192.0.2.1')!.names).toEqual(['www.corp.example', 'edge.cdn.example']);
  });

  test('status answers the daemon\'s document when the daemon gives one', async () => {
    const r = await setup();
    const h = createControlHandlers({ registry: r.registry, clock: r.clock, status: () => ({ mode: 'gateway' }) });
    expect(await h.status!({})).toEqual({ mode: 'gateway' });
  });

  test('status reports the registry figures in snake_case when no daemon document is given', async () => {
    const r = await setup();
    const h = createControlHandlers({ registry: r.registry, clock: r.clock });
    expect(await h.status!({})).toEqual({
      entries: { total: 4, live: 4, retired: 0, blocked: 0, static: 1, by_channel: { hub: 3, other: 1 } },
      map: { used: 4, capacity: null, fill: null },
    });
  });

  test('status counts retired entries when the registry has some', async () => {
    const r = await setup();
    r.registry.withdraw((e) => e.addr === '192.0.2.1');
    const h = createControlHandlers({ registry: r.registry, clock: r.clock });
    expect(await h.status!({})).toMatchObject({ entries: { total: 4, live: 3, retired: 1 } });
  });

  test.each(['reload', 'down', 'explain'])('%s answers not_available when the daemon did not fill the slot', async (cmd) => {
    const { h } = await setup();
    const err = await failure(h[cmd]!({}));
    expect(err.code).toBe('not_available');
  });

  test('a filled slot is called with the arguments when the daemon provides it', async () => {
    const r = await setup();
    const h = createControlHandlers({ registry: r.registry, clock: r.clock, explain: async (a) => ({ explained: a.name }) });
    expect(await h.explain!({ name: 'x.example' })).toEqual({ explained: 'x.example' });
  });

  test('flush --cache empties the cache, or the names a pattern selects, and leaves the entries', async () => {
    const r = rig();
    await r.registry.register(reg({ addrs: ['192.0.2.1'], names: ['www.corp.example'] }));
    const names = ['www.corp.example', 'mail.corp.example', 'www.other.example'];
    const cache = {
      clear: (match?: (n: string) => boolean) => {
        const gone = match ? names.filter(match) : [...names];
        for (const n of gone) names.splice(names.indexOf(n), 1);
        return gone.length;
      },
    };
    const h = createControlHandlers({ registry: r.registry, clock: r.clock, cache });
    expect(await h.flush!({ cache: true, name: '*.corp.example' })).toEqual({ cacheRemoved: 2 });
    expect(names).toEqual(['www.other.example']);
    expect(await h.flush!({ cache: true })).toEqual({ cacheRemoved: 1 });
    expect(r.registry.list().filter((e) => !e.retired)).toHaveLength(1);
    expect((await failure(h.flush!({ cache: true, address: '192.0.2.1' }))).code).toBe('bad_args');
    expect((await failure(createControlHandlers({ registry: r.registry, clock: r.clock }).flush!({ cache: true }))).code).toBe('not_available');
  });
});
