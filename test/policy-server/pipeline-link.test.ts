import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { Policy } from '../../src/policy/policy.ts';
import { startProxy, type Proxy } from '../../src/proxy/proxy.ts';
import { newProxyCounters } from '../../src/proxy/proxy-counters.ts';
import type { QueryHandler } from '../../src/proxy/handler.ts';
import { stripTsig } from '../../src/dns/tsig.ts';
import { FakeClock, realClock } from '../../src/util/clock.ts';
import { silentLogger } from '../../src/util/log.ts';
import { ServerChannels, policyServerLink } from '../../src/policy-server/proxy-side.ts';
import { RecordingRegistry } from '../proxy/doubles.ts';
import { CLIENT_502, CLIENT_503, CLIENT_504, GW_KEY, KEY, KOJIMA, KOJIMA_ADDR, ask, figure6Config, figure6State, keyring, makeQuery, serve, startServer, type Served } from './helpers.ts';

// The proxy (B1's pipeline, patched) in front of the policy server. The server sees the proxy
// at 127.0.0.1, mapped here to table 502.
const fake = new FakeClock(1_795_554_523_000);
// TSIG time from the fake wall clock; upstream timeouts need a monotonic clock that moves.
const clock = { nowMs: () => fake.nowMs(), monoMs: () => realClock.monoMs() };
let mode: 'genuine' | 'unsigned' | 'forged-first' = 'genuine';
let server: Served;
let proxy: Proxy;
let registry: RecordingRegistry;

beforeAll(async () => {
  const cfg = figure6Config();
  cfg.clients = [{ cidr: '127.0.0.1/32', table: '502' }];
  const ps = startServer({ ...figure6State(), policy: Policy.fromConfig(cfg) }, clock);
  const handle: QueryHandler = async (q, c) => {
    const a = await ps.handle(Uint8Array.from(q), c);
    if (!a) return null;
    if (mode === 'unsigned') return stripTsig(a);
    return a;
  };
  server = await serve(handle);
  registry = new RecordingRegistry();
  const local = figure6Config();
  local.tables = [];
  local.clients = [];
  const ctx = { keyring, keyName: KEY.name, clock, channels: new ServerChannels(), fudgeS: 300 };
  proxy = await startProxy({
    listen: ['127.0.0.1:0'],
    upstreams: [
      { name: 'default', servers: [{ transport: 'dns', address: '127.0.0.1', port: 9 }] },
      { name: 'policy', servers: [{ transport: 'dns', address: '127.0.0.1', port: server.udp.port }], tsigKey: KEY.name },
    ],
    upstreamTimeoutMs: 1000, // the in-process server must beat it on a loaded machine
    canary: 'nxdomain',
    policy: Policy.fromConfig(local),
    registry,
    counters: newProxyCounters(),
    clock,
    log: silentLogger,
    upstreamPoolSize: 2,
    policyServer: policyServerLink(ctx, 'policy'),
  });
});
afterAll(async () => {
  await proxy.close();
  await server.close();
});

describe('pipeline with a policy-server upstream', () => {
  test('registers the server decision before answering when the answer verifies', async () => {
    mode = 'genuine';
    const port = proxy.listeners[0]!.port;
    const a = await ask('udp', port, makeQuery(KOJIMA));
    expect(a[3]! & 0x0f).toBe(0);
    expect(registry.registrations).toHaveLength(1);
    expect(registry.registrations[0]).toMatchObject({ group: 0, addrs: [KOJIMA_ADDR], channel: { name: 'server:hub-a', kind: 'tunnel', id: 41736 } }); // deterministic: server-channels.test.ts
  });

  test('answers SERVFAIL and registers nothing when the policy server answer is unsigned', async () => {
    mode = 'unsigned';
    registry.registrations.length = 0;
    const port = proxy.listeners[0]!.port;
    const a = await ask('udp', port, makeQuery('kojima.jinji.nec.com'), '127.0.0.1', 3000);
    expect(a[3]! & 0x0f).toBe(2);
    expect(registry.registrations).toEqual([]);
  });
});

describe('pipeline as a gateway for figure 6 clients', () => {
  test.each(['udp', 'tcp'] as const)('registers per LAN client exactly its table channel when asked over %s', async (t) => {
    const reg = new RecordingRegistry();
    // The gateway classifies its LAN clients itself (the data path needs the group): same
    // client CIDRs and table ids as the server's table 501, but no rules of its own.
    const local = figure6Config();
    local.tables = local.tables.map((t) => ({ ...t, rules: [] }));
    const ctx = { keyring, keyName: GW_KEY.name, clock, channels: new ServerChannels() };
    const ps = startServer(figure6State(), clock);
    const srv = await serve(ps.handle);
    const gw = await startProxy({
      listen: ['127.0.0.1:0'],
      upstreams: [{ name: 'default', servers: [{ transport: 'dns', address: '127.0.0.1', port: srv.udp.port }], tsigKey: GW_KEY.name }],
      upstreamTimeoutMs: 1000,
      canary: 'nxdomain',
      policy: Policy.fromConfig(local),
      registry: reg,
      counters: newProxyCounters(),
      clock,
      log: silentLogger,
      upstreamPoolSize: 2,
      policyServer: policyServerLink(ctx, 'default', { sendClientSubnet: true }),
    });
    try {
      const port = gw.listeners[0]!.port;
      for (const c of [CLIENT_502, CLIENT_503, CLIENT_504]) {
        const a = await ask(t, port, makeQuery(KOJIMA), c);
        expect(a[3]! & 0x0f).toBe(0);
      }
      expect(reg.registrations.map((r) => [r.group, r.channel.name])).toEqual([[502, 'server:hub-a'], [503, 'server:peer-b']]);
      expect(reg.registrations.every((r) => r.addrs[0] === KOJIMA_ADDR)).toBe(true);
    } finally {
      await gw.close();
      await srv.close();
    }
  });
});
