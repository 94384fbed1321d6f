import { describe, expect, test } from 'bun:test';
import { parseArgs } from '../../src/config/flags.ts';
import { loadConfig } from '../../src/config/load.ts';
import { ConfigError } from '../../src/util/errors.ts';
import { deps } from './fixtures.ts';

const FILE = `upstreams:
  default: 9.9.9.9
  corp: 10.0.0.53
channels:
  hub:
    kind: tunnel
    gateway: 192.0.2.1
tables:
  default:
    - match: "*.corp.example"
      channel: hub
min_hold: 30
`;

function load(argv: string[]) {
  const a = parseArgs(['run', '--config', 'c.yaml', ...argv]);
  return loadConfig(a.values, deps({ 'c.yaml': FILE, 'key.b64': 'c2VjcmV0LXNlY3JldC1zZWNyZXQtMTIzNA==\n' }));
}

function argError(argv: string[]): string {
  try {
    const a = parseArgs(argv);
    loadConfig(a.values, deps({ 'c.yaml': FILE }));
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message;
  }
  throw new Error('expected a ConfigError');
}

describe('config/flags', () => {
  test('splits command, positionals and flag values when flags come in either form', () => {
    const a = parseArgs(['--config', 'x.yaml', 'explain', 'www.example.com', '--client=10.0.0.1', '--json']);
    expect(a.command).toBe('explain');
    expect(a.positionals).toEqual(['www.example.com']);
    expect(a.values.get('config')).toEqual(['x.yaml']);
    expect(a.values.get('client')).toEqual(['10.0.0.1']);
    expect(a.values.get('json')).toEqual(['true']);
  });

  test('finds the command after a command flag that takes a value', () => {
    expect(parseArgs(['--client', '10.0.0.1', 'explain', 'a.example'])).toMatchObject({ command: 'explain', positionals: ['a.example'] });
  });

  test('keeps every value of a repeatable flag and the last of a single one', () => {
    const a = parseArgs(['run', '--listen', '127.0.0.1:53', '--listen', '[::1]:53', '--mode', 'host', '--mode', 'gateway']);
    expect(a.values.get('listen')).toEqual(['127.0.0.1:53', '[::1]:53']);
    expect(a.values.get('mode')).toEqual(['gateway']);
  });

  test('turns --help anywhere into the help command for that command', () => {
    expect(parseArgs(['explain', '--bogus', '--help'])).toMatchObject({ command: 'help', positionals: ['explain'] });
    expect(parseArgs([]).command).toBe('help');
  });

  test('lets flags win over the file', () => {
    const c = load([
      '--min-hold', '5', '--listen', '127.0.0.1:5300', '--upstream', '1.1.1.1', '--upstream', 'corp=10.9.9.9:5353',
      '--log-format', 'json', '--datapath', 'none', '--canary', 'pass', '--idle', '10', '--upstream-timeout', '900',
      '--metrics', '127.0.0.1:9153', '--control', '/tmp/x.sock', '--log-level', 'debug',
    ]);
    expect(c.minHoldS).toBe(5);
    expect(c.listen).toEqual(['127.0.0.1:5300']);
    expect(c.upstreams).toEqual([
      { name: 'default', servers: [{ transport: 'dns', address: '1.1.1.1', port: 53 }] },
      { name: 'corp', servers: [{ transport: 'dns', address: '10.9.9.9', port: 5353 }] },
    ]);
    expect([c.logFormat, c.datapath, c.canary, c.idleS, c.upstreamTimeoutMs, c.metrics, c.control, c.logLevel]).toEqual([
      'json', 'none', 'pass', 10, 900, '127.0.0.1:9153', '/tmp/x.sock', 'debug',
    ]);
  });

  test('appends --protect rules to the default table and adds --channel channels after the file ones', () => {
    const c = load(['--channel', 'p=peer,esp=chacha20poly1305', '--channel', 'gw=tunnel:2001:db8::1,identity=CN=hub', '--protect', 'sato.*=p', '--protect', '*.lab.example=gw,upstream=corp']);
    expect(c.channels.map((x) => [x.name, x.id, x.kind, x.identity, x.esp, x.gateway])).toEqual([
      ['hub', 1, 'tunnel', '192.0.2.1', 'aes256gcm16', '192.0.2.1'],
      ['p', 2, 'peer', '%name', 'chacha20poly1305', undefined],
      ['gw', 3, 'tunnel', 'CN=hub', 'aes256gcm16', '2001:db8::1'],
    ]);
    expect(c.tables[0]!.rules.map((r) => [r.condition.pattern, r.channel, r.upstream, r.source])).toEqual([
      ['*.corp.example', 'hub', undefined, 'c.yaml:10'],
      ['sato.*', 'p', undefined, '--protect'],
      ['*.lab.example', 'gw', 'corp', '--protect'],
    ]);
  });

  test('replaces the embedded example rules when policy flags are given without --config', () => {
    const a = parseArgs(['explain', 'x.corp.example', '--upstream', '9.9.9.9', '--channel', 'p=peer', '--protect', '*.partner.test=p']);
    const c = loadConfig(a.values, deps());
    expect(c.channels.map((x) => x.name)).toEqual(['p']);
    expect(c.tables.map((t) => t.rules.map((r) => r.condition.pattern))).toEqual([['*.partner.test']]);
  });

  test.each([
    [['explain', 'x.corp.example', '--protect', '*.corp.example=hub'], '--protect: table "default" rule 0 (*.corp.example): unknown channel "hub" (none defined): "hub" is an example channel'],
    [['explain', 'x.corp.example', '--channel', 'p=peer', '--static', '10.0.0.0/8=partner'], '--static: static 10.0.0.0/8: unknown channel "partner" (defined: p): "partner" is an example channel'],
  ])('says a channel of the embedded example is left out when %p names it without --config', (argv, message) => {
    const err = argError(argv);
    expect(err).toContain(message);
    expect(err).toContain('left out with its rules when rules come from flags without --config');
  });

  test('keeps the plain unknown-channel message when the channel is not one of the examples', () => {
    expect(argError(['explain', 'x.corp.example', '--protect', '*.corp.example=hbu'])).toEndWith('unknown channel "hbu" (none defined)');
  });

  test('turns off with --log-queries=false and --cache-prefetch=false what the file switches on (flags win)', () => {
    const on = 'log_queries: true\ncache_prefetch: true\n';
    const read = (argv: string[]) => loadConfig(parseArgs(['run', '--config', 'on.yaml', ...argv]).values, deps({ 'on.yaml': on }));
    expect([read([]).logQueries, read([]).cachePrefetch]).toEqual([true, true]);
    const off = read(['--log-queries=false', '--cache-prefetch=false']);
    expect([off.logQueries, off.cachePrefetch]).toEqual([false, false]);
    expect(read(['--log-queries=true']).logQueries).toBe(true);
  });

  test.each([
    [['run', '--bogus'], '--bogus: unknown flag for "dnsseal run"'],
    [['run', '-x'], '-x: unknown flag'],
    [['run', '--listen'], '--listen: needs a value: --listen ADDR:PORT'],
    [['run', '--json=1'], '--json: unknown flag for "dnsseal run"'],
    [['explain', 'a', '--json=1'], '--json: is a switch and takes no value'],
    [['run', '--mode', 'router'], '--mode: must be one of host, gateway, intercept, not "router"'],
    [['run', '--min-hold', '1m'], '--min-hold: must be a whole number between 0 and 604800, not "1m"'],
    [['run', '--listen', 'localhost:53'], '--listen: "localhost:53": "localhost" is not an IP address'],
    [['run', '--upstream', '1.2.3.4:99999'], '--upstream: upstream "default": server "1.2.3.4:99999": port "99999" must be 1-65535'],
    [['run', '--channel', 'x=vpn:1.2.3.4'], '--channel: "x=vpn:1.2.3.4": expected NAME=tunnel:GATEWAY'],
    [['run', '--channel', 'x=peer,cipher=3des'], '--channel: unknown option "cipher=3des"'],
    [['run', '--channel', 'x=peer,esp=3des'], '--channel: channel "x": esp "3des" refused'],
    [['run', '--config', 'c.yaml', '--protect', '*.x.example'], '--protect: "*.x.example" is not PATTERN=CHANNEL'],
    [['run', '--config', 'c.yaml', '--protect', '*.x.example=nope'], '--protect: table "default" rule 1 (*.x.example): unknown channel "nope" (defined: hub)'],
    [['run', '--config', 'c.yaml', '--protect', 'x*.example=hub'], '--protect: "x*.example": "*" must be a whole label'],
    [['run', '--config', 'c.yaml', '--client-table', '10.0.0.0/8=9'], '--client-table: client 10.0.0.0/8: unknown table "9"'],
    [['run', '--config', 'c.yaml', '--static', '10.0.0.0/8=nope'], '--static: static 10.0.0.0/8: unknown channel "nope"'],
    [['run', '--config', 'c.yaml', '--mode', 'intercept', '--lan', 'eth1'], '--mode: mode intercept needs address pools'],
    [['run', '--tsig-key', 'k=missing.b64'], '--tsig-key: key "k" from missing.b64: ENOENT'],
    [['run', '--config='], '--config: needs a value: --config FILE (or --config none for built-in defaults)'],
    [['run', '--log-queries=yes'], '--log-queries: is a switch: --log-queries, or --log-queries=false to turn off what the file sets, not "yes"'],
    [['run', '--channel', 'hub=peer', '--channel', 'hub=tunnel:192.0.2.9'], '--channel: channel "hub" is given twice; give each channel once'],
    [['run', '--tsig-key', 'k:hmac-sha256:c2VjcmV0LXNlY3JldC1zZWNyZXQtMTIzNA==', '--tsig-key', 'k:hmac-sha256:c2VjcmV0LXNlY3JldC1zZWNyZXQtMTIzNQ=='], '--tsig-key: key "k" is given twice; give each key once'],
    [['run', '--config', 'c.yaml', '--static', '10.0.0.0/8=hub', '--static', '10.0.0.0/8=hub'], '--static: static 10.0.0.0/8 (table default) is listed twice (also at --static)'],
  ])('rejects %p naming the flag', (argv, message) => {
    expect(argError(argv)).toStartWith(message);
  });

  test('reads a TSIG secret from the file named by --tsig-key', () => {
    const c = load(['--tsig-key', 'ps=key.b64', '--upstream', 'ps=192.0.2.9,tsig-key=ps', '--policy-server', 'ps']);
    expect(c.tsigKeys.map((k) => [k.name, k.algorithm, k.secret.length])).toEqual([['ps', 'hmac-sha256', 25]]);
    expect(c.policyServer).toBe('ps');
    expect(c.upstreams.find((u) => u.name === 'ps')).toEqual({ name: 'ps', servers: [{ transport: 'dns', address: '192.0.2.9', port: 53 }], tsigKey: 'ps' });
  });
});
