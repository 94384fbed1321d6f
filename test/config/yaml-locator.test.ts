import { describe, expect, test } from 'bun:test';
import { locateYaml } from '../../src/config/yaml-locator.ts';

const TEXT = `# comment
mode: gateway
listen:
  - 0.0.0.0:53
  - "[::]:53"   # v6
channels:
  hub:
    kind: tunnel
    gateway: 192.0.2.1
  partner: {kind: peer, esp: chacha20poly1305}
tables:
  default:
  - match: "*.corp.example"
    channel: hub
  - match: 'sato.*'
    channel: partner
  "502":
    - {match: "*.x", channel: hub}
notes: |
  mode: not a key
  - not an item
clients: [
  {cidr: 10.0.0.0/8, table: 502},
]
static:
- cidr: 198.51.100.0/24
  channel: hub
min_hold: 60
`;

describe('config/yaml-locator', () => {
  const loc = locateYaml(TEXT);
  test.each([
    [['mode'], 2],
    [['listen', 0], 4],
    [['listen', 1], 5],
    [['channels', 'hub', 'gateway'], 9],
    [['channels', 'partner'], 10],
    [['channels', 'partner', 'esp'], 10],
    [['tables', 'default', 0], 13],
    [['tables', 'default', 0, 'channel'], 14],
    [['tables', 'default', 1, 'match'], 15],
    [['tables', '502', 0, 'match'], 18],
    [['notes'], 19],
    [['clients', 0, 'cidr'], 22],
    [['static', 0, 'channel'], 27],
    [['min_hold'], 28],
    [['nothing', 'here'], 1],
  ])('puts %p on line %p', (path, line) => {
    expect(loc.lineOf(path)).toBe(line);
  });

  test('reports a duplicate key when a mapping repeats it', () => {
    const l = locateYaml('a: 1\nb:\n  c: 1\n  c: 2\na: 3\n');
    expect(l.duplicates).toEqual([
      { path: ['b', 'c'], line: 4 },
      { path: ['a'], line: 5 },
    ]);
  });

  test('flags an unquoted star value when a pattern was not quoted', () => {
    expect(locateYaml('tables:\n  default:\n  - match: *.corp.example\n').aliasLines).toEqual([3]);
  });

  test('does not report items of different sequences as duplicates', () => {
    expect(locateYaml('a:\n- x: 1\n- x: 2\nb:\n  - x: 1\n').duplicates).toEqual([]);
  });
});

describe('config/yaml-locator edge cases', () => {
  test('counts lines the same when the file has CRLF line ends', () => {
    const l = locateYaml('mode: host\r\nchannels:\r\n  hub:\r\n    kind: tunnel\r\n');
    expect(l.lineOf(['channels', 'hub', 'kind'])).toBe(4);
  });

  test('places keys after a multi-line flow collection on their own lines', () => {
    const l = locateYaml('listen: [\n  "127.0.0.1:53",\n  "[::1]:53",\n]\nmode: host\n');
    expect([l.lineOf(['listen', 1]), l.lineOf(['mode'])]).toEqual([1, 5]);
  });

  test('keeps anchors and aliases from confusing the walk', () => {
    const l = locateYaml('channels:\n  hub: &hub\n    kind: tunnel\n  hub2: *hub\nmode: host\n');
    expect([l.lineOf(['channels', 'hub2']), l.lineOf(['mode']), l.aliasLines]).toEqual([4, 5, [4]]);
  });

  test('reads quoted keys and keys holding colons', () => {
    const l = locateYaml('upstreams:\n  "a: b": 1.1.1.1\n  \'c\': 2.2.2.2\n  d:e: 3.3.3.3\n');
    expect([l.lineOf(['upstreams', 'a: b']), l.lineOf(['upstreams', 'c']), l.lineOf(['upstreams', 'd:e'])]).toEqual([2, 3, 4]);
  });
});
