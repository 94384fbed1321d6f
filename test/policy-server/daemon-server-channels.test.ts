/**
 * The daemon's wiring for channels a policy server names (#5): on first sight the data path's
 * channel table gets the channel with its gateway / peer kind (the leak guard's IKE exemption
 * needs them), and the IPsec side's `ensureChannel` runs — and is awaited — before anything is
 * registered under it; its failure is a SERVFAIL with nothing registered. Figure 6 gateway on
 * loopback, an in-memory data path standing in for eBPF, a recording IPsec backend. No root.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { EventEmitter } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Config } from '../../src/config/types.ts';
import type { DaemonInfo } from '../../src/daemon/index.ts';
import { FakeDatapath } from '../../src/datapath/fake.ts';
import { NoIpsec } from '../../src/ipsec/channel-manager.ts';
import type { ChannelSpec } from '../../src/policy/types.ts';
import { newProxyCounters } from '../../src/proxy/proxy-counters.ts';
import { realClock } from '../../src/util/clock.ts';
import { DnssealError } from '../../src/util/errors.ts';
import { silentLogger } from '../../src/util/log.ts';
import { CLIENT_502, CLIENT_503, GW_KEY, KOJIMA, KOJIMA_ADDR, ask, figure6Config, figure6State, makeQuery, startServer } from './helpers.ts';
import { startDaemon } from '../daemon/start.ts';
import { listenPair } from '../proxy/listen-pair.ts';

const HUB_A_ID = 41736; // deterministic (server-channels.test.ts)
const PEER_B_ID = 35015;

/** Records ensureChannel calls and what was registered at that moment; can be made to fail. */
class RecordingIpsec extends NoIpsec {
  calls: Array<{ name: string; kind: string; registeredBefore: number }> = [];
  fail: string | null = null;
  registered: () => number = () => 0;
  override async ensureChannel(spec: ChannelSpec): Promise<void> {
    this.calls.push({ name: spec.name, kind: spec.kind, registeredBefore: this.registered() });
    await Bun.sleep(30); // a slow load: the answer must still wait for it
    if (this.fail) throw new DnssealError('ipsec', 'tunnel_not_loaded', this.fail);
  }
}

describe('daemon with a policy server: server channels on first sight', () => {
  const signals = new EventEmitter();
  const dp = new FakeDatapath();
  const ipsec = new RecordingIpsec();
  let info: DaemonInfo;
  let port: number;
  let exit: Promise<number>;
  let dir: string;
  let closeServer: () => Promise<void>;

  beforeAll(async () => {
    const ps = startServer(figure6State(), realClock);
    const counters = newProxyCounters();
    const udp = await listenPair(ps.handle, counters);
    closeServer = () => udp.close();
    dir = mkdtempSync(join(tmpdir(), 'dnsseal-ps-sc-'));
    const base = figure6Config();
    const cfg: Config = {
      ...base,
      source: '<test>',
      mode: 'gateway',
      lan: ['lan0'],
      listen: ['127.0.0.1:0'],
      upstreams: [{ name: 'default', servers: [{ transport: 'dns', address: '127.0.0.1', port: udp.port }], tsigKey: GW_KEY.name }],
      policyServer: 'default',
      datapath: 'ebpf', // the injected backend below: rows carry what the eBPF one would get
      control: join(dir, 'control.sock'),
      tables: base.tables.map((t) => ({ ...t, rules: [] })),
    };
    ({ info, exit } = await startDaemon(cfg, { signals, ebpf: () => dp, ipsec }));
    ipsec.registered = () => info.registry.list().length;
    port = info.listeners.find((l) => l.transport === 'udp')!.port;
  });

  afterAll(async () => {
    signals.emit('SIGTERM');
    await exit;
    await closeServer();
    rmSync(dir, { recursive: true, force: true });
  });

  test('answers SERVFAIL and registers nothing when the IPsec side cannot set the tunnel channel up', async () => {
    ipsec.fail = 'vici: load-conn failed: no';
    const a = await ask('udp', port, makeQuery(KOJIMA), CLIENT_502, 3000);
    expect(a[3]! & 0x0f).toBe(2);
    expect(ipsec.calls).toEqual([{ name: 'server:hub-a', kind: 'tunnel', registeredBefore: 0 }]);
    expect(info.registry.list()).toEqual([]);
    expect(dp.list()).toEqual([]);
  });

  test('sets the tunnel channel up before registering and puts its gateway in the channel table when first named', async () => {
    ipsec.fail = null;
    ipsec.calls = [];
    const a = await ask('udp', port, makeQuery(KOJIMA), CLIENT_502, 3000);
    expect(a[3]! & 0x0f).toBe(0);
    expect(ipsec.calls).toEqual([{ name: 'server:hub-a', kind: 'tunnel', registeredBefore: 0 }]);
    expect(info.registry.list().map((e) => [e.group, e.addr, e.channel])).toEqual([[502, KOJIMA_ADDR, 'server:hub-a']]);
    expect(dp.channels.find((c) => c.id === HUB_A_ID)).toMatchObject({ gateway: '192.0.2.1', peer: false });
  });

  test('puts the peer kind in the channel table when the server names a peer channel', async () => {
    const a = await ask('udp', port, makeQuery(KOJIMA), CLIENT_503, 3000);
    expect(a[3]! & 0x0f).toBe(0);
    expect(dp.channels.find((c) => c.id === PEER_B_ID)).toMatchObject({ peer: true });
    expect(ipsec.calls.map((c) => c.name)).toEqual(['server:hub-a', 'server:peer-b']);
    // The configured channels keep theirs too (the rows always carry them).
    expect(dp.channels.find((c) => c.id === 1)).toMatchObject({ gateway: '192.0.2.1', peer: false });
  });
});
