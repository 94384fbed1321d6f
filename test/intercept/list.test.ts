/**
 * `dnsseal list` in intercept mode (#6): the control `list` handler joins the pool's mappings to
 * the registry's entries (intercept ↔ real ↔ names ↔ group), and the human format shows the
 * intercept column only when there is one.
 */
import { describe, expect, test } from 'bun:test';
import { formatList } from '../../src/control/format.ts';
import { createControlHandlers, type InterceptListRow, type ListRow } from '../../src/control/handlers.ts';
import { reg, rig } from '../registry/helpers.ts';

async function setup(maps: InterceptListRow[]) {
  const r = rig();
  await r.registry.register(reg({ addrs: ['198.51.100.1', '198.51.100.2'], names: ['multi.corp.test'], ttlS: 120 }));
  await r.registry.register(reg({ group: 502, addrs: ['2001:db8::10'], names: ['v6.corp.test'], ttlS: 120 }));
  const h = createControlHandlers({ registry: r.registry, clock: r.clock, intercepts: () => maps });
  return { ...r, h };
}

const mapping = (group: number, intercept: string, real: string, names: string[], expiresMs = 60_000): InterceptListRow => ({ group, intercept, real, names, expiresMs });

describe('control/list in intercept mode', () => {
  test('names each entry its intercept address when the pool maps it', async () => {
    const { h } = await setup([
      mapping(0, '100.64.0.0', '198.51.100.1', ['multi.corp.test']),
      mapping(0, '100.64.0.1', '198.51.100.2', ['multi.corp.test']),
      mapping(502, 'fd7a:5ea1::', '2001:DB8::10', ['v6.corp.test']),
    ]);
    const rows = (await h.list!({})) as ListRow[];
    expect(rows.map((r) => [r.group, r.intercept, r.address, r.names])).toEqual([
      [0, '100.64.0.0', '198.51.100.1', ['multi.corp.test']],
      [0, '100.64.0.1', '198.51.100.2', ['multi.corp.test']],
      [502, 'fd7a:5ea1::', '2001:db8::10', ['v6.corp.test']],
    ]);
  });

  test('lists a mapping without a registry entry under channel "-" when its entry is gone', async () => {
    const { h } = await setup([mapping(0, '100.64.0.3', '198.51.100.9', ['(adopted)'])]);
    const rows = (await h.list!({})) as ListRow[];
    expect(rows.find((r) => r.address === '198.51.100.9')).toMatchObject({ group: 0, intercept: '100.64.0.3', channel: '-', names: ['(adopted)'] });
    // filters apply to such rows too
    expect(((await h.list!({ channel: 'hub' })) as ListRow[]).map((r) => r.address)).toEqual(['198.51.100.1', '198.51.100.2', '2001:db8::10']);
  });

  test('prints an INTERCEPT column before the real address when a row has one', () => {
    const rows: ListRow[] = [
      { group: 0, intercept: '100.64.0.0', address: '198.51.100.1', channel: 'hub', names: ['multi.corp.test'], expiresInS: 59, idleS: null, static: false },
      { group: 0, address: '203.0.113.9', channel: 'hub', names: [], expiresInS: null, idleS: null, static: true },
    ];
    expect(formatList(rows)).toBe(
      [
        'TABLE  INTERCEPT   ADDRESS       CHANNEL  EXPIRES-IN  IDLE  NAMES',
        '0      100.64.0.0  198.51.100.1  hub      59s         -     multi.corp.test',
        '0      -           203.0.113.9   hub      static      -     -',
        '',
      ].join('\n'),
    );
  });

  test('prints no INTERCEPT column when no row has one', () => {
    const rows: ListRow[] = [{ group: 0, address: '198.51.100.1', channel: 'hub', names: ['a.corp.test'], expiresInS: 59, idleS: null, static: false }];
    expect(formatList(rows).split('\n')[0]).toBe('TABLE  ADDRESS       CHANNEL  EXPIRES-IN  IDLE  NAMES');
  });
});
