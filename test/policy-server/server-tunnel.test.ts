/**
 * A `tunnel` channel that only the policy server knows (#5): the proxy must not release the
 * answer before strongSwan holds the tunnel connection for it, and must answer SERVFAIL (and
 * register nothing) when charon refuses it. The real pipeline, ServerChannels and
 * ChannelManager, with the fake charon on a unix socket.
 */
import { afterEach, beforeEach, describe, expect, test } from 'bun:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ChannelManager } from '../../src/ipsec/channel-manager.ts';
import { FakeCharon } from '../../src/ipsec/fake-charon.ts';
import { ViciClient } from '../../src/ipsec/vici-client.ts';
import { Metrics } from '../../src/ops/metrics.ts';
import { ServerChannels, policyServerLink } from '../../src/policy-server/proxy-side.ts';
import { Policy } from '../../src/policy/policy.ts';
import { newProxyCounters } from '../../src/proxy/proxy-counters.ts';
import { startProxy, type Proxy } from '../../src/proxy/proxy.ts';
import type { Registration } from '../../src/registry/types.ts';
import { realClock } from '../../src/util/clock.ts';
import { silentLogger } from '../../src/util/log.ts';
import { RecordingRegistry } from '../proxy/doubles.ts';
import { CLIENT_502, CLIENT_503, GW_KEY, KOJIMA, KOJIMA_ADDR, ask, figure6Config, figure6State, keyring, makeQuery, serve, startServer, type Served } from './helpers.ts';

const CONN = 'dnsseal-tunnel-server:hub-a';
const RCODE = (a: Uint8Array) => a[3]! & 0x0f;

/** Notes, at the moment each registration arrives, whether charon holds the tunnel for it. */
class SnapshotRegistry extends RecordingRegistry {
  readonly atRegister: Array<{ channel: string; loaded: boolean; trapped: boolean }> = [];
  constructor(private readonly fake: () => FakeCharon) {
    super();
  }
  override async register(reg: Registration): Promise<void> {
    const f = this.fake();
    this.atRegister.push({ channel: reg.channel.name, loaded: f.conns.has(CONN), trapped: f.installed.has(CONN) });
    return super.register(reg);
  }
}

describe('policy-server tunnel channel through the proxy', () => {
  let dir: string;
  let fake: FakeCharon;
  let vici: ViciClient;
  let mgr: ChannelManager;
  let srv: Served;
  let proxy: Proxy;
  let reg: SnapshotRegistry;

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'dnsseal-st-'));
    fake = await FakeCharon.start(join(dir, 'charon.vici'));
    vici = new ViciClient({ socketPath: fake.socketPath, timeoutMs: 2_000, reconnectMinMs: 20 });
    // No tunnel channels at start: the proxy has no rules of its own (figure 6 gateway).
    mgr = new ChannelManager({ vici, mode: 'gateway', lan: ['127.0.0.0/8'], channels: [], log: silentLogger, metrics: new Metrics(), clock: realClock });
    await mgr.start();
    reg = new SnapshotRegistry(() => fake);
    const local = figure6Config();
    local.tables = local.tables.map((t) => ({ ...t, rules: [] }));
    const m = mgr;
    const channels = new ServerChannels(undefined, (spec) => m.ensureChannel(spec));
    srv = await serve(startServer(figure6State(), realClock).handle);
    proxy = await startProxy({
      listen: ['127.0.0.1:0'],
      upstreams: [{ name: 'default', servers: [{ transport: 'dns', address: '127.0.0.1', port: srv.udp.port }], tsigKey: GW_KEY.name }],
      upstreamTimeoutMs: 1000,
      canary: 'nxdomain',
      policy: Policy.fromConfig(local),
      registry: reg,
      counters: newProxyCounters(),
      clock: realClock,
      log: silentLogger,
      upstreamPoolSize: 2,
      policyServer: policyServerLink({ keyring, keyName: GW_KEY.name, clock: realClock, channels }, 'default', { sendClientSubnet: true }),
    });
  });
  afterEach(async () => {
    await proxy.close();
    await srv.close();
    mgr.close();
    vici.close();
    await fake.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('loads and traps the tunnel connection before registering when the server first names the channel', async () => {
    expect(fake.conns.size).toBe(0);
    const a = await ask('udp', proxy.listeners[0]!.port, makeQuery(KOJIMA), CLIENT_502);
    expect(RCODE(a)).toBe(0);
    expect(reg.atRegister).toEqual([{ channel: 'server:hub-a', loaded: true, trapped: true }]);
    expect(reg.registrations[0]).toMatchObject({ group: 502, addrs: [KOJIMA_ADDR], channel: { name: 'server:hub-a', id: 41736 } });
    expect(fake.conns.get(CONN)!.remote_addrs).toEqual(['192.0.2.1']);
    // Later answers under the channel reuse the connection.
    expect(RCODE(await ask('tcp', proxy.listeners[0]!.port, makeQuery(KOJIMA, { id: 7 }), CLIENT_502))).toBe(0);
    expect(fake.commands.filter((c) => c === 'load-conn')).toHaveLength(1);
  });

  test('loads no connection up front when the server names a peer channel', async () => {
    const a = await ask('udp', proxy.listeners[0]!.port, makeQuery(KOJIMA), CLIENT_503);
    expect(RCODE(a)).toBe(0);
    expect(reg.registrations.map((r) => r.channel.name)).toEqual(['server:peer-b']);
    expect(fake.conns.size).toBe(0); // the registry's peer hooks load per address (not wired here)
  });

  test('answers SERVFAIL and registers nothing when charon cannot load the tunnel, then recovers', async () => {
    await fake.stop();
    const a = await ask('udp', proxy.listeners[0]!.port, makeQuery(KOJIMA), CLIENT_502, 3000);
    expect(RCODE(a)).toBe(2);
    expect(reg.registrations).toEqual([]);
    expect(reg.atRegister).toEqual([]);
    // Not remembered as loaded: once charon is back the next query loads it and is answered.
    await fake.restart();
    let rcode = -1;
    for (let i = 0; i < 50 && rcode !== 0; i++) {
      rcode = RCODE(await ask('udp', proxy.listeners[0]!.port, makeQuery(KOJIMA, { id: 100 + i }), CLIENT_502, 3000));
      if (rcode !== 0) await Bun.sleep(20);
    }
    expect(rcode).toBe(0);
    expect(reg.atRegister).toEqual([{ channel: 'server:hub-a', loaded: true, trapped: true }]);
  });
});
