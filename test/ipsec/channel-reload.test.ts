/**
 * The configured channels changed by a reload (issue 12), against the fake charon:
 * `prepareChannels` loads a new tunnel (and only that) before anything runs with it;
 * `abortChannels` unloads it again; after `commitChannels`, `settleChannels` replaces a changed
 * tunnel (new settings, new SA) and the live connections of a changed peer channel, unloads a
 * removed tunnel, and touches nothing else; with charon away a new tunnel is loaded when it is
 * back, with the others.
 */
import { afterEach, beforeEach, describe, expect, test } from 'bun:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { diffChannels } from '../../src/ipsec/channel-changes.ts';
import { ChannelManager } from '../../src/ipsec/channel-manager.ts';
import { peerConnName, tunnelConnName } from '../../src/ipsec/conn-config.ts';
import { FakeCharon } from '../../src/ipsec/fake-charon.ts';
import { ViciClient } from '../../src/ipsec/vici-client.ts';
import { Metrics } from '../../src/ops/metrics.ts';
import { channelMark, type ChannelSpec } from '../../src/policy/types.ts';
import { realClock } from '../../src/util/clock.ts';
import { silentLogger } from '../../src/util/log.ts';
import { rejection, until } from './helpers.ts';

const tunnel = (name: string, id: number, gateway: string): ChannelSpec => ({ name, id, mark: channelMark(id), protocol: 'ipsec', kind: 'tunnel', gateway, identity: gateway, esp: 'aes256gcm16' });
const peer = (name: string, id: number, esp = 'aes256gcm16'): ChannelSpec => ({ name, id, mark: channelMark(id), protocol: 'ipsec', kind: 'peer', identity: '%name', esp, negotiate: 'before-answer' });
const HUB = tunnel('hub', 1, '192.0.2.1');
const LAB = tunnel('lab', 2, '192.0.2.3');
const PARTNER = peer('partner', 3);

describe('ipsec/channel-manager reload of channels', () => {
  let dir: string;
  let fake: FakeCharon;
  let vici: ViciClient;
  let mgr: ChannelManager;
  const make = (channels: ChannelSpec[]) =>
    new ChannelManager({ vici, mode: 'host', lan: [], channels, log: silentLogger, metrics: new Metrics(), clock: realClock });
  const conn = (c: ChannelSpec) => tunnelConnName(c);

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'dnsseal-chr-'));
    fake = await FakeCharon.start(join(dir, 'charon.vici'));
    vici = new ViciClient({ socketPath: fake.socketPath, timeoutMs: 2_000, reconnectMinMs: 20 });
  });
  afterEach(async () => {
    mgr?.close();
    vici.close();
    await fake.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('tells added, removed, changed and unchanged channels apart by name', () => {
    const d = diffChannels([HUB, LAB, PARTNER], [HUB, { ...LAB, gateway: '192.0.2.4' }, tunnel('extra', 4, '192.0.2.9')]);
    expect(d.added.map((c) => c.name)).toEqual(['extra']);
    expect(d.removed.map((c) => c.name)).toEqual(['partner']);
    expect(d.changed.map((c) => [c.before.gateway, c.after.gateway])).toEqual([['192.0.2.3', '192.0.2.4']]);
    expect(d.unchanged).toEqual([HUB]);
  });

  test('loads a new tunnel in prepare and unloads it when the reload is aborted', async () => {
    mgr = make([HUB]);
    await mgr.start();
    const extra = tunnel('extra', 4, '192.0.2.9');
    const change = await mgr.prepareChannels([HUB, extra]);
    expect(fake.installed.has(conn(extra))).toBe(true);
    expect(mgr.status().map((s) => s.channel)).toEqual(['hub']); // not running with it yet
    await mgr.abortChannels(change);
    expect(fake.conns.has(conn(extra))).toBe(false);
    expect(fake.installed.has(conn(extra))).toBe(false);
  });

  test('throws, having unloaded the tunnels it loaded, when charon refuses one', async () => {
    mgr = make([HUB]);
    await mgr.start();
    fake.refuseConn = (name) => (name === 'dnsseal-tunnel-bad' ? 'invalid value for: remote_addrs, config discarded' : null);
    const err = await rejection(mgr.prepareChannels([HUB, tunnel('good', 4, '192.0.2.9'), tunnel('bad', 5, '192.0.2.10')]));
    expect(err.code).toBe('channel_refused');
    await until(() => !fake.conns.has('dnsseal-tunnel-good'));
    expect([...fake.conns.keys()]).toEqual([conn(HUB)]);
  });

  test('replaces a changed tunnel, unloads a removed one and leaves an unchanged one alone when settled', async () => {
    mgr = make([HUB, LAB, tunnel('old', 5, '192.0.2.5')]);
    await mgr.start();
    await until(() => [HUB, LAB].every((c) => fake.sas.get(conn(c))?.state === 'ESTABLISHED'));
    const hubConn = fake.conns.get(conn(HUB));
    const hubSa = fake.sas.get(conn(HUB))!.uniqueid;
    const labSa = fake.sas.get(conn(LAB))!.uniqueid;
    const lab2 = { ...LAB, gateway: '192.0.2.4', identity: '192.0.2.4' };
    const change = await mgr.prepareChannels([HUB, lab2]);
    mgr.commitChannels(change);
    expect(await mgr.settleChannels(change)).toEqual({ loaded: 0, replaced: 1, unloaded: 1 });
    expect(fake.conns.has('dnsseal-tunnel-old')).toBe(false);
    expect(fake.conns.get(conn(lab2))?.remote_addrs).toEqual(['192.0.2.4']);
    await until(() => fake.sas.get(conn(lab2))?.state === 'ESTABLISHED');
    expect(fake.sas.get(conn(lab2))!.uniqueid).not.toBe(labSa);
    expect(fake.conns.get(conn(HUB))).toBe(hubConn);
    expect(fake.sas.get(conn(HUB))!.uniqueid).toBe(hubSa);
    expect(mgr.status().map((s) => s.channel)).toEqual(['hub', 'lab']);
  });

  test('replaces the live connections of a changed peer channel with its new settings', async () => {
    mgr = make([PARTNER]);
    await mgr.start();
    await mgr.peerAdded(PARTNER, '203.0.113.20', 'x.partner.test');
    const name = peerConnName(PARTNER, '203.0.113.20');
    const before = fake.conns.get(name)!;
    const changed = peer('partner', 3, 'chacha20poly1305');
    const change = await mgr.prepareChannels([changed]);
    mgr.commitChannels(change);
    expect(await mgr.settleChannels(change)).toEqual({ loaded: 0, replaced: 1, unloaded: 0 });
    const after = fake.conns.get(name)!;
    expect(after).not.toBe(before);
    expect(JSON.stringify(after)).toContain('chacha20poly1305');
    expect(fake.installed.has(name)).toBe(true);
  });

  test('loads a tunnel added while charon was away once charon is back', async () => {
    await fake.stop();
    mgr = make([HUB]);
    await mgr.start();
    expect(mgr.link().state).toBe('waiting');
    const extra = tunnel('extra', 4, '192.0.2.9');
    const change = await mgr.prepareChannels([HUB, extra]);
    expect(change.loaded).toEqual([]);
    mgr.commitChannels(change);
    await mgr.settleChannels(change);
    fake = await FakeCharon.start(join(dir, 'charon.vici'));
    await until(() => fake.installed.has(conn(HUB)) && fake.installed.has(conn(extra)), 8_000);
  });
});
