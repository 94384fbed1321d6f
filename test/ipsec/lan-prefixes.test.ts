import { afterEach, beforeEach, describe, expect, test } from 'bun:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Config } from '../../src/config/types.ts';
import { ChannelManager } from '../../src/ipsec/channel-manager.ts';
import { tunnelConnName } from '../../src/ipsec/conn-config.ts';
import { FakeCharon } from '../../src/ipsec/fake-charon.ts';
import { validTs } from '../../src/ipsec/fake-charon-config.ts';
import { createIpsecChannels } from '../../src/ipsec/ipsec-factory.ts';
import { ipAddrReader, lanPrefixes, networkPrefix, prefixesFromIpJson } from '../../src/ipsec/lan-prefixes.ts';
import { ViciClient } from '../../src/ipsec/vici-client.ts';
import { Metrics } from '../../src/ops/metrics.ts';
import { channelMark, type ChannelSpec } from '../../src/policy/types.ts';
import { realClock } from '../../src/util/clock.ts';
import { DnssealError } from '../../src/util/errors.ts';
import { silentLogger } from '../../src/util/log.ts';

/** What `ip -j addr show dev lan0` prints (trimmed) for a LAN with IPv4, a ULA and link-local. */
const LAN0 = JSON.stringify([
  {
    ifindex: 3,
    ifname: 'lan0',
    addr_info: [
      { family: 'inet', local: '10.10.1.1', prefixlen: 24, scope: 'global', label: 'lan0' },
      { family: 'inet', local: '10.10.9.200', prefixlen: 22, scope: 'global', secondary: true, label: 'lan0' },
      { family: 'inet6', local: 'fd00:1::1', prefixlen: 64, scope: 'global' },
      { family: 'inet6', local: 'fe80::1', prefixlen: 64, scope: 'link' },
    ],
  },
]);
const LO = JSON.stringify([{ ifname: 'lo', addr_info: [{ family: 'inet', local: '127.0.0.1', prefixlen: 8, scope: 'host' }, { family: 'inet6', local: '::1', prefixlen: 128, scope: 'host' }] }]);
const EMPTY = JSON.stringify([{ ifname: 'lan1', addr_info: [] }]);

const hub: ChannelSpec = { name: 'hub', id: 1, mark: channelMark(1), protocol: 'ipsec', kind: 'tunnel', gateway: '203.0.113.1', identity: 'hub.test', esp: 'aes256gcm16' };

describe('ipsec/lan-prefixes', () => {
  test('turns global addresses into network prefixes and skips link and host scope when reading ip -j output', () => {
    expect(prefixesFromIpJson(LAN0)).toEqual(['10.10.1.0/24', '10.10.8.0/22', 'fd00:1::/64']);
    expect(prefixesFromIpJson(LO)).toEqual([]);
    expect(prefixesFromIpJson('[]')).toEqual([]);
  });

  test.each([
    ['10.10.1.1', 24, '10.10.1.0/24'],
    ['10.10.1.1', 32, '10.10.1.1/32'],
    ['10.10.1.1', 0, '0.0.0.0/0'],
    ['192.0.2.130', 25, '192.0.2.128/25'],
    ['fd00:1:2:3::9', 48, 'fd00:1:2::/48'],
    ['2001:db8::1', 127, '2001:db8::/127'],
    ['::ffff:10.0.0.1', 104, null],
    ['10.0.0.1', 33, null],
    ['lan0', 24, null],
  ] as const)('masks %s/%d to %p when computing the network prefix', (addr, len, want) => {
    expect(networkPrefix(addr, len)).toBe(want);
  });

  test('refuses output that is not ip -j JSON when parsing', () => {
    expect(() => prefixesFromIpJson('not json')).toThrow(/ipsec: cannot parse "ip -j addr" output/);
    expect(() => prefixesFromIpJson('{}')).toThrow(/not a list/);
  });

  test('joins the prefixes of several interfaces without duplicates when the LAN has more than one', () => {
    const read = (i: string) => (i === 'lan0' ? LAN0 : JSON.stringify([{ addr_info: [{ family: 'inet', local: '10.10.1.77', prefixlen: 24, scope: 'global' }, { family: 'inet', local: '10.20.0.1', prefixlen: 16, scope: 'global' }] }]));
    expect(lanPrefixes(['lan0', 'lan1'], read)).toEqual(['10.10.1.0/24', '10.10.8.0/22', 'fd00:1::/64', '10.20.0.0/16']);
  });

  test('throws naming the interface and the local_ts override when a LAN interface has no global address', () => {
    let err: unknown;
    try {
      lanPrefixes(['lan0', 'lan1'], (i) => (i === 'lan0' ? LAN0 : EMPTY));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(DnssealError);
    expect((err as DnssealError).code).toBe('lan_addresses');
    expect((err as Error).message).toContain('LAN interface lan1 has no global address');
    expect((err as Error).message).toContain('--local-ts');
  });

  test('the real reader fails for an interface that does not exist and finds no LAN prefix on lo', () => {
    expect(() => ipAddrReader('dnsseal-no-such-if0')).toThrow(/cannot read the addresses of LAN interface dnsseal-no-such-if0/);
    expect(() => lanPrefixes(['lo'])).toThrow(/LAN interface lo has no global address/);
  });
});

describe('ipsec/fake-charon traffic selectors', () => {
  test.each([
    ['dynamic', true],
    ['10.1.0.0/24', true],
    ['10.1.0.1', true],
    ['fd00:1::/64', true],
    ['0.0.0.0/0', true],
    ['::/0', true],
    ['10.1.0.1-10.1.0.9', true],
    ['10.1.0.0/24[tcp/443]', true],
    ['dynamic[udp]', true],
    ['lan0', false],
    ['eth0', false],
    ['10.1.0.0/33', false],
    ['', false],
  ] as const)('accepts %p as a selector: %p (as charon does)', (ts, ok) => {
    expect(validTs(ts)).toBe(ok);
  });
});

describe('ipsec/ipsec-factory local traffic selectors', () => {
  let dir: string;
  let fake: FakeCharon;
  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'dnsseal-lts-'));
    fake = await FakeCharon.start(join(dir, 'charon.vici'));
  });
  afterEach(async () => {
    await fake.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const cfg = (mode: Config['mode'], localTs: string[] = []) =>
    ({ datapath: 'ebpf', mode, lan: ['lan0'], localTs, channels: [hub] }) as unknown as Config;
  const localTsOf = () => (fake.conns.get(tunnelConnName(hub)) as any)?.children[tunnelConnName(hub)].local_ts;

  async function startWith(c: Config, read = (_: string) => LAN0) {
    const reads: string[] = [];
    const ch = createIpsecChannels(c, {
      log: silentLogger,
      metrics: new Metrics(),
      clock: realClock,
      viciSocket: fake.socketPath,
      localId: 'router.test',
      readAddrs: (i) => (reads.push(i), read(i)),
    });
    try {
      await ch.start();
    } finally {
      ch.close();
    }
    return reads;
  }

  test('loads the tunnel with the LAN prefixes, not the interface names, when the mode is gateway', async () => {
    expect(await startWith(cfg('gateway'))).toEqual(['lan0']);
    expect(localTsOf()).toEqual(['10.10.1.0/24', '10.10.8.0/22', 'fd00:1::/64']);
    expect((fake.conns.get(tunnelConnName(hub)) as any).local.id).toBe('router.test');
  });

  test('loads the explicit selectors and reads no interface when local_ts is set', async () => {
    expect(await startWith(cfg('gateway', ['192.0.2.0/24', 'dynamic']))).toEqual([]);
    expect(localTsOf()).toEqual(['192.0.2.0/24', 'dynamic']);
  });

  test('uses dynamic and reads no interface when the mode is host', async () => {
    expect(await startWith(cfg('host'))).toEqual([]);
    expect(localTsOf()).toEqual(['dynamic']);
  });

  test('throws before talking to charon when a LAN interface has no address', () => {
    expect(() => createIpsecChannels(cfg('gateway'), { log: silentLogger, metrics: new Metrics(), clock: realClock, viciSocket: fake.socketPath, readAddrs: () => EMPTY })).toThrow(
      /LAN interface lan0 has no global address/,
    );
    expect(fake.commands).toEqual([]);
  });

  test('charon refuses interface names as selectors when a manager is given them (the old bug)', async () => {
    const vici = new ViciClient({ socketPath: fake.socketPath, timeoutMs: 2_000 });
    const mgr = new ChannelManager({ vici, mode: 'gateway', lan: ['lan0'], channels: [hub], log: silentLogger, metrics: new Metrics(), clock: realClock });
    try {
      await expect(mgr.start()).rejects.toThrow(/invalid value for: local_ts/);
    } finally {
      mgr.close();
      vici.close();
    }
  });
});
