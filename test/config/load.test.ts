import { describe, expect, test } from 'bun:test';
import { EMBEDDED_DEFAULT, EMBEDDED_SOURCE, loadConfig, readConfigFile } from '../../src/config/load.ts';
import { ConfigError } from '../../src/util/errors.ts';
import { channelMark } from '../../src/policy/types.ts';
import { deps, flags } from './fixtures.ts';

const GOOD = `mode: gateway
lan: [eth1]
wan: [eth0]
listen:
  - 0.0.0.0:53
upstreams:
  default: 9.9.9.9
  corp: "[2001:db8::53]:5353"
channels:
  hub:
    kind: tunnel
    gateway: 192.0.2.1
  partner:
    kind: peer
    esp: chacha20poly1305-x25519
clients:
  - cidr: 10.1.0.0/16
    table: 1
tables:
  default:
    - match: "*.corp.example"
      channel: hub
      upstream: corp
  1:
    - match: "sato.*"
      channel: partner
static:
  - cidr: 198.51.100.0/24
    channel: hub
min_hold: 30
upstream_timeout: 1500
`;

function loadErr(text: string, f = new Map<string, string[]>(), resolv?: string): string {
  try {
    loadConfig(new Map([...f, ['config', ['c.yaml']]]), deps({ 'c.yaml': text }, resolv));
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message;
  }
  throw new Error('expected a ConfigError');
}

describe('config/load', () => {
  test('builds the Config when the file is valid', () => {
    const c = loadConfig(flags(['config', 'c.yaml']), deps({ 'c.yaml': GOOD }));
    expect(c.source).toBe('c.yaml');
    expect(c.mode).toBe('gateway');
    expect(c.listen).toEqual(['0.0.0.0:53']);
    expect(c.upstreams).toEqual([
      { name: 'default', servers: [{ transport: 'dns', address: '9.9.9.9', port: 53 }] },
      { name: 'corp', servers: [{ transport: 'dns', address: '2001:db8::53', port: 5353 }] },
    ]);
    expect(c.channels.map((x) => [x.name, x.id, x.mark])).toEqual([
      ['hub', 1, channelMark(1)],
      ['partner', 2, channelMark(2)],
    ]);
    expect(c.channels[0]!.identity).toBe('192.0.2.1');
    expect(c.tables.map((t) => [t.id, t.group, t.rules.length])).toEqual([
      ['default', 0, 1],
      ['1', 1, 1],
    ]);
    expect(c.tables[0]!.rules[0]).toMatchObject({ channel: 'hub', upstream: 'corp', index: 0, source: 'c.yaml:21' });
    expect(c.clients).toEqual([{ cidr: '10.1.0.0/16', table: '1' }]);
    expect(c.statics).toEqual([{ cidr: '198.51.100.0/24', channel: 'hub', table: 'default' }]);
    expect([c.minHoldS, c.idleS, c.upstreamTimeoutMs, c.canary, c.datapath]).toEqual([30, 300, 1500, 'nxdomain', 'auto']);
  });

  test('loads the embedded default when no --config is given', () => {
    const c = loadConfig(new Map(), deps());
    expect(c.source).toBe(EMBEDDED_SOURCE);
    expect(c.listen).toEqual(['127.0.0.53:53']);
    expect(c.upstreams).toEqual([{ name: 'default', servers: [{ transport: 'dns', address: '192.0.2.53', port: 53 }] }]);
    expect(c.tables[0]!.rules.map((r) => r.condition.pattern)).toContain('*.corp.example');
  });

  test('skips 127.0.0.53 in resolv.conf when picking the default upstream', () => {
    const c = loadConfig(new Map(), deps({}, 'nameserver 127.0.0.53\nnameserver 10.0.0.1\n'));
    expect(c.upstreams[0]).toEqual({ name: 'default', servers: [{ transport: 'dns', address: '10.0.0.1', port: 53 }] });
  });

  test('explains the loop when resolv.conf only names dnsseal itself', () => {
    expect(() => loadConfig(new Map(), deps({}, 'nameserver 127.0.0.53\n'))).toThrow(/--upstream: no upstream configured.*skipped 127\.0\.0\.53:53.*loop/);
  });

  test.each([
    ['mode: router\n', 'c.yaml:1: must be one of host, gateway, intercept, not "router"'],
    ['listen:\n  - 127.0.0.1\n', 'c.yaml:2: listen: "127.0.0.1" needs a port: ADDR:PORT'],
    ['colour: blue\n', 'c.yaml:1: unknown key "colour"'],
    ['serve:\n  annotate: all\n', 'c.yaml:1: unknown key "serve": it is the section of a policy server\'s config, which "dnsseal policy-server --config FILE" reads'],
    ['mode: host\nmin_hodl: 5\n', 'c.yaml:2: unknown key "min_hodl"; did you mean "min_hold"?'],
    ['channels:\n  hub:\n    kind: tunnel\n    gatway: 192.0.2.1\n', 'c.yaml:4: unknown key "gatway" in channels.hub; did you mean "gateway"?'],
    ['channels:\n  hub:\n    kind: tunnel\n', 'c.yaml:2: channel "hub": a tunnel channel needs "gateway'],
    ['channels:\n  p:\n    kind: peer\n    esp: aes128-sha256\n', 'c.yaml:4: channel "p": esp "aes128-sha256" refused: "aes128" is a CBC-mode cipher'],
    ['tables:\n  default:\n    - match: "*.x.example"\n      channel: nope\n', 'c.yaml:4: table "default" rule 0 (*.x.example): unknown channel "nope" (none defined)'],
    ['tables:\n  default:\n    - match: "a.*.b"\n      channel: x\n', 'c.yaml:3: table "default" rule 0: "a.*.b": "*" must be a whole label'],
    ['tables:\n  default:\n    - match: *.corp.example\n      channel: x\n', 'c.yaml:3: a value starting with "*" is YAML alias syntax; quote patterns'],
    ['a: [1, 2\nb: 3\n', 'c.yaml:1: YAML syntax error'],
    ['mode: host\nmode: gateway\n', 'c.yaml:2: duplicate key "mode"'],
    ['min_hold: -1\n', 'c.yaml:1: must be a whole number of seconds between 0 and 604800, not -1'],
    ['min_hold: 1e400\n', 'c.yaml:1: must be a whole number of seconds between 0 and 604800, not Infinity'],
    ['cache_size: .nan\n', 'c.yaml:1: must be a whole number of entries between 0 and 10000000, not NaN'],
    ['clients:\n  - cidr: 10.0.0.1/8\n    table: default\nmode: gateway\nlan: [lan0]\nlisten: ["10.1.1.1:53"]\n', 'c.yaml:2: client cidr: "10.0.0.1/8" has host bits set; did you mean 10.0.0.0/8?'],
    ['clients:\n  - cidr: 10.0.0.0/8\n    table: 7\nmode: gateway\nlan: [lan0]\nlisten: ["10.1.1.1:53"]\n', 'c.yaml:3: client 10.0.0.0/8: unknown table "7"'],
    ['mode: gateway\n', 'c.yaml:1: mode gateway needs the client-side interface'],
    ['upstreams:\n  default: dns.example\n', 'c.yaml:2: upstream "default": server "dns.example": "dns.example" is not an IP address (host names are not resolved here) — write the address, and the name after #'],
    ['policy_server: ps\nupstreams:\n  ps: 192.0.2.9\n', 'c.yaml:1: policy_server "ps" has no tsig_key'],
  ])('reports file:line for %p', (text, message) => {
    expect(loadErr(text)).toStartWith(message);
  });

  test('refuses the literal 3DES row of figure 6 naming the channel, the rule and the fix', () => {
    const text = `channels:
  nec-3des:
    kind: tunnel
    gateway: 192.0.2.10
    esp: 3des
tables:
  1:
    - match: kojima.jinji.nec.com
      channel: nec-3des
`;
    const msg = loadErr(text);
    expect(msg).toContain('c.yaml:5:');
    expect(msg).toContain('channel "nec-3des"');
    expect(msg).toContain('3DES');
    expect(msg).toContain('not AEAD');
    expect(msg).toContain('use an AEAD proposal such as aes256gcm16');
    expect(msg).toContain('table 1 rule 0 "kojima.jinji.nec.com"');
  });

  test('says it cannot read the file when --config names a missing file', () => {
    expect(() => loadConfig(flags(['config', '/nope.yaml']), deps())).toThrow(/^--config: cannot read \/nope.yaml/);
  });
});

describe('config/load channel order', () => {
  test('numbers channels in file order when a channel name looks like a number', () => {
    const text = 'channels:\n  zeta:\n    kind: peer\n  "7":\n    kind: peer\n  alpha:\n    kind: peer\n';
    const c = loadConfig(flags(['config', 'c.yaml']), deps({ 'c.yaml': text }));
    expect(c.channels.map((x) => `${x.name}=${x.id}`)).toEqual(['zeta=1', '7=2', 'alpha=3']);
  });
});

describe('config/load several problems', () => {
  test('reports every independent problem in file order when a file has several', () => {
    const text = 'mode: router\ncolour: blue\nchannels:\n  a:\n    kind: peer\n    esp: 3des\n  b:\n    kind: vpn\ntables:\n  default:\n    - match: "x*.y"\n      channel: a\n    - match: "*.ok.example"\n      chanel: a\n';
    let err: unknown;
    try {
      loadConfig(flags(['config', 'c.yaml']), deps({ 'c.yaml': text }));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const lines = (err as Error).message.split('\n');
    expect(lines.map((l) => l.split(':').slice(0, 2).join(':'))).toEqual(['c.yaml:1', 'c.yaml:2', 'c.yaml:11', 'c.yaml:13', 'c.yaml:14']);
  });
});

describe('config/load cross-reference problems', () => {
  test('reports a refused channel once and every other broken reference when several are wrong', () => {
    const text = `channels:
  old:
    kind: peer
    esp: 3des
tables:
  default:
    - match: "*.a.example"
      channel: old
    - match: "*.b.example"
      channel: missing
clients:
  - cidr: 10.0.0.0/8
    table: nowhere
mode: gateway
lan: [lan0]
listen: ["10.1.1.1:53"]
`;
    let err: unknown;
    try {
      loadConfig(flags(['config', 'c.yaml']), deps({ 'c.yaml': text }));
    } catch (e) {
      err = e;
    }
    const lines = (err as Error).message.split('\n');
    expect(lines.map((l) => l.split(': ')[0])).toEqual(['c.yaml:4', 'c.yaml:10', 'c.yaml:13']);
    expect(lines[0]).toContain('3DES');
    expect(lines[1]).toContain('unknown channel "missing"');
    expect(lines[2]).toContain('unknown table "nowhere"');
  });
});

describe('config/load readConfigFile', () => {
  test('refuses a device instead of reading it forever when a file setting names one', () => {
    expect(() => readConfigFile('/dev/zero')).toThrow('a device, not a file');
  });

  test('reads /dev/null as an empty file', () => {
    expect(readConfigFile('/dev/null')).toBe('');
  });
});

describe('config/load embedded default', () => {
  test('takes every usable nameserver of resolv.conf, in order, as its comment says', () => {
    const c = loadConfig(new Map(), deps({}, 'nameserver 192.0.2.53\nnameserver 127.0.0.53\nnameserver 198.51.100.9\n'));
    expect(c.upstreams.find((u) => u.name === 'default')!.servers.map((s) => s.address)).toEqual(['192.0.2.53', '198.51.100.9']);
    expect(EMBEDDED_DEFAULT).toContain('none given: every usable nameserver of /etc/resolv.conf, in order');
  });
});
