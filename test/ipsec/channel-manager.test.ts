import { afterEach, beforeEach, describe, expect, test } from 'bun:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Config } from '../../src/config/types.ts';
import { ChannelManager, NoIpsec } from '../../src/ipsec/channel-manager.ts';
import { peerConnName, tunnelConnName } from '../../src/ipsec/conn-config.ts';
import { FakeCharon, type FakeOutcome } from '../../src/ipsec/fake-charon.ts';
import { createIpsecChannels } from '../../src/ipsec/ipsec-factory.ts';
import { teardownIpsec } from '../../src/ipsec/teardown.ts';
import { ViciClient } from '../../src/ipsec/vici-client.ts';
import { Metrics } from '../../src/ops/metrics.ts';
import { channelMark, type ChannelSpec } from '../../src/policy/types.ts';
import { realClock } from '../../src/util/clock.ts';
import { DnssealError } from '../../src/util/errors.ts';
import { silentLogger } from '../../src/util/log.ts';
import { until, rejection } from './helpers.ts';

const hub: ChannelSpec = { name: 'hub', id: 1, mark: channelMark(1), protocol: 'ipsec', kind: 'tunnel', gateway: '203.0.113.1', identity: 'hub.test', esp: 'aes256gcm16' };
const partner: ChannelSpec = { name: 'partner', id: 2, mark: channelMark(2), protocol: 'ipsec', kind: 'peer', identity: '%name', esp: 'aes256gcm16' };
const lazy: ChannelSpec = { ...partner, name: 'lazy', id: 3, mark: channelMark(3), negotiate: 'on-traffic' };

describe('ipsec/channel-manager', () => {
  let dir: string;
  let fake: FakeCharon;
  let vici: ViciClient;
  let metrics: Metrics;
  let mgr: ChannelManager;
  const make = (channels: ChannelSpec[], extra: Partial<ConstructorParameters<typeof ChannelManager>[0]> = {}) =>
    new ChannelManager({ vici, mode: 'host', lan: [], channels, log: silentLogger, metrics, clock: realClock, localId: 'router.test', ...extra });

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'dnsseal-cm-'));
    fake = await FakeCharon.start(join(dir, 'charon.vici'));
    vici = new ViciClient({ socketPath: fake.socketPath, timeoutMs: 2_000, reconnectMinMs: 20 });
    metrics = new Metrics();
  });
  afterEach(async () => {
    mgr?.close();
    vici.close();
    await fake.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('loads, traps and initiates every tunnel channel when started', async () => {
    mgr = make([hub, partner]);
    await mgr.start();
    const conn = tunnelConnName(hub);
    expect([...fake.conns.keys()]).toEqual([conn]);
    expect(fake.installed.has(conn)).toBe(true);
    await until(() => mgr.status()[0]!.up);
    expect(mgr.status()).toEqual([
      { channel: 'hub', id: 1, kind: 'tunnel', up: true, peers: 0 },
      { channel: 'partner', id: 2, kind: 'peer', up: false, peers: 0 },
    ]);
    expect(metrics.expose()).toContain('dnsseal_ipsec_channel_up{channel="hub"} 1');
  });

  test('rejects start with charon errmsg when a tunnel channel cannot be loaded', async () => {
    mgr = make([{ ...hub, esp: 'foo128' }]);
    const e = await rejection(mgr.start());
    expect(e.message).toBe('vici: load-conn failed: invalid value for: esp_proposals, config discarded');
  });

  test('resolves peerAdded only after the CHILD_SA is up when negotiating before the answer', async () => {
    mgr = make([partner]);
    await mgr.start();
    await mgr.peerAdded(partner, '192.0.2.2', 'peer.partner.test');
    const conn = peerConnName(partner, '192.0.2.2');
    expect(fake.sas.get(conn)?.children.size).toBe(1);
    expect(fake.installed.has(conn)).toBe(true);
    expect(((fake.conns.get(conn) as any).remote as any).id).toBe('peer.partner.test');
    await until(() => mgr.status()[0]!.peers === 1);
    expect(metrics.expose()).toContain('dnsseal_ipsec_peer_setup_total{channel="partner",outcome="up"} 1');
  });

  test.each<[FakeOutcome, string]>([
    ['no-proposal', "establishing CHILD_SA 'dnsseal-peer-partner-192.0.2.2' failed"],
    ['auth-failed', "establishing CHILD_SA 'dnsseal-peer-partner-192.0.2.2' failed"],
    ['unreachable', "CHILD_SA 'dnsseal-peer-partner-192.0.2.2' not established after"],
  ])('rejects peerAdded and removes the connection when the peer outcome is %s', async (outcome, errmsg) => {
    fake.outcome = () => outcome;
    mgr = make([partner], { negotiateTimeoutMs: 300 });
    await mgr.start();
    const t0 = Date.now();
    const e = await rejection(mgr.peerAdded(partner, '192.0.2.2', 'peer.partner.test'));
    expect(Date.now() - t0).toBeLessThan(1_500);
    expect(e.code).toBe('peer_not_ready');
    expect(e.message).toStartWith('ipsec: channel partner: no SA with peer.partner.test (192.0.2.2): vici: initiate failed: ');
    expect(e.message).toContain(errmsg);
    await until(() => fake.conns.size === 0 && fake.installed.size === 0 && fake.sas.size === 0);
    expect(metrics.expose()).toContain('dnsseal_ipsec_peer_setup_total{channel="partner",outcome="error"} 1');
  });

  test('rejects peerAdded within the bounded wait when charon stops answering', async () => {
    mgr = make([partner], { negotiateTimeoutMs: 200 });
    await mgr.start();
    fake.stalled = true;
    const t0 = Date.now();
    const e = await rejection(mgr.peerAdded(partner, '192.0.2.2', 'peer.partner.test'));
    // the manager's own deadline is 200 + 500 ms; the VICI client's timeout (2 s) must not be what ends it
    expect(Date.now() - t0).toBeLessThan(1_500);
    expect(e.message).toBe('ipsec: channel partner: no SA with peer.partner.test (192.0.2.2): ipsec: SA not up within 200 ms');
    expect(metrics.expose()).toContain('dnsseal_ipsec_peer_setup_total{channel="partner",outcome="timeout"} 1');
  });

  test('rejects peerAdded (fails closed) when charon is not running', async () => {
    await fake.stop();
    mgr = make([partner]);
    const e = await rejection(mgr.peerAdded(partner, '192.0.2.2', 'peer.partner.test'));
    expect(e.message).toContain('vici: cannot connect to');
  });

  test('starts waiting and loads the tunnels once charon appears when charon is not running at start', async () => {
    await fake.stop();
    mgr = make([hub, partner]);
    await mgr.start(); // resolves: DNS must not wait for charon
    const waiting = mgr.link();
    expect(waiting.state).toBe('waiting');
    expect(waiting.state === 'waiting' && waiting.lastError).toContain(fake.socketPath);
    expect(metrics.expose()).toContain('dnsseal_ipsec_vici_up 0');
    // meanwhile a peer cannot be set up: fail closed
    expect((await rejection(mgr.peerAdded(partner, '192.0.2.2', 'peer.partner.test'))).code).toBe('peer_not_ready');
    const back = await FakeCharon.start(fake.socketPath);
    fake = back;
    await until(() => fake.installed.has(tunnelConnName(hub)), 5_000);
    expect([...fake.conns.keys()]).toEqual([tunnelConnName(hub)]);
    expect(mgr.link().state).toBe('connected');
    expect(metrics.expose()).toContain('dnsseal_ipsec_vici_up 1');
    expect(metrics.expose()).toContain('dnsseal_ipsec_resync_total{outcome="ok"} 1');
    await until(() => mgr.status()[0]!.up);
  });

  test('goes back to waiting with the error and reloads when charon restarts', async () => {
    mgr = make([hub]);
    await mgr.start();
    await until(() => fake.installed.has(tunnelConnName(hub)));
    expect(mgr.link().state).toBe('connected');
    await fake.stop();
    await until(() => mgr.link().state === 'waiting');
    fake = await FakeCharon.start(fake.socketPath);
    await until(() => fake.installed.has(tunnelConnName(hub)), 5_000);
    expect(mgr.link().state).toBe('connected');
  });

  test('does not initiate again when a restarted daemon re-adds a peer whose SA is up', async () => {
    mgr = make([partner]);
    await mgr.start();
    await mgr.peerAdded(partner, '192.0.2.2', 'a.test');
    mgr.close();
    mgr = make([partner]);
    await mgr.start();
    await mgr.peerAdded(partner, '192.0.2.2', 'a.test');
    expect(fake.commands.filter((c) => c === 'initiate').length).toBe(1);
    expect(fake.sas.get(peerConnName(partner, '192.0.2.2'))?.children.size).toBe(1);
  });

  test('removes the connection a previous daemon loaded when peerRemoved names a peer it does not hold', async () => {
    mgr = make([partner]);
    await mgr.start();
    await mgr.peerAdded(partner, '192.0.2.2', 'a.test');
    mgr.close();
    mgr = make([partner]);
    await mgr.start();
    mgr.peerRemoved(partner, '192.0.2.2');
    await until(() => fake.conns.size === 0 && fake.sas.size === 0 && fake.installed.size === 0);
  });

  test('does nothing harmful when peerRemoved names a peer that was never loaded', async () => {
    mgr = make([partner]);
    await mgr.start();
    mgr.peerRemoved(partner, '192.0.2.99');
    await until(() => fake.commands.includes('unload-conn'), undefined, 'the unload-conn of the adopted name');
    expect(fake.conns.size).toBe(0);
  });

  test('traps without initiating when the channel negotiates on traffic', async () => {
    mgr = make([lazy]);
    await mgr.start();
    await mgr.peerAdded(lazy, '192.0.2.3', 'lazy.test');
    expect(fake.installed.has(peerConnName(lazy, '192.0.2.3'))).toBe(true);
    expect(fake.commands).not.toContain('initiate');
  });

  test('keeps the connection until the last holder lets go when several groups add one address', async () => {
    mgr = make([partner]);
    await mgr.start();
    await Promise.all([mgr.peerAdded(partner, '192.0.2.2', 'a.test'), mgr.peerAdded(partner, '192.0.2.2', 'a.test')]);
    expect(fake.commands.filter((c) => c === 'load-conn').length).toBe(1);
    mgr.peerRemoved(partner, '192.0.2.2');
    await Bun.sleep(50); // a window for a wrong removal; the unload count below catches a late one
    expect(fake.conns.size).toBe(1);
    mgr.peerRemoved(partner, '192.0.2.2');
    await until(() => fake.conns.size === 0 && fake.sas.size === 0 && fake.installed.size === 0);
    expect(fake.commands.filter((c) => c === 'unload-conn').length).toBe(1);
  });

  test('removes the connection after set-up when the peer is removed while negotiating', async () => {
    mgr = make([partner]);
    await mgr.start();
    const added = mgr.peerAdded(partner, '192.0.2.2', 'a.test');
    mgr.peerRemoved(partner, '192.0.2.2');
    await added;
    await until(() => fake.conns.size === 0 && fake.sas.size === 0);
  });

  test('loads the connection again when re-added right after removal', async () => {
    mgr = make([partner]);
    await mgr.start();
    await mgr.peerAdded(partner, '192.0.2.2', 'a.test');
    mgr.peerRemoved(partner, '192.0.2.2');
    await mgr.peerAdded(partner, '192.0.2.2', 'a.test');
    // the removal ran first and the load after it; then a window for a stray late removal
    expect(fake.commands.indexOf('unload-conn')).toBeGreaterThan(-1);
    expect(fake.commands.lastIndexOf('load-conn')).toBeGreaterThan(fake.commands.indexOf('unload-conn'));
    await Bun.sleep(50);
    expect(fake.conns.has(peerConnName(partner, '192.0.2.2'))).toBe(true);
    expect(fake.installed.has(peerConnName(partner, '192.0.2.2'))).toBe(true);
  });

  test('reloads tunnel and peer connections when charon restarts', async () => {
    let linked = false;
    vici.onLink((up) => (linked ||= up));
    mgr = make([hub, partner]);
    await mgr.start();
    await mgr.peerAdded(partner, '192.0.2.2', 'a.test');
    // the restart is noticed on the event connection: it must be up before charon goes
    await until(() => linked, undefined, 'the VICI event connection');
    await fake.restart();
    expect(fake.conns.size).toBe(0);
    await until(() => metrics.expose().includes('dnsseal_ipsec_resync_total{outcome="ok"} 1'), undefined, 'the resync after the restart');
    expect(fake.conns.size).toBe(2);
    expect(fake.installed.size).toBe(2);
  });

  test('reports the tunnel down when its CHILD_SA goes down', async () => {
    const seen: boolean[] = [];
    mgr = make([hub], { onChannelState: (_ch, up) => seen.push(up) });
    await mgr.start();
    await until(() => mgr.status()[0]!.up);
    await vici.terminate({ ike: tunnelConnName(hub) });
    await until(() => !mgr.status()[0]!.up);
    expect(seen).toEqual([true, false]);
  });
});

describe('ipsec/teardown', () => {
  test('unloads only dnsseal- connections when tearing down', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dnsseal-td-'));
    const fake = await FakeCharon.start(join(dir, 'charon.vici'));
    const vici = new ViciClient({ socketPath: fake.socketPath });
    try {
      const mgr = new ChannelManager({ vici, mode: 'gateway', lan: ['10.1.0.0/24'], channels: [hub, partner], log: silentLogger, metrics: new Metrics(), clock: realClock });
      await mgr.start();
      await mgr.peerAdded(partner, '192.0.2.2', 'a.test');
      mgr.close();
      await vici.loadConn('someone-else', { remote_addrs: ['192.0.2.50'] });
      const lines = await teardownIpsec(vici, silentLogger);
      expect(lines.sort()).toEqual(['ipsec connection dnsseal-peer-partner-192.0.2.2', 'ipsec connection dnsseal-tunnel-hub']);
      expect([...fake.conns.keys()]).toEqual(['someone-else']);
      expect(fake.installed.size).toBe(0);
      expect(fake.sas.size).toBe(0);
      expect(await teardownIpsec(vici, silentLogger)).toEqual([]);
    } finally {
      vici.close();
      await fake.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('removes nothing and does not fail when charon is not running', async () => {
    const vici = new ViciClient({ socketPath: join(tmpdir(), 'dnsseal-no-such-charon.vici') });
    expect(await teardownIpsec(vici, silentLogger)).toEqual([]);
    vici.close();
  });
});

describe('ipsec/ipsec-factory', () => {
  const cfg = (datapath: Config['datapath']) => ({ datapath, mode: 'host', lan: [], channels: [partner] }) as unknown as Config;

  test('chooses the no-op backend when the data path is none', async () => {
    const ch = createIpsecChannels(cfg('none'), { log: silentLogger, metrics: new Metrics(), clock: realClock });
    expect(ch).toBeInstanceOf(NoIpsec);
    expect(ch.kind).toBe('none');
    await ch.start();
    await ch.peerAdded(partner, '192.0.2.2', 'a.test');
    ch.peerRemoved(partner, '192.0.2.2');
    expect(ch.status()).toEqual([{ channel: 'partner', id: 2, kind: 'peer', up: false, peers: 0 }]);
  });

  test('chooses strongSwan on the given socket when the data path is ebpf', () => {
    const ch = createIpsecChannels(cfg('ebpf'), { log: silentLogger, metrics: new Metrics(), clock: realClock, viciSocket: '/nonexistent/charon.vici' });
    expect(ch).toBeInstanceOf(ChannelManager);
    expect(ch.kind).toBe('strongswan');
    ch.close();
  });
});
