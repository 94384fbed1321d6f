/**
 * Exit codes as documented (`dnsseal help`, README), for every command: a usage error, an
 * unknown flag and a config error exit 1 and do nothing; an unreachable daemon exits 3 after
 * one attempt and nothing else; success exits 0. "Nothing done" = no control request, no daemon
 * or server started, no kernel teardown, nothing written, nothing on stdout.
 */
import { afterAll, describe, expect, test } from 'bun:test';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { COMMANDS } from '../../src/cli/help.ts';
import { EXIT } from '../../src/cli/exit-codes.ts';
import { COMMAND_FLAGS } from '../../src/config/flags.ts';
import { cli, type Harness } from './fixtures.ts';

const dir = mkdtempSync(join(tmpdir(), 'dnsseal-exit-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A free loopback port for the policy server's success case (UDP and TCP). */
async function freePort(): Promise<number> {
  const s = await Bun.udpSocket({ hostname: '127.0.0.1', port: 0 });
  const port = s.port;
  s.close();
  return port;
}
const PS_PORT = await freePort();

const GOOD = `upstreams:
  default: 192.0.2.53
channels:
  hub: {kind: tunnel, gateway: 192.0.2.1}
tables:
  default:
    - {match: "*.corp.example", channel: hub}
control: /tmp/dnsseal-exit-test.sock
`;
const files = {
  'good.yaml': GOOD,
  'bad.yaml': 'mode: router\n',
  // list and status use the control path of a file with errors elsewhere: its own must be wrong
  'badctl.yaml': 'control: ""\nmode: router\n',
  // the policy server has no control socket: it refuses `control` (a setting of run)
  'ps.yaml': `listen: ["127.0.0.1:${PS_PORT}"]\n${GOOD.replace(/^control: .*\n/m, '')}serve:\n  annotate: all\n`,
  'psbad.yaml': 'log_level: loud\n',
  'listen.yaml': 'listen: [127.0.0.1:53]\nupstreams:\n  default: 192.0.2.53\n',
};

const resolverRoot = join(dir, 'root');
mkdirSync(join(resolverRoot, 'etc'), { recursive: true });
const unitPrefix = join(dir, 'prefix');

type Row = {
  command: string;
  usage: string[];
  /** Wrong configuration and what the error says; empty: the command reads no configuration. */
  config: Array<[string[], string]>;
  /** null: the command does not talk to the daemon. */
  unreachable: string[] | null;
  success: string[];
  /** What success does (checked on the harness). */
  did?: (h: Harness) => void;
  /** Success is with no daemon answering. */
  noDaemon?: boolean;
};

const daemonOk = (req: { cmd: string }) => (req.cmd === 'list' ? [] : req.cmd === 'flush' ? { released: 0, retired: 0 } : { ok: true });

const ROWS: Row[] = [
  { command: 'run', usage: ['run', 'now'], config: [[['run', '--config', 'bad.yaml'], 'bad.yaml:1: mode: must be one of host, gateway, intercept']], unreachable: null, success: ['run', '--config', 'good.yaml'], did: (h) => expect(h.daemonRuns).toBe(1) },
  {
    command: 'policy-server',
    usage: ['policy-server', 'x'],
    config: [
      [['policy-server', '--config', 'psbad.yaml'], 'psbad.yaml:1: must be one of debug, info, warn, error'],
      [['policy-server', '--config', 'bad.yaml'], 'bad.yaml:1: the policy server does not use mode; it is a setting of `dnsseal run`'],
    ],
    unreachable: null,
    success: ['policy-server', '--config', 'ps.yaml'],
    did: (h) => expect(h.signalHandlers).toBeGreaterThan(0),
  },
  { command: 'check', usage: ['check', 'good.yaml'], config: [[['check', '--config', 'bad.yaml'], 'bad.yaml:1: mode: must be one of host, gateway, intercept']], unreachable: null, success: ['check', '--config', 'good.yaml'], did: (h) => expect(h.out).toStartWith('OK') },
  { command: 'explain', usage: ['explain'], config: [[['explain', 'a.corp.example', '--config', 'bad.yaml'], 'bad.yaml:1: mode: must be one of host, gateway, intercept']], unreachable: null, success: ['explain', 'a.corp.example', '--config', 'good.yaml'], did: (h) => expect(h.out).toContain('channel:') },
  ...['list', 'status', 'flush', 'reload'].map((c) => ({
    command: c,
    usage: [c, 'extra'],
    config: [
      c === 'list' || c === 'status' ? [[c, '--config', 'badctl.yaml'], 'badctl.yaml:1: control: control must be a non-empty string'] : [[c, '--config', 'bad.yaml'], 'bad.yaml:1: mode: must be one of host, gateway, intercept'],
    ] as Array<[string[], string]>,
    unreachable: [c, '--control', join(dir, 'none.sock')],
    success: [c, '--config', 'good.yaml'],
    did: (h: Harness) => expect(h.requests.map((r) => [r.path, r.req.cmd])).toEqual([['/tmp/dnsseal-exit-test.sock', c]]),
  })),
  {
    command: 'log',
    usage: ['log', 'queries', 'maybe'],
    config: [[['log', 'queries', 'on', '--config', 'bad.yaml'], 'bad.yaml:1: mode: must be one of host, gateway, intercept']],
    unreachable: ['log', 'queries', 'on', '--control', join(dir, 'none.sock')],
    success: ['log', 'queries', 'on', '--config', 'good.yaml'],
    did: (h: Harness) => expect(h.requests.map((r) => [r.req.cmd, r.req.args])).toEqual([['log', { what: 'queries', on: true }]]),
  },
  // with no daemon, `down` removes the kernel state itself: success, not "unreachable"
  { command: 'down', usage: ['down', 'now'], config: [[['down', '--config', 'bad.yaml'], 'bad.yaml:1: mode: must be one of host, gateway, intercept']], unreachable: null, success: ['down', '--control', join(dir, 'none.sock')], noDaemon: true, did: (h) => expect(h.teardowns).toBe(1) },
  {
    command: 'install-unit',
    usage: ['install-unit', '--systemd', '--openwrt', '--prefix', unitPrefix],
    config: [],
    unreachable: null,
    success: ['install-unit', '--systemd', '--prefix', unitPrefix, '--binary', '/usr/sbin/dnsseal'],
    did: () => expect(existsSync(join(unitPrefix, 'etc/systemd/system/dnsseal.service'))).toBe(true),
  },
  {
    command: 'resolver-setup',
    usage: ['resolver-setup', '--apply', '--undo', '--root', resolverRoot],
    config: [
      [['resolver-setup', '--apply', '--root', resolverRoot, '--config', 'bad.yaml'], 'bad.yaml:1: mode: must be one of host, gateway, intercept'],
      // resolv.conf has no port: a listen address that is not on 53 cannot be used (was exit 2)
      [['resolver-setup', '--apply', '--root', resolverRoot, '--listen', '127.0.0.1:5353'], 'resolver-setup: dnsseal listens on port 5353, but resolv.conf has no port'],
    ],
    unreachable: null,
    success: ['resolver-setup', '--print', '--root', resolverRoot, '--config', 'listen.yaml'],
    did: (h) => expect(h.out).toContain('would write /etc/resolv.conf'),
  },
  { command: 'config-reference', usage: ['config-reference', 'x'], config: [], unreachable: null, success: ['config-reference'], did: (h) => expect(h.out).toStartWith('# Configuration reference') },
  { command: 'config-default', usage: ['config-default', 'x'], config: [], unreachable: null, success: ['config-default'], did: (h) => expect(h.out).toContain('mode: host') },
  { command: 'man', usage: ['man', 'dnsseal'], config: [], unreachable: null, success: ['man'], did: (h) => expect(h.out).toStartWith('.TH DNSSEAL 8') },
  { command: 'version', usage: ['version', 'x'], config: [], unreachable: null, success: ['version'], did: (h) => expect(h.out).toBe('dnsseal 9.9.9\n') },
  { command: 'help', usage: ['help', 'nosuch'], config: [], unreachable: null, success: ['help', 'flush'], did: (h) => expect(h.out).toContain('Usage: dnsseal flush') },
];

function nothingDone(h: Harness, requests = 0): void {
  expect(h.out).toBe('');
  expect(h.requests.length).toBe(requests);
  expect([h.daemonRuns, h.teardowns, h.signalHandlers]).toEqual([0, 0, 0]);
  expect(existsSync(unitPrefix)).toBe(false);
  expect(readdirSync(join(resolverRoot, 'etc'))).toEqual([]);
}

const run = (argv: string[]) => cli(argv, { files, control: daemonOk, stopAtOnce: true });

describe('cli/exit-codes', () => {
  test('covers every command the CLI knows', () => {
    expect(ROWS.map((r) => r.command).sort()).toEqual(Object.keys(COMMANDS).sort());
    expect(Object.keys(COMMAND_FLAGS).sort()).toEqual(Object.keys(COMMANDS).sort());
  });

  describe.each(ROWS)('$command', (row) => {
    test('exits 1 and does nothing when given a usage error', async () => {
      const h = await run(row.usage);
      expect([h.code, h.err.startsWith('dnsseal: ')]).toEqual([EXIT.usage, true]);
      nothingDone(h);
    });

    test('exits 1 and does nothing when given an unknown flag', async () => {
      const h = await run([...row.success, '--bogus']);
      expect(h.code).toBe(EXIT.usage);
      expect(h.err).toContain(`--bogus: unknown flag for "dnsseal ${row.command}"`);
      nothingDone(h);
    });

    if (row.config.length > 0)
      test('exits 1 and does nothing when the configuration is wrong', async () => {
      for (const [argv, err] of row.config) {
        const h = await run(argv);
        expect([argv, h.code]).toEqual([argv, EXIT.usage]);
        expect(h.err).toStartWith(`dnsseal: ${err}`);
        nothingDone(h);
      }
    });

    if (row.unreachable !== null)
      test('exits 3 after one attempt when the daemon is unreachable', async () => {
      const h = await cli(row.unreachable!, { files });
      expect(h.code).toBe(EXIT.unreachable);
      expect(h.err).toContain('not running');
      nothingDone(h, 1);
    });

    test('exits 0 and does its job when all is well', async () => {
      const h = row.noDaemon ? await cli(row.success, { files }) : await run(row.success);
      expect([h.code, h.err]).toEqual([EXIT.ok, '']);
      row.did?.(h);
      rmSync(unitPrefix, { recursive: true, force: true });
      for (const f of readdirSync(join(resolverRoot, 'etc'))) rmSync(join(resolverRoot, 'etc', f));
    });
  });
});
