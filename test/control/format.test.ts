import { describe, expect, test } from 'bun:test';
import { formatDuration, formatList } from '../../src/control/format.ts';
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
      { group: 0, address: '192.0.2.10', channel: 'hub', names: ['www.corp.example', 'corp.example'], expiresInS: 299, idleS: 12, static: false },
      { group: 502, address: '2001:db8::1', channel: 'partner', names: [], expiresInS: 0, idleS: null, static: false },
      { group: 0, address: '203.0.113.9', channel: 'hub', names: [], expiresInS: null, idleS: null, static: true },
    ];
    expect(formatList(rows)).toBe(
      [
        'GROUP  ADDRESS      CHANNEL  NAMES                          EXPIRES-IN  IDLE',
        '0      192.0.2.10   hub      www.corp.example,corp.example  4m59s       12s',
        '502    2001:db8::1  partner  -                              expired     -',
        '0      203.0.113.9  hub      -                              static      -',
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
        'GROUP  ADDRESS    CHANNEL   NAMES              EXPIRES-IN  IDLE',
        '0      192.0.2.3  partner!  peer.partner.test  1m00s       -',
        '0      192.0.2.4  partner   ok.partner.test    1m00s       1s',
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
        'GROUP  ADDRESS    CHANNEL  NAMES              EXPIRES-IN  IDLE',
        '0      192.0.2.5  hub~     old.corp.example   expired     1h06m',
        '0      192.0.2.6  partner  live.partner.test  1m00s       -',
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
