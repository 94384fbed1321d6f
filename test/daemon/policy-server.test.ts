/**
 * The daemon with a policy-server upstream (#5), end to end on loopback: `runDaemon` builds the
 * link from the config (keyring, key, server channels), the real pipeline signs every query to
 * the policy server, and only a verified answer's decision is registered. A tampered answer
 * (one MAC byte flipped) is ignored like a forgery: the client gets SERVFAIL and nothing is
 * registered. Fake data path, no IPsec; no root.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { EventEmitter } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Config } from '../../src/config/types.ts';
import { controlRequest } from '../../src/control/client.ts';
import { runDaemon, type DaemonInfo, type SignalSource } from '../../src/daemon/index.ts';
import { NoIpsec } from '../../src/ipsec/channel-manager.ts';
import { Metrics } from '../../src/ops/metrics.ts';
import { Policy } from '../../src/policy/policy.ts';
import type { QueryHandler } from '../../src/proxy/handler.ts';
import { newProxyCounters } from '../../src/proxy/proxy-counters.ts';
import { realClock } from '../../src/util/clock.ts';
import { silentLogger } from '../../src/util/log.ts';
import { CLIENT_502, CLIENT_503, CLIENT_504, GW_KEY, KEY, KOJIMA, KOJIMA_ADDR, ask, figure6Config, figure6State, makeQuery, startServer } from '../policy-server/helpers.ts';
import { startDaemon } from './start.ts';
import { listenPair } from '../proxy/listen-pair.ts';

/** Flips the last byte of the TSIG MAC: the MAC length sits before it in the TSIG RDATA. */
function tamperMac(msg: Uint8Array): Uint8Array {
  const out = Uint8Array.from(msg);
  // TSIG RDATA ends with: MAC size (2) MAC (n) original ID (2) error (2) other len (2) other (0).
  // Our server sends an empty "other" unless BADTIME, so the MAC ends 6 bytes before the end.
  out[out.length - 7]! ^= 0x5a;
  return out;
}

describe('daemon/policy-server', () => {
  let dir: string;
  let info: DaemonInfo;
  let port: number;
  let exit: Promise<number>;
  let mode: 'genuine' | 'tampered' = 'genuine';
  const signals = new EventEmitter();
  let closeServer: () => Promise<void>;
  let control: string;

  beforeAll(async () => {
    // The policy server: figure 6, with this test's proxy (127.0.0.1) in table 502.
    const serverCfg = figure6Config();
    serverCfg.clients = [{ cidr: '127.0.0.1/32', table: '502' }];
    const ps = startServer({ ...figure6State(), policy: Policy.fromConfig(serverCfg) }, realClock);
    const handle: QueryHandler = async (q, c) => {
      const a = await ps.handle(Uint8Array.from(q), c);
      return a && mode === 'tampered' ? tamperMac(a) : a;
    };
    const counters = newProxyCounters();
    const udp = await listenPair(handle, counters);
    closeServer = () => udp.close();

    dir = mkdtempSync(join(tmpdir(), 'dnsseal-daemon-ps-'));
    // The node: no rules of its own, the policy server is its only upstream.
    const cfg: Config = {
      ...figure6Config(),
      source: '<test>',
      listen: ['127.0.0.1:0'],
      upstreams: [{ name: 'default', servers: [{ transport: 'dns', address: '127.0.0.1', port: udp.port }], tsigKey: KEY.name }],
      policyServer: 'default',
      datapath: 'fake',
      control: (control = join(dir, 'control.sock')),
      upstreamTimeoutMs: 1000, // the server's answer must beat it on a loaded machine; the tampered case pays it once
      tables: [],
      clients: [],
    };
    ({ info, exit } = await startDaemon(cfg, { signals, reloadConfig: () => cfg }));
    port = info.listeners.find((l) => l.transport === 'udp')!.port;
  });

  afterAll(async () => {
    signals.emit('SIGTERM');
    await exit;
    await closeServer();
    rmSync(dir, { recursive: true, force: true });
  });

  test('answers SERVFAIL and registers nothing when the server answer carries a wrong MAC', async () => {
    mode = 'tampered';
    const ignored = info.counters.upstreamIgnored.tsig;
    const a = await ask('udp', port, makeQuery(KOJIMA), '127.0.0.1', 3000);
    expect(a[3]! & 0x0f).toBe(2); // SERVFAIL
    expect(info.registry.list()).toEqual([]);
    expect(info.counters.upstreamIgnored.tsig).toBeGreaterThan(ignored);
  });

  test.each(['udp', 'tcp'] as const)('registers the server channel before answering when the answer verifies (client over %s)', async (t) => {
    mode = 'genuine';
    const a = await ask(t, port, makeQuery(KOJIMA), '127.0.0.1', 3000);
    expect(a[3]! & 0x0f).toBe(0);
    const entries = info.registry.list();
    expect(entries.map((e) => [e.group, e.addr, e.channel])).toEqual([[0, KOJIMA_ADDR, 'server:hub-a']]);
    // The client's copy carries neither the server's TSIG nor its policy option: only our OPT.
    expect((a[10]! << 8) | a[11]!).toBe(1);
  });

  test('keeps what the policy server protected when the config reloads', async () => {
    expect(info.registry.list()).toHaveLength(1);
    const r = (await controlRequest(control, { cmd: 'reload' })) as Record<string, unknown>;
    expect(r).toMatchObject({ withdrawn: 0, released: 0 });
    expect(info.registry.list().map((e) => [e.addr, e.channel])).toEqual([[KOJIMA_ADDR, 'server:hub-a']]);
  });
});

describe('daemon/policy-server as a gateway', () => {
  test('registers each LAN client exactly its figure 6 channel under its own group when the server decides', async () => {
    // The server: figure 6 as it stands (table 501 maps 127.0.0.2/.3/.4), trusting the gateway's key.
    const ps = startServer(figure6State(), realClock);
    const counters = newProxyCounters();
    const udp = await listenPair(ps.handle, counters);
    const dir = mkdtempSync(join(tmpdir(), 'dnsseal-daemon-psgw-'));
    // The gateway: same client CIDRs and table ids (its kernel groups), no rules of its own.
    const base = figure6Config();
    const cfg: Config = {
      ...base,
      source: '<test>',
      mode: 'gateway',
      lan: ['lan0'],
      listen: ['127.0.0.1:0'],
      upstreams: [{ name: 'default', servers: [{ transport: 'dns', address: '127.0.0.1', port: udp.port }], tsigKey: GW_KEY.name }],
      policyServer: 'default',
      datapath: 'fake',
      control: join(dir, 'control.sock'),
      tables: base.tables.map((t) => ({ ...t, rules: [] })),
    };
    const signals = new EventEmitter();
    const ready = Promise.withResolvers<DaemonInfo>();
    const exit = runDaemon(cfg, {
      log: silentLogger,
      clock: realClock,
      metrics: new Metrics(),
      signals: signals as unknown as SignalSource,
      onReady: ready.resolve,
      ipsec: new NoIpsec(cfg.channels),
    });
    try {
      const info = await Promise.race([ready.promise, exit.then((c) => Promise.reject(new Error(`daemon exited ${c}`)))]);
      const port = info.listeners.find((l) => l.transport === 'udp')!.port;
      for (const c of [CLIENT_502, CLIENT_503, CLIENT_504]) {
        const a = await ask('udp', port, makeQuery(KOJIMA), c, 3000);
        expect(a[3]! & 0x0f).toBe(0);
      }
      const rows = info.registry.list().map((e) => [e.group, e.addr, e.channel]);
      expect(rows.sort()).toEqual([
        [502, KOJIMA_ADDR, 'server:hub-a'],
        [503, KOJIMA_ADDR, 'server:peer-b'],
      ]);
    } finally {
      signals.emit('SIGTERM');
      await exit;
      await udp.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
