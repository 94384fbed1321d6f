/**
 * Channels against real charons: a router and a peer, each in its own network and mount
 * namespace, X.509 (ECDSA) certificates made by `pki` now. On a kernel without ESP/GCM (the
 * build machines) the IKE_SA comes up and the CHILD_SA is refused: peerAdded must reject
 * (fail closed). On a kernel with ESP (the lab guest) the CHILD_SA must come up instead.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { ChannelManager } from '../../src/ipsec/channel-manager.ts';
import { peerConnName, tunnelConnName } from '../../src/ipsec/conn-config.ts';
import { teardownIpsec } from '../../src/ipsec/teardown.ts';
import { ViciClient } from '../../src/ipsec/vici-client.ts';
import type { ViciMessage } from '../../src/ipsec/vici-codec.ts';
import { Metrics } from '../../src/ops/metrics.ts';
import { channelMark, type ChannelSpec } from '../../src/policy/types.ts';
import { realClock } from '../../src/util/clock.ts';
import { DnssealError } from '../../src/util/errors.ts';
import { silentLogger } from '../../src/util/log.ts';
import { CharonLab, privilegedSkipReason, type LabCharon } from './charon-lab.ts';
import { until } from './helpers.ts';

const skip = privilegedSkipReason();
if (skip) console.log(`skipping ipsec/channel-manager against charon: ${skip}`);

const ROUTER = '192.0.2.1';
const PEER = '192.0.2.2';
const partner: ChannelSpec = { name: 'partner', id: 2, mark: channelMark(2), protocol: 'ipsec', kind: 'peer', identity: '%name', esp: 'aes256gcm16' };
const hub: ChannelSpec = { name: 'hub', id: 1, mark: channelMark(1), protocol: 'ipsec', kind: 'tunnel', gateway: PEER, identity: 'peer.partner.test', esp: 'aes256gcm16' };

describe.skipIf(skip !== null)('ipsec/channel-manager against charon', () => {
  let lab: CharonLab;
  let routerNs: string;
  let router: ViciClient;
  let routerCharon: LabCharon;
  let peer: ViciClient;
  let hasEsp = false;
  const ikeEvents: ViciMessage[] = [];

  beforeAll(async () => {
    lab = new CharonLab();
    hasEsp = lab.kernelHasEspGcm();
    routerNs = lab.netns('router');
    const peerNs = lab.netns('peer');
    lab.link(routerNs, `${ROUTER}/24`, peerNs, `${PEER}/24`);
    const creds = lab.makeCreds(['router.test', 'peer.partner.test']);
    const rc = (routerCharon = await lab.startCharon('router', routerNs));
    const pc = await lab.startCharon('peer', peerNs);
    router = new ViciClient({ socketPath: rc.socketPath, reconnectMinMs: 50, reconnectMaxMs: 200 });
    peer = new ViciClient({ socketPath: pc.socketPath });
    for (const [v, name] of [[router, 'router.test'], [peer, 'peer.partner.test']] as const) {
      await v.loadCert({ flag: 'CA', data: creds.caPem });
      await v.loadCert({ data: creds.certs.get(name)!.cert });
      await v.loadKey({ type: 'ECDSA', data: creds.certs.get(name)!.key });
    }
    // The peer answers anyone with a certificate from the test CA, in transport or tunnel mode.
    await peer.loadConn('responder', {
      version: '2',
      local: { auth: 'pubkey', id: 'peer.partner.test' },
      remote: { auth: 'pubkey' },
      children: { responder: { mode: 'transport', esp_proposals: ['aes256gcm16'] } },
    });
    let linked = false;
    router.onLink((up) => (linked ||= up));
    router.subscribe('ike-updown', (m) => ikeEvents.push(m));
    // the first test expects the ike-updown event: the event connection must be registered first
    await until(() => linked, 10_000, "the router's VICI event connection");
  });

  afterAll(async () => {
    router?.close();
    peer?.close();
    await lab?.destroy();
  });

  const manager = (channels: ChannelSpec[]) =>
    new ChannelManager({ vici: router, mode: 'host', lan: [], channels, log: silentLogger, metrics: new Metrics(), clock: realClock, localId: 'router.test' });

  /** On failure, show what charon said: the assertion alone rarely tells why IKE went wrong. */
  const withLogs = (fn: () => Promise<void>) => async () => {
    try {
      await fn();
    } catch (e) {
      console.error(`--- router charon log ---\n${lab.log(routerCharon).split('\n').slice(-40).join('\n')}`);
      throw e;
    }
  };

  test('establishes the IKE_SA with X.509 identities and fails closed unless the CHILD_SA is up when a peer is added', withLogs(async () => {
    const mgr = manager([partner]);
    await mgr.start();
    const conn = peerConnName(partner, PEER);
    const added = mgr.peerAdded(partner, PEER, 'peer.partner.test');
    if (hasEsp) {
      await added;
      expect(lab.xfrm(routerNs, 'state')).toContain('proto esp');
    } else {
      let err: unknown;
      await added.catch((e) => (err = e));
      expect(err).toBeInstanceOf(DnssealError);
      expect((err as DnssealError).message).toBe(
        `ipsec: channel partner: no SA with peer.partner.test (${PEER}): vici: initiate failed: establishing CHILD_SA '${conn}' failed`,
      );
    }
    // The event comes on the event connection, the initiate reply on another: either may be first.
    const evEnd = Date.now() + 10_000;
    while (!ikeEvents.some((m) => m.up === 'yes' && conn in m) && Date.now() < evEnd) await Bun.sleep(20);
    const up = ikeEvents.find((m) => m.up === 'yes' && conn in m);
    expect(up).toBeDefined();
    const sa = up![conn] as Record<string, string>;
    expect(sa.state).toBe('ESTABLISHED');
    expect(sa['remote-id']).toBe('peer.partner.test');
    expect(sa['local-id']).toBe('router.test');
    if (!hasEsp) {
      // nothing of the failed peer is left: no connection, no SA, no trap policy
      const end = Date.now() + 10_000;
      while ((await router.getConns()).includes(conn) && Date.now() < end) await Bun.sleep(50);
      expect(await router.getConns()).not.toContain(conn);
      expect(lab.xfrm(routerNs, 'policy')).not.toContain('0x5e510002');
      // terminate after unload still finds the IKE_SA by its (unloaded) config name
      while ((await router.listSas()).some((m) => conn in m) && Date.now() < end) await Bun.sleep(50);
      expect((await router.listSas()).some((m) => conn in m)).toBe(false);
    }
    mgr.close();
  }));

  test('gets no SA when the peer cannot prove the configured identity', async () => {
    const other: ChannelSpec = { ...partner, name: 'other', id: 4, mark: channelMark(4), identity: 'someone-else.test' };
    const mgr = manager([other]);
    await mgr.start();
    const conn = peerConnName(other, PEER);
    let err: unknown;
    await mgr.peerAdded(other, PEER, 'peer.partner.test').catch((e) => (err = e));
    expect(err).toBeInstanceOf(DnssealError);
    expect((err as DnssealError).code).toBe('peer_not_ready');
    expect(ikeEvents.some((m) => m.up === 'yes' && conn in m)).toBe(false);
    expect(lab.xfrm(routerNs, 'state')).not.toContain('proto esp');
    mgr.close();
  });

  test('installs mark-selected XFRM policies for the tunnel and removes them all when torn down', async () => {
    const mgr = manager([hub]);
    await mgr.start();
    const policies = lab.xfrm(routerNs, 'policy');
    expect(policies).toContain('mark 0x5e510001/0xffffffff');
    expect(policies).toContain('dst 0.0.0.0/0');
    expect(await router.getConns()).toContain(tunnelConnName(hub));
    mgr.close();
    await router.loadConn('not-ours', { version: '2', remote_addrs: ['192.0.2.77'] });
    const removed = await teardownIpsec(router, silentLogger);
    expect(removed).toContain(`ipsec connection ${tunnelConnName(hub)}`);
    expect(await router.getConns()).toEqual(['not-ours']);
    expect(lab.xfrm(routerNs, 'policy')).not.toContain('0x5e51');
  });

  // Last: it kills the router's charon (credentials loaded in beforeAll are gone afterwards).
  test.each([false, true])('reloads the tunnel and its XFRM policies when charon is killed (SIGKILL %p) and comes back', async (hard) => {
    const mgr = manager([hub]);
    await mgr.start();
    expect(lab.xfrm(routerNs, 'policy')).toContain('mark 0x5e510001/0xffffffff');
    await lab.stopCharon(routerCharon, hard);
    routerCharon = await lab.startCharon('router', routerNs);
    const end = Date.now() + 15_000;
    while (!(await router.getConns().catch(() => [] as string[])).includes(tunnelConnName(hub)) && Date.now() < end) await Bun.sleep(100);
    expect(await router.getConns()).toContain(tunnelConnName(hub));
    expect(lab.xfrm(routerNs, 'policy')).toContain('mark 0x5e510001/0xffffffff');
    mgr.close();
    await teardownIpsec(router, silentLogger);
  });
});
