/**
 * Channels first seen at runtime (a policy server named them, #5): `ensureChannel` loads a
 * server tunnel channel's connection exactly as `start()` loads a configured one, before it
 * resolves; idempotent; a failure rejects and leaves nothing half-loaded; charon restarts and
 * SA events treat it like a start-up channel.
 */
import { afterEach, beforeEach, describe, expect, test } from 'bun:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ChannelManager, NoIpsec, type IpsecChannels } from '../../src/ipsec/channel-manager.ts';
import { tunnelConnName } from '../../src/ipsec/conn-config.ts';
import { FakeCharon } from '../../src/ipsec/fake-charon.ts';
import { ViciClient } from '../../src/ipsec/vici-client.ts';
import { Metrics } from '../../src/ops/metrics.ts';
import { channelMark, type ChannelSpec } from '../../src/policy/types.ts';
import { realClock } from '../../src/util/clock.ts';
import { DnssealError } from '../../src/util/errors.ts';
import { silentLogger } from '../../src/util/log.ts';
import { until, rejection } from './helpers.ts';

const ID = 41736;
const serverHub: ChannelSpec = {
  name: 'server:hub-a',
  id: ID,
  mark: channelMark(ID),
  protocol: 'ipsec',
  kind: 'tunnel',
  gateway: '192.0.2.1',
  identity: 'hub-a.nec.example',
  esp: 'aes256gcm16',
};
const serverPeer: ChannelSpec = { name: 'server:peer-b', id: 35015, mark: channelMark(35015), protocol: 'ipsec', kind: 'peer', identity: '%name', esp: 'chacha20poly1305' };
const CONN = tunnelConnName(serverHub);

describe('ipsec/channel-manager ensureChannel', () => {
  let dir: string;
  let fake: FakeCharon;
  let vici: ViciClient;
  let metrics: Metrics;
  let mgr: ChannelManager;
  const make = (channels: ChannelSpec[], v: ViciClient = vici) =>
    new ChannelManager({ vici: v, mode: 'gateway', lan: ['10.1.0.0/16'], channels, log: silentLogger, metrics, clock: realClock, localId: 'router.test' });
  const loads = () => fake.commands.filter((c) => c === 'load-conn').length;

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'dnsseal-rc-'));
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

  test('loads and traps a server tunnel channel before it resolves when first seen', async () => {
    mgr = make([]);
    await mgr.start();
    expect(fake.conns.size).toBe(0);
    let atResolve: [boolean, boolean] | undefined;
    await mgr.ensureChannel(serverHub).then(() => (atResolve = [fake.conns.has(CONN), fake.installed.has(CONN)]));
    expect(atResolve).toEqual([true, true]);
    // The background initiate brings it up, and status lists it like a start-up channel.
    await until(() => mgr.status().some((s) => s.channel === 'server:hub-a' && s.up));
    expect(mgr.status()).toEqual([{ channel: 'server:hub-a', id: ID, kind: 'tunnel', up: true, peers: 0 }]);
  });

  test('loads the same connection body as a start-up channel when the spec is the same', async () => {
    mgr = make([]);
    await mgr.start();
    await mgr.ensureChannel(serverHub);
    const runtimeBody = fake.conns.get(CONN);
    mgr.close();
    await fake.restart();
    const v2 = new ViciClient({ socketPath: fake.socketPath, timeoutMs: 2_000, reconnectMinMs: 20 });
    const atStart = make([serverHub], v2);
    try {
      await atStart.start();
      expect(fake.conns.get(CONN)).toEqual(runtimeBody!);
    } finally {
      atStart.close();
      v2.close();
    }
  });

  test('loads once when ensured again or concurrently', async () => {
    mgr = make([]);
    await mgr.start();
    await Promise.all([mgr.ensureChannel(serverHub), mgr.ensureChannel(serverHub)]);
    await mgr.ensureChannel(serverHub);
    expect(loads()).toBe(1);
  });

  test('loads nothing when the channel was loaded at start', async () => {
    mgr = make([serverHub]);
    await mgr.start();
    await mgr.ensureChannel(serverHub);
    expect(loads()).toBe(1);
  });

  test('loads nothing up front when the channel is a peer channel', async () => {
    mgr = make([]);
    await mgr.start();
    await mgr.ensureChannel(serverPeer);
    expect(fake.conns.size).toBe(0);
    expect(mgr.status()).toEqual([{ channel: 'server:peer-b', id: 35015, kind: 'peer', up: false, peers: 0 }]);
  });

  test('rejects with charon errmsg and leaves nothing loaded when charon refuses the connection', async () => {
    mgr = make([]);
    await mgr.start();
    const bad = { ...serverHub, esp: 'foo128' };
    const e = await rejection(mgr.ensureChannel(bad));
    expect(e.code).toBe('tunnel_not_loaded');
    expect(e.message).toBe('ipsec: channel server:hub-a: tunnel connection not loaded: vici: load-conn failed: invalid value for: esp_proposals, config discarded');
    expect(fake.conns.has(CONN)).toBe(false);
    expect(mgr.status()).toEqual([]);
    // Not remembered as loaded: the next call tries again (and fails again).
    await rejection(mgr.ensureChannel(bad));
    expect(loads()).toBe(2);
  });

  test('rejects (fails closed) when charon is not running, and loads once it is back', async () => {
    mgr = make([]);
    await mgr.start();
    await fake.stop();
    const e = await rejection(mgr.ensureChannel(serverHub));
    expect(e.code).toBe('tunnel_not_loaded');
    expect(e.message).toStartWith('ipsec: channel server:hub-a: tunnel connection not loaded: vici: ');
    expect(fake.conns.size).toBe(0);
    await fake.restart();
    let ok = false;
    for (const end = Date.now() + 10_000; !ok && Date.now() < end; ) {
      ok = await mgr.ensureChannel(serverHub).then(
        () => true,
        () => false,
      );
      if (!ok) await Bun.sleep(20);
    }
    expect(ok, 'ensureChannel to succeed once charon is back (10 s)').toBe(true);
    expect(fake.installed.has(CONN)).toBe(true);
  });

  test('rejects without loading when the name is loaded for other settings', async () => {
    mgr = make([]);
    await mgr.start();
    await mgr.ensureChannel(serverHub);
    const moved = { ...serverHub, id: 40000, mark: channelMark(40000), gateway: '192.0.2.9' };
    const e = await rejection(mgr.ensureChannel(moved));
    expect(e.code).toBe('channel_conflict');
    expect(loads()).toBe(1);
    expect(fake.conns.get(CONN)!.remote_addrs).toEqual(['192.0.2.1']);
  });

  test('reloads a runtime tunnel channel when charon restarts', async () => {
    let linked = false;
    vici.onLink((up) => (linked ||= up));
    mgr = make([]);
    await mgr.start();
    await mgr.ensureChannel(serverHub);
    // the restart is noticed on the event connection: it must be up before charon goes
    await until(() => linked, undefined, 'the VICI event connection');
    await fake.restart();
    expect(fake.conns.size).toBe(0);
    await until(() => metrics.expose().includes('dnsseal_ipsec_resync_total{outcome="ok"} 1'), undefined, 'the resync after the restart');
    expect(fake.conns.has(CONN)).toBe(true);
    expect(fake.installed.has(CONN)).toBe(true);
  });

  test('reports a runtime tunnel channel down when its CHILD_SA goes down', async () => {
    const seen: Array<[string, boolean]> = [];
    mgr = new ChannelManager({
      vici,
      mode: 'host',
      lan: [],
      channels: [],
      log: silentLogger,
      metrics,
      clock: realClock,
      onChannelState: (ch, up) => seen.push([ch.name, up]),
    });
    await mgr.start();
    await mgr.ensureChannel(serverHub);
    await until(() => mgr.status()[0]?.up === true);
    await vici.terminate({ ike: CONN });
    await until(() => mgr.status()[0]?.up === false);
    expect(seen).toEqual([
      ['server:hub-a', true],
      ['server:hub-a', false],
    ]);
  });

  test('the no-op backend resolves at once when asked', async () => {
    const none: IpsecChannels = new NoIpsec();
    await none.ensureChannel(serverHub);
  });
});
