import { describe, expect, test } from 'bun:test';
import { formatCount, formatDuration, formatList, NAMES_WIDTH, namesCell } from '../../src/control/format.ts';
import type { ListRow } from '../../src/control/handlers.ts';

describe('control/format', () => {
  test.each([
    [0, '0s'],
    [59, '59s'],
    [60, '1m00s'],
    [245, '4m05s'],
    [3600, '1h00m'],
    [7380, '2h03m'],
    [86400 * 3 + 4 * 3600, '3d04h'],
  ])('formatDuration(%d) is %s', (s, want) => {
    expect(formatDuration(s)).toBe(want);
  });

  test('formatList prints aligned columns when there are rows', () => {
    const rows: ListRow[] = [
      { group: 0, table: 'default', address: '192.0.2.10', channel: 'hub', names: ['www.corp.example', 'corp.example'], expiresInS: 299, idleS: 12, static: false },
      { group: 502, table: 'eng', address: '2001:db8::1', channel: 'partner', names: [], expiresInS: 0, idleS: null, static: false },
      { group: 0, address: '203.0.113.9', channel: 'hub', names: [], expiresInS: null, idleS: null, static: true },
    ];
    expect(formatList(rows)).toBe(
      [
        'TABLE    ADDRESS      CHANNEL  EXPIRES-IN  IDLE  NAMES',
        'default  192.0.2.10   hub      4m59s       12s   www.corp.example, corp.example',
        'eng      2001:db8::1  partner  expired     -     -',
        '0        203.0.113.9  hub      static      -     -',
        '',
      ].join('\n'),
    );
  });

  test('formatList marks an entry whose peer channel failed and says why under the table', () => {
    const rows: ListRow[] = [
      { group: 0, address: '192.0.2.3', channel: 'partner', names: ['peer.partner.test'], expiresInS: 60, idleS: null, static: false, blocked: 'no SA: AUTH_FAILED' },
      { group: 0, address: '192.0.2.4', channel: 'partner', names: ['ok.partner.test'], expiresInS: 60, idleS: 1, static: false },
    ];
    expect(formatList(rows)).toBe(
      [
        'TABLE  ADDRESS    CHANNEL   EXPIRES-IN  IDLE  NAMES',
        '0      192.0.2.3  partner!  1m00s       -     peer.partner.test',
        '0      192.0.2.4  partner   1m00s       1s    ok.partner.test',
        '',
        '!: the peer channel failed; traffic to this address is dropped until an answer brings the SA up:',
        '   192.0.2.3: no SA: AUTH_FAILED',
        '',
      ].join('\n'),
    );
  });

  test('formatList marks retired entries and explains the mark under the table', () => {
    const rows: ListRow[] = [
      { group: 0, address: '192.0.2.5', channel: 'hub', names: ['old.corp.example'], expiresInS: 0, idleS: 4000, static: false, retired: true },
      { group: 0, address: '192.0.2.6', channel: 'partner', names: ['live.partner.test'], expiresInS: 60, idleS: null, static: false },
    ];
    expect(formatList(rows)).toBe(
      [
        'TABLE  ADDRESS    CHANNEL  EXPIRES-IN  IDLE   NAMES',
        '0      192.0.2.5  hub~     expired     1h06m  old.corp.example',
        '0      192.0.2.6  partner  1m00s       -      live.partner.test',
        '',
        '~: retired (hold ran out and idle, or flushed): tunnel traffic still goes through the channel, peer traffic is dropped;',
        '   a new answer brings it back, and it is removed once `retire` passes with no packet.',
        '',
      ].join('\n'),
    );
  });

  test('formatList says so when there are no entries', () => {
    expect(formatList([])).toBe('no entries\n');
  });
});

describe('control/format names', () => {
  const many = (n: number) => Array.from({ length: n }, (_, i) => `${String.fromCharCode(97 + (i % 26))}${i}.example`);

  test('namesCell shows the first names and counts the rest when they do not fit', () => {
    const names = ['a.example', 'b.example', ...many(19_998)];
    expect(namesCell(names, 30)).toBe('a.example, b.example … +19,998');
  });

  test('namesCell shows every name when they fit', () => {
    expect(namesCell(['a.example', 'b.example'])).toBe('a.example, b.example');
    expect(namesCell([])).toBe('-');
  });

  test('namesCell shows one name whole even when it alone is wider than the cell', () => {
    const long = `${'x'.repeat(63)}.${'y'.repeat(63)}.example`;
    expect(namesCell([long, 'b.example'])).toBe(`${long} … +1`);
  });

  test('formatList keeps every line short and points at --json when an address has 20,000 names', () => {
    const rows: ListRow[] = [
      { group: 0, table: 'default', address: '192.0.2.1', channel: 'hub', names: many(20_000), expiresInS: 60, idleS: null, static: false },
      { group: 0, table: 'default', address: '192.0.2.2', channel: 'hub', names: ['one.example'], expiresInS: 60, idleS: null, static: false },
    ];
    const lines = formatList(rows).split('\n');
    expect(Math.max(...lines.map((l) => l.length))).toBeLessThanOrEqual(NAMES_WIDTH + 60);
    expect(lines[1]).toMatch(/… \+19,9\d\d$/);
    expect(lines[2]).toEndWith('  one.example');
    expect(lines.at(-2)).toBe('… +N: N more names hold the address; `dnsseal list --json` lists them all.');
  });

  test('formatCount groups thousands when a count is large', () => {
    expect([0, 999, 1000, 19_998, 1_234_567].map(formatCount)).toEqual(['0', '999', '1,000', '19,998', '1,234,567']);
  });
});
