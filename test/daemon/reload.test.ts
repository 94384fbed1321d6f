/**
 * Reload (`dnsseal reload` over the control socket, and SIGHUP): the daemon re-reads its config
 * file, validates it before touching anything, and swaps atomically. A bad file changes
 * nothing and the reply says why (file:line); a good one swaps without losing a query while
 * queries stream in, withdraws entries no rule wants any more, and reports restart-only
 * settings. Loopback only: knotd on 127.0.0.1 is the upstream.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { EventEmitter } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileDeps, loadConfig } from '../../src/config/load.ts';
import type { Config } from '../../src/config/types.ts';
import { controlRequest } from '../../src/control/client.ts';
import type { DaemonInfo } from '../../src/daemon/index.ts';
import { createLogger } from '../../src/util/log.ts';
import { dig } from '../integration/dig.ts';
import { haveBinary, startKnot, type KnotServer } from '../integration/knot-server.ts';
import { startDaemon } from './start.ts';
import { waitFor } from '../proxy/upstream-contract.ts';

const HAVE = haveBinary('knotd') && haveBinary('dig');
if (!HAVE) console.log('daemon/reload: skipped — needs knotd and dig (apt: knot bind9-dnsutils)');

/** A config file: `protect` are the default table's patterns (all through `hub`). */
function yaml(knot: KnotServer, control: string, protect: string[], extra = ''): string {
  return [
    'mode: host',
    'listen: [127.0.0.1:5399]',
    'upstreams:',
    `  default: ${knot.address}:${knot.port}`,
    'datapath: fake',
    `control: ${control}`,
    'log_level: error',
    extra,
    'channels:',
    '  hub:',
    '    kind: tunnel',
    '    gateway: 192.0.2.1',
    '    esp: aes256gcm16',
    '  partner:',
    '    kind: peer',
    '    esp: aes256gcm16',
    'tables:',
    '  default:',
    ...protect.map((p) => `    - match: "${p}"\n      channel: hub`),
    '',
  ].join('\n');
}

/** Sends `n` A queries for `name` over UDP, at most `window` outstanding; returns how many were answered. */
async function queryLoad(port: number, name: string, n: number, window: number): Promise<{ answered: number }> {
  const qname = name.split('.').flatMap((l) => [l.length, ...new TextEncoder().encode(l)]);
  const pending = new Map<number, () => void>();
  const sock = await Bun.udpSocket({
    socket: {
      data: (_s, buf) => {
        const id = (buf[0]! << 8) | buf[1]!;
        pending.get(id)?.();
      },
    },
  });
  let answered = 0;
  const one = async (id: number) => {
    const q = new Uint8Array([id >> 8, id & 0xff, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, ...qname, 0, 0, 1, 0, 1]);
    // one try, no retransmission: a query the daemon drops counts as lost
    const { promise, resolve } = Promise.withResolvers<boolean>();
    pending.set(id, () => resolve(true));
    const t = setTimeout(() => resolve(false), 10_000); // lost only if never answered: generous under load
    sock.send(q, port, '127.0.0.1');
    if (await promise) answered++;
    clearTimeout(t);
    pending.delete(id);
  };
  let next = 0;
  const worker = async () => {
    while (next < n) await one(next++);
  };
  await Promise.all(Array.from({ length: window }, worker));
  sock.close();
  return { answered };
}

describe.skipIf(!HAVE)('daemon/reload', () => {
  let knot: KnotServer;
  let dir: string;
  let file: string;
  let control: string;
  let info: DaemonInfo;
  let port: number;
  let exit: Promise<number>;
  const lines: string[] = [];
  const signals = new EventEmitter();
  // the file with the original flags, as the CLI's reloadConfig does; port 0 is the test's choice
  const load = (): Config => ({ ...loadConfig(new Map([['config', [file]]]), fileDeps), listen: ['127.0.0.1:0'] });
  const reload = () => controlRequest(control, { cmd: 'reload' }) as Promise<Record<string, unknown>>;
  const addrs = () => info.registry.list().map((e) => e.addr).sort();
  /** Withdrawn entries are retired, not removed (issue #11): still in the map, not live. */
  const live = () => info.registry.list().filter((e) => !e.retired).map((e) => e.addr).sort();
  const retired = () => info.registry.list().filter((e) => e.retired).map((e) => e.addr).sort();

  beforeAll(async () => {
    knot = await startKnot();
    dir = mkdtempSync(join(tmpdir(), 'dnsseal-reload-'));
    file = join(dir, 'dnsseal.yaml');
    control = join(dir, 'control.sock');
    writeFileSync(file, yaml(knot, control, ['*.corp.test']));
    const cfg = load();
    ({ info, exit } = await startDaemon(cfg, { log: createLogger({ level: 'info', write: (l) => void lines.push(l) }), signals, reloadConfig: load }));
    port = info.listeners.find((l) => l.transport === 'udp')!.port;
  });

  afterAll(async () => {
    signals.emit('SIGTERM');
    expect(await exit).toBe(0);
    await knot.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('changes nothing and says why (file:line) when the new file is invalid', async () => {
    writeFileSync(file, yaml(knot, control, ['*.corp.test']));
    await reload();
    expect((await dig('127.0.0.1', port, ['www.corp.test', 'A'])).status).toBe('NOERROR');
    expect(addrs()).toContain('203.0.113.10');
    const good = yaml(knot, control, ['*.corp.test']);
    // a rule naming a channel that does not exist, plus one that would protect www.test
    writeFileSync(file, good.replace('channel: hub', 'channel: nosuch') + '    - match: "www.test"\n      channel: hub\n');
    const err = await reload().then(
      () => null,
      (e: Error & { code?: string }) => e,
    );
    expect(err?.code).toBe('reload_invalid');
    expect(err?.message).toContain('the running config is unchanged');
    expect(err?.message).toMatch(/dnsseal\.yaml:\d+/);
    expect(err?.message).toContain('nosuch');
    // still the old policy: corp protected, www.test not
    expect(addrs()).toContain('203.0.113.10');
    await dig('127.0.0.1', port, ['www.test', 'A']);
    expect(addrs()).not.toContain('192.0.2.10');
    expect((await dig('127.0.0.1', port, ['app.corp.test', 'A'])).status).toBe('NOERROR');
    expect(addrs()).toContain('203.0.113.10');
  });

  test('protects by the new rules and withdraws entries no rule wants when the file is good', async () => {
    writeFileSync(file, yaml(knot, control, ['*.corp.test']));
    await reload();
    await dig('127.0.0.1', port, ['www.corp.test', 'A']);
    expect(addrs()).toContain('203.0.113.10');
    writeFileSync(file, yaml(knot, control, ['www.test']));
    const r = await reload();
    expect(r).toMatchObject({ source: file, tables: 1, rules: 1, channels: 2, applied: ['tables'], restartNeeded: [] });
    expect(r.withdrawn as number).toBeGreaterThanOrEqual(1);
    expect(live()).not.toContain('203.0.113.10');
    expect(retired()).toContain('203.0.113.10'); // never dropped into the clear by a reload
    await dig('127.0.0.1', port, ['www.test', 'A']);
    expect(live()).toContain('192.0.2.10');
    await dig('127.0.0.1', port, ['www.corp.test', 'A']);
    expect(live()).not.toContain('203.0.113.10');
  });

  test('answers every query when reloaded repeatedly under load', async () => {
    const files = [yaml(knot, control, ['*.corp.test']), yaml(knot, control, ['www.test', '*.corp.test'])];
    // rounds of load until at least 6 reloads ran under it: a fast machine answers a round
    // before many reloads are done, a slow one reloads less often — neither may end the test early
    let reloads = 0;
    let rounds = 0;
    while (reloads < 6) {
      const load1 = queryLoad(port, 'www.corp.test', 3000, 32);
      const load2 = queryLoad(port, 'www.test', 3000, 32);
      let done = false;
      void Promise.all([load1, load2]).then(() => (done = true));
      while (!done) {
        writeFileSync(file, files[reloads % 2]!);
        await reload();
        reloads++;
        await Bun.sleep(5);
      }
      const [a, b] = await Promise.all([load1, load2]);
      const round = rounds++;
      expect({ round, answered: [a.answered, b.answered] }).toEqual({ round, answered: [3000, 3000] });
    }
    expect(reloads).toBeGreaterThanOrEqual(6);
  });

  test('reloads on SIGHUP like the control command', async () => {
    writeFileSync(file, yaml(knot, control, ['*.corp.test']));
    await reload();
    writeFileSync(file, yaml(knot, control, ['svc.test']));
    lines.length = 0;
    signals.emit('SIGHUP');
    await waitFor(() => lines.some((l) => l.includes('configuration reloaded') && l.includes('SIGHUP')), 'the SIGHUP reload logged');
    await dig('127.0.0.1', port, ['svc.test', 'HTTPS']);
    expect(addrs()).toContain('192.0.2.20');
    writeFileSync(file, 'tables: [');
    lines.length = 0;
    signals.emit('SIGHUP');
    await waitFor(() => lines.some((l) => l.includes('SIGHUP') && l.includes('reload refused')), 'the refused SIGHUP reload logged');
    await dig('127.0.0.1', port, ['svc.test', 'HTTPS']);
    expect(addrs()).toContain('192.0.2.20');
  });

  test('reports restart-only settings and keeps their running values when they changed', async () => {
    writeFileSync(file, yaml(knot, control, ['*.corp.test'], 'min_hold: 120'));
    const r = await reload();
    expect(r.restartNeeded).toEqual(['min_hold']);
    const st = (await controlRequest(control, { cmd: 'status' })) as { config: { source: string }; reload: { restart_needed: string[] } };
    expect(st.config.source).toBe(file);
    expect(st.reload.restart_needed).toEqual(['min_hold']);
  });
});
