/**
 * The channel manager plugged into the real registry (fake data path, fake charon): a peer
 * whose SA does not come up must leave no address in the map, so the proxy answers SERVFAIL
 * and nothing can flow in clear; one whose SA is up is registered.
 */
import { afterEach, beforeEach, describe, expect, test } from 'bun:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FakeDatapath } from '../../src/datapath/fake.ts';
import { ChannelManager } from '../../src/ipsec/channel-manager.ts';
import { peerConnName } from '../../src/ipsec/conn-config.ts';
import { FakeCharon, type FakeOutcome } from '../../src/ipsec/fake-charon.ts';
import { ViciClient } from '../../src/ipsec/vici-client.ts';
import { Metrics } from '../../src/ops/metrics.ts';
import { channelMark, type ChannelSpec } from '../../src/policy/types.ts';
import { Registry } from '../../src/registry/registry.ts';
import { FakeClock, realClock } from '../../src/util/clock.ts';
import { DnssealError } from '../../src/util/errors.ts';
import { silentLogger } from '../../src/util/log.ts';
import { until } from './helpers.ts';

const partner: ChannelSpec = { name: 'partner', id: 2, mark: channelMark(2), protocol: 'ipsec', kind: 'peer', identity: '%name', esp: 'aes256gcm16' };

describe('ipsec/channel-manager with the registry', () => {
  let dir: string;
  let fake: FakeCharon;
  let vici: ViciClient;
  let mgr: ChannelManager;
  let dp: FakeDatapath;
  let registry: Registry;

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'dnsseal-rh-'));
    fake = await FakeCharon.start(join(dir, 'charon.vici'));
    vici = new ViciClient({ socketPath: fake.socketPath });
    mgr = new ChannelManager({ vici, mode: 'host', lan: [], channels: [partner], log: silentLogger, metrics: new Metrics(), clock: realClock, negotiateTimeoutMs: 300 });
    await mgr.start();
    const clock = new FakeClock();
    dp = new FakeDatapath({ clock });
    registry = new Registry({ datapath: dp, clock, log: silentLogger, metrics: new Metrics(), minHoldMs: 1_000, idleMs: 1_000, hooks: mgr, channels: [partner] });
  });
  afterEach(async () => {
    mgr.close();
    vici.close();
    await fake.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const register = () =>
    registry.register({ group: 0, channel: partner, names: ['peer.partner.test'], addrs: ['192.0.2.2'], ttlS: 30, queryName: 'peer.partner.test' });

  test('registers the address with its SA up when the peer negotiates', async () => {
    await register();
    expect(dp.list().map((e) => e.key.addr)).toEqual(['192.0.2.2']);
    expect(fake.sas.get(peerConnName(partner, '192.0.2.2'))?.children.size).toBe(1);
  });

  test.each<FakeOutcome>(['no-proposal', 'auth-failed', 'unreachable'])(
    'keeps the address in the map, blocked, and no connection in charon when the peer outcome is %s',
    async (outcome) => {
      fake.outcome = () => outcome;
      let err: unknown;
      await register().catch((e) => (err = e));
      expect(err).toBeInstanceOf(DnssealError);
      // Fail closed: still protected (the guard drops its traffic), and marked as such.
      expect(dp.list().map((e) => e.key.addr)).toEqual(['192.0.2.2']);
      expect(registry.get(0, '192.0.2.2')!.blocked).toBeString();
      const conn = peerConnName(partner, '192.0.2.2');
      await until(() => !fake.conns.has(conn), undefined, 'the failed peer connection to be unloaded (in the background)');
      // and the next answer tries again (the failed peer was forgotten on both sides)
      fake.outcome = () => 'up';
      await register();
      expect(registry.get(0, '192.0.2.2')!.blocked).toBeUndefined();
      expect(fake.sas.get(conn)?.children.size).toBe(1);
    },
  );
});
