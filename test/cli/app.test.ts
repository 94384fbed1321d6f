import { describe, expect, test } from 'bun:test';
import { DnssealError } from '../../src/util/errors.ts';
import { ControlReplyError } from '../../src/control/client.ts';
import { cli } from './fixtures.ts';

const CONF = `upstreams:
  default: 192.0.2.53
  corp: 10.0.0.53
channels:
  hub:
    kind: tunnel
    gateway: 192.0.2.1
tables:
  default:
    - match: "*.corp.example"
      channel: hub
      upstream: corp
control: /tmp/from-config.sock
`;
const files = { 'c.yaml': CONF };

describe('cli/app', () => {
  test('prints the documented JSON shape when explain --json matches', async () => {
    const h = await cli(['explain', 'Git.Corp.Example.', '--config', 'c.yaml', '--json', '--client', '10.1.1.1'], { files });
    expect(h.code).toBe(0);
    const e = JSON.parse(h.out);
    expect(Object.keys(e).slice(0, 6)).toEqual(['name', 'client', 'table', 'rule', 'channel', 'upstream']);
    expect(e).toMatchObject({
      name: 'git.corp.example',
      client: '10.1.1.1',
      table: 'default',
      rule: { pattern: '*.corp.example', index: 0 },
      channel: { name: 'hub', kind: 'tunnel', gateway: '192.0.2.1', esp: 'aes256gcm16', id: 1 },
      upstream: 'corp',
    });
  });

  test('prints null rule and channel when explain finds no rule', async () => {
    const h = await cli(['explain', 'www.example.org', '--config', 'c.yaml', '--json'], { files });
    expect(JSON.parse(h.out)).toEqual({ name: 'www.example.org', client: null, table: 'default', rule: null, channel: null, upstream: 'default' });
  });

  test('shows table, rule, channel and upstream when explain prints for humans', async () => {
    const h = await cli(['explain', 'a.corp.example', '--config', 'c.yaml'], { files });
    expect(h.out).toContain('table:    default');
    expect(h.out).toContain('rule:     #0 *.corp.example (suffix) from c.yaml:10');
    expect(h.out).toContain('channel:  hub: tunnel via 192.0.2.1');
    expect(h.out).toContain('upstream: corp (10.0.0.53:53)');
  });

  test('matches the apex with the suffix rule when explain is asked about it', async () => {
    const h = await cli(['explain', 'corp.example', '--config', 'c.yaml'], { files });
    expect(h.out).toContain('rule:     #0 *.corp.example (suffix)');
  });

  test('hints at the apex when explain finds no match for a subdomain rule\'s apex', async () => {
    const h = await cli(['explain', 'corp.example', '--upstream', '9.9.9.9', '--channel', 'hub=tunnel:192.0.2.1', '--protect', '**.corp.example=hub']);
    expect(h.out).toContain('rule:     none');
    expect(h.out).toContain('hint:     "**.corp.example" (rule #0) covers names below corp.example, not corp.example itself; write "*.corp.example" to cover both');
  });

  test('tries a rule set given only as flags when explain has no file', async () => {
    const h = await cli(['explain', 'www.partner.test', '--upstream', '9.9.9.9', '--channel', 'p=peer,esp=chacha20poly1305', '--protect', '*.partner.test=p', '--json']);
    expect(JSON.parse(h.out).channel).toMatchObject({ name: 'p', kind: 'peer', identity: '%name', peerIdentity: 'www.partner.test' });
  });

  test.each([
    ['p=peer', 'negotiate: before-answer: the answer waits up to 2000 ms for the SA, else SERVFAIL and the address is blocked'],
    ['p=peer,negotiate_timeout=5000', 'negotiate: before-answer: the answer waits up to 5000 ms for the SA'],
    ['p=peer,negotiate=on-traffic', 'negotiate: on-traffic: the answer goes out at once'],
  ])('explain says how a peer channel %s negotiates', async (spec, want) => {
    const h = await cli(['explain', 'www.partner.test', '--upstream', '9.9.9.9', '--channel', spec, '--protect', '*.partner.test=p']);
    expect(h.out).toContain(want);
  });

  test('explain prints no negotiate line for a tunnel channel', async () => {
    const h = await cli(['explain', 'a.corp.example', '--config', 'c.yaml'], { files });
    expect(h.out).not.toContain('negotiate:');
  });

  test('prints OK with a summary when check passes', async () => {
    const h = await cli(['check', '--config', 'c.yaml'], { files });
    expect([h.code, h.err]).toEqual([0, '']);
    expect(h.out).toStartWith('OK c.yaml: mode host');
    expect(h.out).toContain('1 table with 1 rule');
  });

  test('prints file:line and exits 1 when check finds an error', async () => {
    const h = await cli(['check', '--config', 'bad.yaml'], { files: { 'bad.yaml': 'mode: host\nlisten: [1.2.3.4]\n' } });
    expect(h.code).toBe(1);
    expect(h.err).toBe('dnsseal: bad.yaml:2: listen: "1.2.3.4" needs a port: ADDR:PORT\n');
  });

  test('sends filters to the daemon and prints the rows when list asks it', async () => {
    const row = { group: 0, address: '192.0.2.10', channel: 'hub', names: ['a.corp.example'], expiresInS: 42, idleS: null, static: false };
    const h = await cli(['list', '--control', '/tmp/x.sock', '--channel', 'hub', '--table', '7'], { control: () => [row] });
    expect(h.requests).toEqual([{ path: '/tmp/x.sock', req: { cmd: 'list', args: { channel: 'hub', table: '7' } } }]);
    expect(h.out).toContain('192.0.2.10');
    const j = await cli(['list', '--json', '--control', '/tmp/x.sock'], { control: () => [row] });
    expect(JSON.parse(j.out)).toEqual([row]);
  });

  test.each([
    [['--name', 'a.*.b'], 'dnsseal: --name: "a.*.b": "*" must be a whole label'],
    [['--name', 'bad..example'], 'dnsseal: --name: "bad..example": "bad..example" has an empty label'],
    [['--address', 'banana'], 'dnsseal: --address: "banana": "banana" is not an IPv4 or IPv6 address (an IP address or a CIDR)'],
    [['--address', '10.0.0.0/33'], 'dnsseal: --address: "10.0.0.0/33": prefix length must be 0..32 (an IP address or a CIDR)'],
  ])('refuses list %p with exit 1 before asking the daemon', async (flags, message) => {
    const h = await cli(['list', '--control', '/tmp/x.sock', ...flags], { control: () => [] });
    expect(h.code).toBe(1);
    expect(h.requests).toEqual([]);
    expect(h.err).toStartWith(message);
  });

  test('sends a list --name pattern written as in rules to the daemon', async () => {
    const h = await cli(['list', '--control', '/tmp/x.sock', '--name', 'sato.*'], { control: () => [] });
    expect(h.code).toBe(0);
    expect(h.requests[0]!.req).toEqual({ cmd: 'list', args: { name: 'sato.*' } });
  });

  test('uses the control path from --config when --control is absent', async () => {
    const h = await cli(['status', '--config', 'c.yaml'], { files, control: () => ({ mode: 'host', registry: { entries: 0 } }) });
    expect(h.requests[0]!.path).toBe('/tmp/from-config.sock');
    expect(h.out).toBe('mode: host\nregistry:\n  entries: 0\n');
  });

  test('reaches the daemon through the control path of a --config file that has an error elsewhere (an edit in progress)', async () => {
    const edited = { 'c.yaml': CONF.replace('channel: hub', 'channel: hbu') };
    const h = await cli(['status', '--config', 'c.yaml'], { files: edited, control: () => ({ mode: 'host' }) });
    expect(h.code).toBe(0);
    expect(h.requests.map((r) => r.path)).toEqual(['/tmp/from-config.sock']);
    expect(h.err).toBe('dnsseal: warning: c.yaml has 1 error ("dnsseal check --config c.yaml" lists them); using its control setting as given\n');
    const l = await cli(['list', '--config', 'c.yaml', '--json'], { files: edited, control: () => [] });
    expect([l.code, l.out]).toEqual([0, '[]\n']);
  });

  test.each([
    ['an error in its control setting', CONF.replace('control: /tmp/from-config.sock', 'control: ""')],
    ['a YAML syntax error', 'control: [\n'],
  ])('refuses a --config file with %s for status, asking no daemon', async (_label, text) => {
    const h = await cli(['status', '--config', 'c.yaml'], { files: { 'c.yaml': text }, control: () => ({}) });
    expect(h.code).toBe(1);
    expect(h.requests).toEqual([]);
  });

  test.each(['flush', 'reload', 'down'])('refuses %s (a command that acts) with a --config that has an error anywhere, doing nothing', async (c) => {
    const h = await cli([c, '--config', 'c.yaml'], { files: { 'c.yaml': CONF.replace('channel: hub', 'channel: hbu') }, control: () => ({}), teardown: [] });
    expect(h.code).toBe(1);
    expect([h.requests, h.teardowns]).toEqual([[], 0]);
    expect(h.err).toContain('unknown channel "hbu"');
  });

  test.each([
    [['version', '--json'], 'dnsseal: --json: unknown flag for "dnsseal version"'],
    [['run', '--json'], 'dnsseal: --json: unknown flag for "dnsseal run"'],
    [['--config', 'c.yaml'], 'dnsseal: no command before the flags (--config …)'],
  ])('refuses %p with one plain-text line, not JSON and not "dnsseal: dnsseal:"', async (argv, message) => {
    const h = await cli(argv, { files });
    expect(h.code).toBe(1);
    expect(h.err).toStartWith(message);
    expect(h.err).not.toContain('dnsseal: dnsseal:');
    expect(h.err.split('\n').length).toBe(2);
  });

  test.each(['relative/dnsseal', '/opt/my dnsseal'])('refuses install-unit --binary %p as a usage error (exit 1), writing nothing', async (binary) => {
    const h = await cli(['install-unit', '--systemd', '--print', '--binary', binary]);
    expect([h.code, h.out]).toEqual([1, '']);
    expect(h.err).toContain('must be absolute, without spaces');
  });

  test('says once that the control socket is root-only when permission is denied', async () => {
    // what the real client (src/control/client.ts) says for EACCES on the daemon's 0600 socket
    const h = await cli(['status', '--control', '/tmp/x.sock'], {
      control: () => {
        throw new DnssealError('control', 'permission_denied', 'permission denied on /tmp/x.sock (the control socket is root-only; run as root)');
      },
    });
    expect(h.code).toBe(3);
    expect(h.err).toBe('dnsseal: control: permission denied on /tmp/x.sock (the control socket is root-only; run as root)\n');
  });

  test('exits 3 and says so when the daemon is not running', async () => {
    const h = await cli(['status', '--control', '/tmp/none.sock']);
    expect(h.code).toBe(3);
    expect(h.err).toContain('not running');
  });

  test('falls back to teardown when down finds no daemon', async () => {
    const h = await cli(['down', '--control', '/tmp/none.sock'], { teardown: ['unpinned /sys/fs/bpf/dnsseal/dest'] });
    expect(h.code).toBe(0);
    expect(h.out).toContain('unpinned /sys/fs/bpf/dnsseal/dest');
  });

  test('asks the daemon, waits for it to stop, then removes what is left when down finds it running', async () => {
    let running = true;
    const h = await cli(['down', '--json', '--control', '/tmp/x.sock'], {
      control: (req) => {
        if (!running) throw new DnssealError('control', 'not_running', 'dnsseal is not running');
        if (req.cmd === 'down') running = false;
        return { stopping: true };
      },
      teardown: ['unpinned /sys/fs/bpf/dnsseal/leftover'],
    });
    expect(JSON.parse(h.out)).toEqual({ via: 'daemon', removed: ['unpinned /sys/fs/bpf/dnsseal/leftover'] });
    expect(h.requests.map((r) => r.req.cmd)).toEqual(['down', 'status']);
  });

  test('exits 2 when the daemon replies with an error', async () => {
    const h = await cli(['reload', '--control', '/tmp/x.sock'], {
      control: () => {
        throw new DnssealError('control', 'not_available', 'reload is not available in this daemon');
      },
    });
    expect([h.code, h.err]).toEqual([2, 'dnsseal: control: reload is not available in this daemon\n']);
  });

  test('sends every flush filter to the daemon when several are given (they combine)', async () => {
    const h = await cli(['flush', '--channel', 'partner', '--table', 'engineering', '--name', '*.partner.example', '--address', '192.0.2.0/24', '--control', '/tmp/x.sock'], {
      control: () => ({ released: 2, retired: 1 }),
    });
    expect(h.requests).toEqual([
      { path: '/tmp/x.sock', req: { cmd: 'flush', args: { channel: 'partner', table: 'engineering', name: '*.partner.example', address: '192.0.2.0/24' } } },
    ]);
    expect([h.code, h.out]).toEqual([0, 'flushed: 1 entry retired, 2 name(s) released\n']);
  });

  test('flush --channel sends the channel filter, not a flush of everything (issue 11 item 12)', async () => {
    const h = await cli(['flush', '--channel', 'partner', '--control', '/tmp/x.sock'], { control: () => ({ released: 0, retired: 0 }) });
    expect(h.requests.map((r) => r.req)).toEqual([{ cmd: 'flush', args: { channel: 'partner' } }]);
  });

  test.each([
    [['--name', 'a.*.b'], '--name: "a.*.b": "*" must be a whole label'],
    [['--address', 'www.example'], '--address: "www.example": "www.example" is not an IPv4 or IPv6 address'],
    [['--address', '10.0.0.1/8'], '--address: "10.0.0.1/8" has host bits set'],
  ])('refuses a malformed flush filter %p before asking the daemon', async (argv, msg) => {
    const h = await cli(['flush', ...argv, '--control', '/tmp/x.sock'], { control: () => ({}) });
    expect([h.code, h.requests.length]).toEqual([1, 0]);
    expect(h.err).toStartWith(`dnsseal: ${msg}`);
  });

  test('sends flush --cache with its name pattern and prints how many answers went', async () => {
    const h = await cli(['flush', '--cache', '--name', '*.corp.example', '--control', '/tmp/x.sock'], { control: () => ({ cacheRemoved: 3 }) });
    expect(h.requests.map((r) => r.req)).toEqual([{ cmd: 'flush', args: { cache: true, name: '*.corp.example' } }]);
    expect([h.code, h.out]).toEqual([0, 'flushed: 3 cached answers removed\n']);
  });

  test.each([
    [['--channel', 'hub'], '--cache: flush --cache: takes --name only, not --channel'],
    [['--name', 'a.*.b'], '--cache: flush --cache --name: "a.*.b": "*" must be a whole label'],
  ])('refuses flush --cache with %p before asking the daemon', async (argv, msg) => {
    const h = await cli(['flush', '--cache', ...argv, '--control', '/tmp/x.sock'], { control: () => ({}) });
    expect([h.code, h.requests.length]).toEqual([1, 0]);
    expect(h.err).toStartWith(`dnsseal: ${msg}`);
  });

  test('exits 1 and says why when the daemon refuses an unknown flush channel', async () => {
    const h = await cli(['flush', '--channel', 'partnr', '--control', '/tmp/x.sock'], {
      control: () => {
        throw new ControlReplyError('bad_args', 'control: flush --channel: unknown channel "partnr" (known: hub, partner); nothing was flushed');
      },
    });
    expect([h.code, h.err]).toEqual([1, 'dnsseal: control: flush --channel: unknown channel "partnr" (known: hub, partner); nothing was flushed\n']);
  });

  test('exits 1 when the daemon refuses a reload of an invalid file', async () => {
    const h = await cli(['reload', '--control', '/tmp/x.sock'], {
      control: () => {
        throw new ControlReplyError('reload_invalid', 'daemon: reload refused, the running policy is unchanged: c.yaml:3: unknown key "mdoe"');
      },
    });
    expect(h.code).toBe(1);
    expect(h.err).toContain('reload refused');
  });

  test.each([
    [0, 0],
    [1, 2],
  ])('maps a daemon result %p to exit %p when run returns', async (daemonCode, exit) => {
    const h = await cli(['run', '--config', 'c.yaml'], { files, daemonCode });
    expect([h.code, h.daemonRuns]).toEqual([exit, 1]);
  });

  test('does not start the daemon when run has a config error', async () => {
    const h = await cli(['run', '--config', 'c.yaml', '--protect', '*.x=nope'], { files });
    expect([h.code, h.daemonRuns]).toEqual([1, 0]);
  });

  test('exits 1 before serving when policy-server has no --config', async () => {
    const h = await cli(['policy-server']);
    expect([h.code, h.err]).toEqual([1, 'dnsseal: --config: policy-server needs --config FILE (the rule tables and the serve: section live there)\n']);
  });

  test('documents every flag with its default and the exit codes in help', async () => {
    const h = await cli(['--help']);
    for (const s of ['--listen ADDR:PORT', '[default: 127.0.0.53:53]', '--upstream', '--protect', '--channel', '--mode', '--datapath', '--lan', '--wan', '--control', '--log-level', '--log-format', '--metrics', '--min-hold', '--idle', '--upstream-timeout', '--canary']) {
      expect(h.out).toContain(s);
    }
    for (const s of ['taro.nec.co.jp', '*.myfriends.com', 'sato.*', '*.biglobe.*', 'apex', 'Exit codes:', '3  the daemon is not reachable']) {
      expect(h.out).toContain(s);
    }
    expect((await cli(['help', 'explain'])).out).toContain('Usage: dnsseal explain NAME');
  });
});
