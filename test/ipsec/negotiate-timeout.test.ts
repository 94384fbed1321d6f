import { afterEach, beforeEach, describe, expect, test } from 'bun:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ChannelManager } from '../../src/ipsec/channel-manager.ts';
import { FakeCharon } from '../../src/ipsec/fake-charon.ts';
import { ViciClient } from '../../src/ipsec/vici-client.ts';
import { Metrics } from '../../src/ops/metrics.ts';
import { buildChannel } from '../../src/policy/channel.ts';
import { ServerChannels } from '../../src/policy-server/proxy-side.ts';
import type { ChannelSpec } from '../../src/policy/types.ts';
import { realClock } from '../../src/util/clock.ts';
import { DnssealError } from '../../src/util/errors.ts';
import { silentLogger } from '../../src/util/log.ts';
import { rejection } from './helpers.ts';

// Specs as the config loader builds them: `quick` has `negotiate_timeout: 300`, `partner` none.
const quick = buildChannel('quick', { kind: 'peer', negotiate_timeout: 300 }, 1);
const partner = buildChannel('partner', { kind: 'peer' }, 2);

/** The wait charon was given, from the fake's "not established after Nms" errmsg. */
const charonWait = (e: DnssealError) => Number(/not established after (\d+)ms/.exec(e.message)?.[1] ?? NaN);

describe('ipsec/channel-manager negotiate_timeout', () => {
  let dir: string;
  let fake: FakeCharon;
  let vici: ViciClient;
  let mgr: ChannelManager | undefined;
  const make = (channels: ChannelSpec[], negotiateTimeoutMs?: number) =>
    new ChannelManager({ vici, mode: 'host', lan: [], channels, log: silentLogger, metrics: new Metrics(), clock: realClock, localId: 'router.test', negotiateTimeoutMs });

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'dnsseal-nt-'));
    fake = await FakeCharon.start(join(dir, 'charon.vici'));
    vici = new ViciClient({ socketPath: fake.socketPath, timeoutMs: 2_000, reconnectMinMs: 20 });
  });
  afterEach(async () => {
    mgr?.close();
    mgr = undefined;
    vici.close();
    await fake.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('gives up after the channel timeout while a channel without one still waits the default', async () => {
    fake.outcome = () => 'unreachable'; // charon runs into the timeout it was given
    mgr = make([quick, partner]);
    await mgr.start();
    const t0 = Date.now();
    let partnerDone = false;
    const slow = rejection(mgr.peerAdded(partner, '192.0.2.3', 'b.partner.test')).finally(() => (partnerDone = true));
    const fast = await rejection(mgr.peerAdded(quick, '192.0.2.2', 'a.quick.test'));
    const fastMs = Date.now() - t0;
    expect(fast.code).toBe('peer_not_ready');
    expect(charonWait(fast)).toBeGreaterThan(200);
    expect(charonWait(fast)).toBeLessThanOrEqual(300);
    expect(fastMs).toBeGreaterThanOrEqual(250);
    expect(fastMs).toBeLessThan(1_500);
    expect(partnerDone).toBe(false); // the default channel is still waiting for its SA
    const e = await slow;
    expect(e.code).toBe('peer_not_ready');
    expect(charonWait(e)).toBeGreaterThan(1_800);
    expect(charonWait(e)).toBeLessThanOrEqual(2_000);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1_800);
  });

  test('stops waiting at the channel timeout when charon never answers', async () => {
    mgr = make([quick, partner], 5_000);
    await mgr.start();
    fake.stalled = true;
    let partnerDone = false;
    const slow = mgr.peerAdded(partner, '192.0.2.3', 'b.partner.test').catch(() => {}).finally(() => (partnerDone = true));
    const t0 = Date.now();
    const e = await rejection(mgr.peerAdded(quick, '192.0.2.2', 'a.quick.test'));
    expect(Date.now() - t0).toBeLessThan(2_000);
    expect(e.message).toBe('ipsec: channel quick: no SA with a.quick.test (192.0.2.2): ipsec: SA not up within 300 ms');
    expect(partnerDone).toBe(false); // waits the daemon-wide 5000 ms
    mgr.close();
    vici.close();
    await slow;
  });

  test('uses the daemon-wide wait for a channel a policy server named (the option carries no timeout)', async () => {
    const server = new ServerChannels().resolve({ name: 'far', kind: 'peer', identity: '%name', esp: 'aes256gcm16' });
    expect(server.negotiateTimeoutMs).toBeUndefined();
    fake.outcome = () => 'unreachable';
    mgr = make([quick], 400);
    await mgr.start();
    await mgr.ensureChannel(server);
    const e = await rejection(mgr.peerAdded(server, '192.0.2.4', 'c.far.test'));
    expect(charonWait(e)).toBeGreaterThan(300);
    expect(charonWait(e)).toBeLessThanOrEqual(400);
  });
});
