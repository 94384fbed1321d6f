/**
 * The whole daemon on loopback against a real knotd, queried by dig and kdig over UDP and TCP:
 * answers for unprotected names equal knot's own (except the ID), protected names' addresses
 * are in the registry (and the fake kernel map) when the client has the answer, TC leads to
 * TCP, DNSSEC records pass intact, the canary is NXDOMAIN. Loopback only.
 */
import { waitFor } from '../proxy/upstream-contract.ts';
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
import { parseCondition } from '../../src/policy/condition.ts';
import type { ChannelSpec } from '../../src/policy/types.ts';
import { realClock } from '../../src/util/clock.ts';
import { silentLogger } from '../../src/util/log.ts';
import { dig, kdig } from './dig.ts';
import { haveBinary, startKnot, type KnotServer } from './knot-server.ts';
import { startDaemon } from '../daemon/start.ts';
import { settingDefaults } from '../../src/config/defaults.ts';

const HAVE = haveBinary('knotd') && haveBinary('dig') && haveBinary('kdig');
if (!HAVE) console.log('integration/daemon-knot: skipped — needs knotd, dig and kdig (apt: knot knot-dnsutils bind9-dnsutils)');

const HUB: ChannelSpec = { name: 'hub', id: 1, mark: 0x5e510001, protocol: 'ipsec', kind: 'tunnel', gateway: '192.0.2.1', identity: 'hub.test', esp: 'aes256gcm16' };

function config(knot: KnotServer, controlPath: string): Config {
  const rules = ['*.corp.test', 'svc.test'].map((p, index) => ({ condition: parseCondition(p), channel: 'hub', index }));
  return {
    ...settingDefaults(),
    source: '<test>',
    mode: 'host',
    listen: ['127.0.0.1:0'],
    upstreams: [{ name: 'default', servers: [{ transport: 'dns', address: knot.address, port: knot.port }] }],
    datapath: 'fake',
    lan: [],
    wan: [],
    control: controlPath,
    logLevel: 'error',
    logFormat: 'logfmt',
    minHoldS: 60,
    idleS: 300,
    upstreamTimeoutMs: 2000,
    // the answers are compared with knot's byte for byte: no cache, whose hits count TTLs down
    cacheSize: 0,
    canary: 'nxdomain',
    channels: [HUB],
    tables: [{ id: 'default', group: 0, rules }],
    clients: [],
    statics: [],
    tsigKeys: [],
    interceptPools: [],
  };
}

describe.skipIf(!HAVE)('integration/daemon-knot', () => {
  let knot: KnotServer;
  let info: DaemonInfo;
  let port: number;
  let dir: string;
  let exit: Promise<number>;
  const signals = new EventEmitter();

  beforeAll(async () => {
    knot = await startKnot();
    dir = mkdtempSync(join(tmpdir(), 'dnsseal-daemon-'));
    ({ info, exit } = await startDaemon(config(knot, join(dir, 'control.sock')), { signals, ipsec: new NoIpsec([HUB]) }));
    port = info.listeners[0]!.port;
  });

  afterAll(async () => {
    signals.emit('SIGTERM');
    expect(await exit).toBe(0);
    await knot.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('reports the fake datapath when started with --datapath fake', () => {
    expect(info.datapath).toBe('fake');
    expect(info.listeners.map((l) => l.transport).sort()).toEqual(['tcp', 'udp']);
  });

  test.each([
    ['www.test', 'A', []],
    ['www.test', 'AAAA', []],
    ['alias.test', 'A', []],
    ['chain1.test', 'A', []],
    ['MiXeD.TeSt', 'A', []],
    ['nx.test', 'A', []],
    ['svcalias.test', 'HTTPS', []],
    ['www.signed.test', 'A', ['+dnssec']],
    ['signed.test', 'DNSKEY', ['+dnssec']],
    ['nx.signed.test', 'A', ['+dnssec']],
    ['www.test', 'A', ['+noedns']],
    ['many.test', 'A', ['+tcp']],
    ['www.test', 'A', ['+tcp']],
  ])('dig gets knot answer for %s %s %p when the name is unprotected', async (name, type, extra) => {
    const direct = await dig(knot.address, knot.port, [...extra, name, type]);
    const proxied = await dig('127.0.0.1', port, [...extra, name, type]);
    expect(proxied.status).toBe(direct.status);
    // Recursion is not offered by knot; our own answers would add RA, relayed ones do not.
    expect(proxied.flags).toEqual(direct.flags);
    expect(proxied.records).toEqual(direct.records);
    expect(proxied.records.length + (direct.status === 'NOERROR' ? 0 : 1)).toBeGreaterThan(0);
  });

  test('kdig over UDP and TCP gets the same answers as from knot when the name is unprotected', async () => {
    for (const t of [[], ['+tcp']]) {
      const direct = await kdig(knot.address, knot.port, [...t, 'chain1.test', 'A']);
      const proxied = await kdig('127.0.0.1', port, [...t, 'chain1.test', 'A']);
      expect(proxied.records).toEqual(direct.records);
      expect(proxied.records.length).toBe(4);
    }
  });

  test('dig over UDP falls back to TCP and gets all 120 records when the answer is too big', async () => {
    const r = await dig('127.0.0.1', port, ['many.test', 'A']);
    expect(r.raw).toContain('Truncated, retrying in TCP mode');
    expect(r.records.length).toBe(120);
  });

  test.each([
    ['front.test', 'A', [], ['203.0.113.10']],
    ['www.corp.test', 'AAAA', ['+tcp'], ['2001:db8:c0::10']],
    ['svc.test', 'HTTPS', [], ['192.0.2.20', '192.0.2.21', '2001:db8::20']],
  ])('has %s %s %p addresses in the registry and map when the client has the answer', async (name, type, extra, addrs) => {
    const r = await dig('127.0.0.1', port, [...extra, name, type]);
    expect(r.status).toBe('NOERROR');
    const listed = info.registry.list().map((e) => e.addr);
    for (const a of addrs) expect(listed).toContain(a);
    const rows = (await controlRequest(join(dir, 'control.sock'), { cmd: 'list', args: {} })) as Array<{ address: string; channel: string }>;
    for (const a of addrs) expect(rows.find((row) => row.address === a)?.channel).toBe('hub');
  });

  test('never registers addresses of unprotected names', async () => {
    await dig('127.0.0.1', port, ['www.test', 'A']);
    expect(info.registry.list().map((e) => e.addr)).not.toContain('192.0.2.10');
  });

  test('answers the canary NXDOMAIN when asked by kdig', async () => {
    expect((await kdig('127.0.0.1', port, ['use-application-dns.net', 'A'])).status).toBe('NXDOMAIN');
  });
});

describe.skipIf(!HAVE)('daemon signals', () => {
  test('keeps serving on SIGHUP and exits 0 on SIGINT', async () => {
    const knot = await startKnot();
    const dir = mkdtempSync(join(tmpdir(), 'dnsseal-daemon-'));
    const signals = new EventEmitter();
    const lines: string[] = [];
    const ready = Promise.withResolvers<DaemonInfo>();
    const { createLogger } = await import('../../src/util/log.ts');
    const exit = runDaemon(config(knot, join(dir, 'control.sock')), {
      log: createLogger({ level: 'info', write: (l) => void lines.push(l) }),
      clock: realClock,
      metrics: new Metrics(),
      signals: signals as unknown as SignalSource,
      onReady: ready.resolve,
      ipsec: new NoIpsec([HUB]),
    });
    const info = await ready.promise;
    expect(lines.some((l) => l.includes('datapath: using backend fake'))).toBe(true);
    signals.emit('SIGHUP');
    await waitFor(() => lines.some((l) => l.includes('SIGHUP')), 'the SIGHUP reload logged');
    expect((await dig('127.0.0.1', info.listeners[0]!.port, ['www.test', 'A'])).status).toBe('NOERROR');
    signals.emit('SIGINT');
    expect(await exit).toBe(0);
    expect(lines.some((l) => l.includes('dnsseal stopped'))).toBe(true);
    await knot.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('returns a non-zero exit code when a listen address cannot be bound', async () => {
    const knot = await startKnot();
    const dir = mkdtempSync(join(tmpdir(), 'dnsseal-daemon-'));
    const cfg = { ...config(knot, join(dir, 'control.sock')), listen: ['192.0.2.123:53'] };
    const code = await runDaemon(cfg, { log: silentLogger, clock: realClock, metrics: new Metrics(), ipsec: new NoIpsec([HUB]) });
    expect(code).not.toBe(0);
    await knot.stop();
    rmSync(dir, { recursive: true, force: true });
  });
});
