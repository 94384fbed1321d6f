import { describe, expect, test } from 'bun:test';
import { createControlHandlers } from '../../src/control/handlers.ts';
import { addressSortKey, type ListRow } from '../../src/control/list-rows.ts';
import { tableGroup } from '../../src/policy/group.ts';
import { DnssealError } from '../../src/util/errors.ts';
import { reg, rig } from '../registry/helpers.ts';

const ENG = tableGroup('eng');
const TABLES = [
  { id: 'default', group: 0 },
  { id: 'eng', group: ENG },
  { id: '502', group: 502 },
];

async function setup(tables: typeof TABLES | undefined = TABLES) {
  const r = rig();
  // registered out of order, so that text order and numeric order differ
  await r.registry.register(reg({ addrs: ['192.0.2.10', '2001:db8::10', '192.0.2.9', '10.0.0.1', '2001:db8::9'], names: ['www.corp.example'] }));
  await r.registry.register(reg({ group: ENG, addrs: ['198.51.100.7'], names: ['git.corp.example'] }));
  await r.registry.register(reg({ group: 77, addrs: ['198.51.100.8'], names: ['old.corp.example'] }));
  const h = createControlHandlers({ registry: r.registry, clock: r.clock, ...(tables ? { policyNames: () => ({ channels: ['hub'], tables }) } : {}) });
  return { ...r, h };
}

async function rejection(p: Promise<unknown>): Promise<DnssealError> {
  try {
    await p;
  } catch (err) {
    return err as DnssealError;
  }
  throw new Error('expected a rejection');
}

describe('control/list-rows', () => {
  test('list sorts addresses numerically, IPv4 before IPv6, when they would sort differently as text', async () => {
    const { h } = await setup();
    const rows = (await h.list!({ table: 'default' })) as ListRow[];
    expect(rows.map((r) => r.address)).toEqual(['10.0.0.1', '192.0.2.9', '192.0.2.10', '2001:db8::9', '2001:db8::10']);
  });

  test.each([
    ['1.2.3.4', '10.0.0.0'],
    ['9.255.255.255', '10.0.0.0'],
    ['255.255.255.255', '::'],
    ['::2', '::10'],
    ['2001:db8::ff', '2001:db8::1:0'],
  ])('addressSortKey puts %s before %s', (a, b) => {
    expect(addressSortKey(a) < addressSortKey(b)).toBe(true);
  });

  test('list names each row by its table id when the daemon knows the running tables', async () => {
    const { h } = await setup();
    const rows = (await h.list!({})) as ListRow[];
    const byAddr = new Map(rows.map((r) => [r.address, r]));
    expect(byAddr.get('192.0.2.9')).toMatchObject({ group: 0, table: 'default' });
    expect(byAddr.get('198.51.100.7')).toMatchObject({ group: ENG, table: 'eng' });
    // a group no running table has (left by an earlier config) keeps its number only
    expect(byAddr.get('198.51.100.8')!.group).toBe(77);
    expect('table' in byAddr.get('198.51.100.8')!).toBe(false);
  });

  test('list --table selects a table by its name when the table runs', async () => {
    const { h } = await setup();
    expect(((await h.list!({ table: 'eng' })) as ListRow[]).map((r) => r.address)).toEqual(['198.51.100.7']);
  });

  test('list --table refuses a table the daemon does not run and names the known ones', async () => {
    const { h } = await setup();
    const err = await rejection(h.list!({ table: 'nosuch' }));
    expect(err.code).toBe('bad_args');
    expect(err.message).toBe('control: list --table: unknown table "nosuch" (known: default, eng, 502)');
  });

  test.each([
    ['a suffix pattern', '*.corp.example', ['10.0.0.1', '192.0.2.9', '192.0.2.10', '2001:db8::9', '2001:db8::10', '198.51.100.8', '198.51.100.7']],
    ['a subdomain pattern', '**.corp.example', ['10.0.0.1', '192.0.2.9', '192.0.2.10', '2001:db8::9', '2001:db8::10', '198.51.100.8', '198.51.100.7']],
    ['a prefix pattern', 'git.*', ['198.51.100.7']],
    ['an infix pattern', '*.old.*', ['198.51.100.8']],
    ['an exact name in capitals with the root dot', 'GIT.corp.example.', ['198.51.100.7']],
    ['an apex no entry holds', 'corp.example', []],
  ])('list --name takes %s, written as in rules (as flush --name does)', async (_label, name, want) => {
    const { h } = await setup();
    expect(((await h.list!({ name })) as ListRow[]).map((r) => r.address)).toEqual(want);
  });

  test('list --name "*.x" selects the apex x as a rule does, "**.x" only the names under it', async () => {
    const r = rig();
    await r.registry.register(reg({ addrs: ['192.0.2.1'], names: ['corp.example'] }));
    await r.registry.register(reg({ addrs: ['192.0.2.2'], names: ['www.corp.example'] }));
    const h = createControlHandlers({ registry: r.registry, clock: r.clock });
    expect(((await h.list!({ name: '*.corp.example' })) as ListRow[]).map((x) => x.address)).toEqual(['192.0.2.1', '192.0.2.2']);
    expect(((await h.list!({ name: '**.corp.example' })) as ListRow[]).map((x) => x.address)).toEqual(['192.0.2.2']);
  });

  test.each([
    ['192.0.2.0/28', ['192.0.2.9', '192.0.2.10']],
    ['2001:db8::/120', ['2001:db8::9', '2001:db8::10']],
    ['198.51.100.0/24', ['198.51.100.8', '198.51.100.7']],
  ])('list --address takes a CIDR (%s), as flush --address does', async (address, want) => {
    const { h } = await setup();
    expect(((await h.list!({ address })) as ListRow[]).map((r) => r.address)).toEqual(want);
  });

  test('list --name refuses a malformed pattern instead of answering no entries', async () => {
    const { h } = await setup();
    const err = await rejection(h.list!({ name: 'a.*.b' }));
    expect(err.code).toBe('bad_args');
    expect(err.message).toContain('list --name: "a.*.b": "*" must be a whole label');
    expect((await rejection(h.list!({ name: 'bad..example' }))).message).toContain('has an empty label');
  });

  test('list --channel refuses a channel the daemon neither runs nor has entries of, naming the known ones', async () => {
    const { h } = await setup();
    const err = await rejection(h.list!({ channel: 'hbu' }));
    expect(err.code).toBe('bad_args');
    expect(err.message).toBe('control: list --channel: unknown channel "hbu" (known: hub)');
  });

  test('list --channel takes a channel entries still carry when the daemon no longer runs it', async () => {
    const r = rig();
    await r.registry.register(reg({ addrs: ['192.0.2.1'], names: ['www.corp.example'] }));
    const h = createControlHandlers({ registry: r.registry, clock: r.clock, policyNames: () => ({ channels: ['other'], tables: TABLES }) });
    expect(((await h.list!({ channel: 'hub' })) as ListRow[]).map((x) => x.address)).toEqual(['192.0.2.1']);
  });

  test('list --table falls back to the id syntax when the daemon gives no table list', async () => {
    const { h } = await setup(undefined);
    expect(((await h.list!({ table: 'default' })) as ListRow[]).length).toBe(5);
    expect((await rejection(h.list!({ table: 'a b' }))).code).toBe('bad_args');
  });
});

describe('cli list --table', () => {
  test('exits 1 with the known tables and prints no rows when the daemon runs no such table', async () => {
    const { cli } = await import('../cli/fixtures.ts');
    const { ControlReplyError } = await import('../../src/control/client.ts');
    const { h } = await setup();
    const h2 = await cli(['list', '--table', 'nosuch', '--control', '/tmp/x.sock'], {
      control: async (req) => {
        try {
          return await h.list!(req.args ?? {});
        } catch (err) {
          const e = err as DnssealError;
          throw new ControlReplyError(e.code, e.message);
        }
      },
    });
    expect([h2.code, h2.out]).toEqual([1, '']);
    expect(h2.err).toBe('dnsseal: control: list --table: unknown table "nosuch" (known: default, eng, 502)\n');
  });
});
