import { afterEach, describe, expect, test } from 'bun:test';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Config } from '../../src/config/types.ts';
import { ConfigError } from '../../src/util/errors.ts';
import { FakeClock } from '../../src/util/clock.ts';
import { silentLogger } from '../../src/util/log.ts';
import { loadPolicyServerConfig, parseServeSection, splitServeSection, type BaseLoader } from '../../src/policy-server/config.ts';
import { startPolicyServer, type RunningPolicyServer } from '../../src/policy-server/run.ts';
import { CLIENT_502, KOJIMA, ProxySide, ZONE_TEXT, figure6Config } from './helpers.ts';

// Until the shared YAML loader (src/config) is wired in, the base part comes from figure 6;
// these tests cover the `serve:` section, assembly and reload.
const dir = mkdtempSync(join(tmpdir(), 'dnsseal-ps-'));
writeFileSync(join(dir, 'nec.com.zone'), ZONE_TEXT);
const CONFIG = join(dir, 'policy-server.yaml');
const TEXT = `listen: ["127.0.0.1:0"]
serve:
  zone: nec.com.zone
  trusted_keys: [lan-gateway]
  annotate: signed
  fudge: 300
log_level: error
`;

let clientsTable = '502';
const loadBase: BaseLoader = (text) => {
  expect(text).not.toContain('serve:');
  const cfg: Config = { ...figure6Config(), listen: ['127.0.0.1:0'] };
  cfg.clients = [{ cidr: `${CLIENT_502}/32`, table: clientsTable }];
  return cfg;
};

let running: RunningPolicyServer | null = null;
afterEach(async () => {
  await running?.close();
  running = null;
  clientsTable = '502';
});

describe('policy-server/config', () => {
  test('blanks the serve block line for line when splitting', () => {
    const { rest, serve, line } = splitServeSection(TEXT);
    expect(line).toBe(2);
    expect(rest.split('\n')).toHaveLength(TEXT.split('\n').length);
    expect(rest.split('\n')[7 - 1]).toBe('log_level: error');
    expect(serve).toContain('trusted_keys');
  });

  test('names the file and both lines when serve appears twice', () => {
    expect(() => splitServeSection('serve:\n  fudge: 30\nlisten: ["127.0.0.1:53"]\nserve:\n  fudge: 60\n', CONFIG)).toThrow(`${CONFIG}:4: serve: appears twice (first at line 1)`);
  });

  test('loads the zone relative to the config file when serve.zone is given', () => {
    const cfg = loadPolicyServerConfig(CONFIG, loadBase, TEXT);
    expect(cfg.serve.zone?.covers(KOJIMA)).toBe(true);
    expect(cfg.serve.trustedKeys).toEqual(['lan-gateway']);
  });

  test.each([
    ['an unknown key', 'serve:\n  zonefile: x\n', /policy-server\.yaml:2: unknown key "zonefile" in serve/],
    ['an untrusted key name', 'serve:\n  zone: nec.com.zone\n  trusted_keys: [nobody]\n', /:3: serve.trusted_keys: must name keys of tsig_keys \(dnsseal-test, lan-gateway\), not "nobody"/],
    ['a zero fudge', 'serve:\n  zone: nec.com.zone\n  fudge: 0\n', /:3: serve.fudge: must be whole seconds between 1 and 3600 .*, not 0$/],
    ['a bad annotate', 'serve:\n  zone: nec.com.zone\n  annotate: yes\n', /:3: serve.annotate: must be signed or all, not "yes"/],
    ['a missing zone file', 'serve:\n  zone: missing.zone\n', /:2: serve.zone: cannot read zone file/],
    ['a serve that is not a mapping', 'serve: on\n', /:1: serve: must be a mapping of zone, .*, not "on"/],
    ['neither zone nor upstream', 'serve:\n  annotate: all\n', /needs serve.zone or at least one upstream/],
  ])('refuses %s with file:line', (_n, text, re) => {
    expect(() => loadPolicyServerConfig(CONFIG, loadBase, text)).toThrow(re);
    expect(() => loadPolicyServerConfig(CONFIG, loadBase, text)).toThrow(ConfigError);
  });

  test('reports every bad serve value at once, each at its line with the key, the value and what is expected', () => {
    const text = 'serve:\n  zone: nec.com.zone\n  require_tsig: yes\n  annotate: every\n  fudge: 90000\n  trusted_keys:\n    - lan-gateway\n    - nobody\n  colour: blue\n';
    let message = '';
    try {
      loadPolicyServerConfig(CONFIG, loadBase, text);
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      message = (err as Error).message;
    }
    expect(message.split('\n')).toEqual([
      `${CONFIG}:3: serve.require_tsig: must be true or false, not "yes"`,
      `${CONFIG}:4: serve.annotate: must be signed or all, not "every"`,
      `${CONFIG}:5: serve.fudge: must be whole seconds between 1 and 3600 (300 recommended, RFC 8945 §10), not 90000`,
      `${CONFIG}:8: serve.trusted_keys: must name keys of tsig_keys (dnsseal-test, lan-gateway), not "nobody"`,
      `${CONFIG}:9: unknown key "colour" in serve (known: zone, zone_origin, trusted_keys, require_tsig, annotate, fudge)`,
    ]);
  });

  test('reports the serve problems together with those of the rest of the file', () => {
    const failing: BaseLoader = (_t, source) => {
      throw new ConfigError(`${source}:1`, 'listen: "nowhere": not ADDR:PORT');
    };
    expect(() => loadPolicyServerConfig(CONFIG, failing, 'listen: [nowhere]\nserve:\n  fudge: 0\n')).toThrow(
      `${CONFIG}:1: listen: "nowhere": not ADDR:PORT\n${CONFIG}:3: serve.fudge: must be whole seconds between 1 and 3600 (300 recommended, RFC 8945 §10), not 0`,
    );
  });

  test('uses defaults when there is no serve section', () => {
    expect(parseServeSection(null, CONFIG, 0, figure6Config())).toEqual({ zone: null, trustedKeys: [], requireTsig: false, annotate: 'signed', fudgeS: 300 });
  });
});

describe('policy-server/run', () => {
  const clock = new FakeClock(1_795_554_523_000);
  const start = async () => {
    running = await startPolicyServer(loadPolicyServerConfig(CONFIG, loadBase, TEXT), {
      clock,
      log: silentLogger,
      load: () => loadPolicyServerConfig(CONFIG, loadBase, TEXT),
    });
    const udp = running.listeners.find((l) => l.transport === 'udp')!;
    const tcp = running.listeners.find((l) => l.transport === 'tcp')!;
    expect(tcp.port).toBe(udp.port);
    return udp.port;
  };

  test.each(['udp', 'tcp'] as const)('serves signed, annotated answers over %s when started from config', async (t) => {
    const port = await start();
    const v = await new ProxySide(clock, CLIENT_502).query(t, port, KOJIMA);
    expect(v.ok && v.annotation?.table).toBe('502');
  });

  test('answers every query and switches tables when reloaded under load', async () => {
    const port = await start();
    const p = new ProxySide(clock, CLIENT_502);
    const before = Array.from({ length: 100 }, (_, i) => p.query(i % 2 ? 'udp' : 'tcp', port, KOJIMA));
    clientsTable = '503';
    expect(await running!.reload()).toBe(true);
    const after = Array.from({ length: 100 }, (_, i) => p.query(i % 2 ? 'udp' : 'tcp', port, KOJIMA));
    const all = await Promise.all([...before, ...after]);
    expect(all.every((v) => v.ok)).toBe(true);
    const tables = new Set(all.slice(100).map((v) => (v.ok ? v.annotation?.table : null)));
    expect([...tables]).toEqual(['503']);
  });

  test('names the address, the transport and why when a listen address is taken', async () => {
    const port = await start();
    const base: BaseLoader = (text, source) => ({ ...loadBase(text, source), listen: [`127.0.0.1:${port}`] });
    let err: unknown;
    try {
      const second = await startPolicyServer(loadPolicyServerConfig(CONFIG, base, TEXT), { clock, log: silentLogger, load: () => loadPolicyServerConfig(CONFIG, base, TEXT) });
      await second.close();
    } catch (e) {
      err = e;
    }
    expect(String((err as Error)?.message)).toContain(`cannot listen on 127.0.0.1:${port} (udp)`);
    expect(String((err as Error)?.message)).toContain('(in use: by another program');
  });

  test('keeps the running config when a reload is refused', async () => {
    const port = await start();
    const bad = await startPolicyServer(loadPolicyServerConfig(CONFIG, loadBase, TEXT), {
      clock,
      log: silentLogger,
      load: () => {
        throw new ConfigError(`${CONFIG}:3`, 'broken');
      },
    });
    expect(await bad.reload()).toBe(false);
    await bad.close();
    expect(await running!.reload()).toBe(true);
    const v = await new ProxySide(clock, CLIENT_502).query('udp', port, KOJIMA);
    expect(v.ok && v.annotation?.table).toBe('502');
  });
});

process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
