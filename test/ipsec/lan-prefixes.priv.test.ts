/**
 * The tunnel's local traffic selectors against real charon (root): a router namespace with a
 * LAN veth whose addresses are read with `ip -j addr` inside that namespace, charon in its own
 * network + mount namespace. Charon refuses interface names (`invalid value for: local_ts`,
 * the bug `dnsseal run --mode gateway --lan lan0` hit) and takes the derived prefixes; the
 * trap policy then carries them as its source selector.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import type { Config } from '../../src/config/types.ts';
import { ChannelManager } from '../../src/ipsec/channel-manager.ts';
import { createIpsecChannels } from '../../src/ipsec/ipsec-factory.ts';
import { lanPrefixes } from '../../src/ipsec/lan-prefixes.ts';
import { ViciClient } from '../../src/ipsec/vici-client.ts';
import { Metrics } from '../../src/ops/metrics.ts';
import { channelMark, type ChannelSpec } from '../../src/policy/types.ts';
import { realClock } from '../../src/util/clock.ts';
import { silentLogger } from '../../src/util/log.ts';
import { CharonLab, privilegedSkipReason, type LabCharon } from './charon-lab.ts';

const skip = privilegedSkipReason();
if (skip) console.log(`skipping ipsec/lan-prefixes against charon: ${skip}`);

const hub: ChannelSpec = { name: 'hub', id: 1, mark: channelMark(1), protocol: 'ipsec', kind: 'tunnel', gateway: '198.51.100.2', identity: 'hub.test', esp: 'aes256gcm16' };

describe.skipIf(skip !== null)('ipsec/lan-prefixes against charon', () => {
  let lab: CharonLab;
  let ns: string;
  let charon: LabCharon;
  /** `ip -j addr show dev IFACE` inside the router namespace. */
  const readInNs = (iface: string) => {
    const r = Bun.spawnSync(['ip', '-n', ns, '-j', 'addr', 'show', 'dev', iface], { stdout: 'pipe', stderr: 'pipe' });
    if (r.exitCode !== 0) throw new Error(r.stderr.toString());
    return r.stdout.toString();
  };

  beforeAll(async () => {
    lab = new CharonLab();
    ns = lab.netns('lts');
    const client = lab.netns('ltsc');
    const hubNs = lab.netns('ltsh');
    lab.link(ns, '10.10.1.1/24', client, '10.10.1.2/24'); // the LAN: CharonLab names it v0x1
    lab.link(ns, '198.51.100.1/24', hubNs, '198.51.100.2/24'); // the WAN
    Bun.spawnSync(['ip', '-n', ns, '-6', 'addr', 'add', 'fd00:1::1/64', 'dev', 'v0x1', 'nodad']);
    charon = await lab.startCharon('lts', ns);
  });

  afterAll(async () => {
    await lab?.destroy();
  });

  test('charon refuses an interface name as local_ts when the selectors are not derived', async () => {
    const vici = new ViciClient({ socketPath: charon.socketPath });
    const mgr = new ChannelManager({ vici, mode: 'gateway', lan: ['v0x1'], channels: [hub], log: silentLogger, metrics: new Metrics(), clock: realClock });
    try {
      await expect(mgr.start()).rejects.toThrow(/invalid value for: local_ts/);
    } finally {
      mgr.close();
      vici.close();
    }
  });

  test('charon loads the tunnel with the LAN prefixes and traps on them when derived from the LAN interface', async () => {
    expect(lanPrefixes(['v0x1'], readInNs)).toEqual(['10.10.1.0/24', 'fd00:1::/64']);
    const cfg = { datapath: 'ebpf', mode: 'gateway', lan: ['v0x1'], localTs: [], channels: [hub] } as unknown as Config;
    const ch = createIpsecChannels(cfg, { log: silentLogger, metrics: new Metrics(), clock: realClock, viciSocket: charon.socketPath, localId: 'router.test', readAddrs: readInNs });
    try {
      await ch.start();
      const vici = new ViciClient({ socketPath: charon.socketPath });
      const conns = await vici.listConns({ ike: 'dnsseal-tunnel-hub' });
      vici.close();
      const child = (conns[0]!['dnsseal-tunnel-hub'] as any).children['dnsseal-tunnel-hub'];
      expect(child['local-ts']).toEqual(['10.10.1.0/24', 'fd00:1::/64']);
      const policies = lab.xfrm(ns, 'policy');
      expect(policies).toContain('src 10.10.1.0/24 dst 0.0.0.0/0');
      expect(policies).toContain('mark 0x5e510001/0xffffffff');
    } finally {
      ch.close();
    }
  });
});
