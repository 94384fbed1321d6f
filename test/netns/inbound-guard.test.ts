/**
 * The inbound guard (issue #11 item 5; root only): a clear packet claiming to come FROM a
 * protected address is not delivered, IPv4 and IPv6; only what IPsec brings in (ESP, decrypted
 * packets: the lab) and UDP to charon's own sockets are.
 *
 * Host mode: namespace h (the host, v0 towards w), w sends spoofed UDP and TCP from the protected
 * addresses (they sit on its lo) to h; nftables on h's input hook counts what is delivered. A
 * fake charon in h (fixtures/fake-charon.ts, tagged as the daemon tags it) receives UDP from the
 * protected address on :500 / [::]:4500; a port nobody of charon's holds gets nothing.
 * Gateway mode: client c — router r — internet i; i sends spoofed packets from the protected
 * addresses to the client, c counts what arrives (the router's WAN ingress drops them).
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { rmSync } from 'node:fs';
import { Bpf } from '../../src/datapath/ebpf/bpf-syscall.ts';
import { EbpfMaps } from '../../src/datapath/ebpf/maps.ts';
import { PinPaths } from '../../src/datapath/ebpf/pins.ts';
import { channelMark } from '../../src/policy/types.ts';
import { privSkipReason, scratchPinRoot, wipe } from '../datapath/ebpf/helpers.ts';
import { bunBin, delNs, inNs, nftCount, nsenter, script, sh } from './netns.ts';
import { hostPair } from './host-fixture.ts';

const skip = privSkipReason() ?? (sh(['which', 'nft', 'nsenter', 'python3']).code !== 0 ? 'nft/nsenter/python3 missing' : undefined);
if (skip) console.log(`netns inbound guard: skipping: ${skip}`);

const MARK = channelMark(1);
const PROT4 = '203.0.113.10';
const PROT6 = '2001:db8:20::10';
const OPEN4 = '203.0.113.20';
const HELPER = 'test/netns/fixtures/dp-helper.ts';
const tag = process.pid % 10000;

/** From `ns`: a UDP datagram and a TCP SYN with source `src` to `dst` (python3, source bound). */
function spoof(ns: string, src: string, dst: string, udpPort = 9): void {
  const fam = src.includes(':') ? 'AF_INET6' : 'AF_INET';
  const py = [
    'import socket',
    `u=socket.socket(socket.${fam}, socket.SOCK_DGRAM); u.bind(('${src}', 0)); u.sendto(b'spoof', ('${dst}', ${udpPort}))`,
    `t=socket.socket(socket.${fam}, socket.SOCK_STREAM); t.bind(('${src}', 0)); t.settimeout(0.5)`,
    'try:\n  t.connect((' + `'${dst}'` + ', 80))\nexcept Exception:\n  pass',
  ].join('\n');
  inNs(ns, ['python3', '-c', py], { timeoutMs: 10000 });
}

/** nft counters on `dev`'s input path (after tc ingress) for packets from the three sources. */
function counting(hook: 'input' | 'prerouting'): string[] {
  return [
    'nft add table inet dnsseal_t',
    `nft 'add chain inet dnsseal_t c { type filter hook ${hook} priority 0; }'`,
    `nft add rule inet dnsseal_t c ip saddr ${PROT4} udp dport 500 counter comment ike4`,
    `nft add rule inet dnsseal_t c ip6 saddr ${PROT6} udp dport 4500 counter comment ike6`,
    `nft add rule inet dnsseal_t c ip saddr ${PROT4} counter comment from4`,
    `nft add rule inet dnsseal_t c ip6 saddr ${PROT6} counter comment from6`,
    `nft add rule inet dnsseal_t c ip saddr ${OPEN4} counter comment open4`,
  ];
}

const internet = (ns: string) => [
  'ip link set lo up; ip link set eth0 up',
  `ip addr add ${PROT4}/32 dev lo; ip addr add ${OPEN4}/32 dev lo; ip -6 addr add ${PROT6}/128 dev lo nodad`,
];

(skip ? describe.skip : describe)('netns inbound guard: host mode', () => {
  const [h, w] = [`dsg-guard-nh${tag}`, `dsg-guard-nw${tag}`];
  const vici = `/tmp/dsg-guard-vici-in-${process.pid}.sock`;
  const root = scratchPinRoot('guard-in-host');
  let maps: EbpfMaps;
  let charon: ReturnType<typeof Bun.spawn> | undefined;
  const c = (name: string) => nftCount(h, name);

  beforeAll(async () => {
    await wipe(root);
    rmSync(vici, { force: true });
    hostPair(h, w, { h: counting('input'), w: internet(w).slice(1) });
    nsenter(h, [bunBin(), HELPER, 'up', root, 'host', '-', 'v0'], { ok: true, timeoutMs: 30000 });
    maps = new EbpfMaps(new Bpf(), new PinPaths(root));
    charon = Bun.spawn(['nsenter', `--net=/run/netns/${h}`, bunBin(), 'test/netns/fixtures/fake-charon.ts', vici], { stdout: 'pipe', stderr: 'inherit' });
    const reader = (charon.stdout as ReadableStream<Uint8Array>).getReader();
    expect(new TextDecoder().decode((await reader.read()).value)).toContain('ready');
    const r = JSON.parse(nsenter(h, [bunBin(), HELPER, 'ike-tag', root, vici], { ok: true, timeoutMs: 30000 }).out);
    expect(r.tagged).toBe(2);
  });

  afterAll(async () => {
    charon?.kill();
    await charon?.exited;
    maps?.close();
    nsenter(h, [bunBin(), HELPER, 'down', root], { timeoutMs: 30000 });
    delNs(h, w);
    rmSync(vici, { force: true });
    await wipe(root);
  });

  test('before protection, spoofed packets from the address are delivered (the counters work)', () => {
    const before = c('from4');
    spoof(w, PROT4, '198.51.100.1');
    expect(c('from4')).toBeGreaterThan(before);
  });

  test('clear UDP and TCP from a protected address are not delivered, IPv4 and IPv6', () => {
    maps.upsertDest({ group: 0, addr: PROT4 }, { channelId: 1, mark: MARK, flags: 0 });
    maps.upsertDest({ group: 0, addr: PROT6 }, { channelId: 1, mark: MARK, flags: 0 });
    const [f4, f6, o4] = [c('from4'), c('from6'), c('open4')];
    spoof(w, PROT4, '198.51.100.1');
    spoof(w, PROT6, 'fd00:3::1');
    spoof(w, OPEN4, '198.51.100.1');
    expect([c('from4') - f4, c('from6') - f6]).toEqual([0, 0]);
    expect(c('open4')).toBeGreaterThan(o4); // unprotected sources still get through
  });

  test('UDP from a protected address to charon\'s own sockets is delivered (IKE, NAT-T)', () => {
    const [i4, i6] = [c('ike4'), c('ike6')];
    spoof(w, PROT4, '198.51.100.1', 500);
    spoof(w, PROT6, 'fd00:3::1', 4500);
    expect([c('ike4') - i4, c('ike6') - i6]).toEqual([1, 1]);
  });
});

(skip ? describe.skip : describe)('netns inbound guard: gateway mode', () => {
  const [cl, r, i] = [`dsg-guard-gc${tag}`, `dsg-guard-gr${tag}`, `dsg-guard-gi${tag}`];
  const root = scratchPinRoot('guard-in-gw');
  let maps: EbpfMaps;
  const c = (name: string) => nftCount(cl, name);

  beforeAll(async () => {
    await wipe(root);
    delNs(cl, r, i);
    for (const n of [cl, r, i]) sh(['ip', 'netns', 'add', n], { ok: true });
    sh(['ip', 'link', 'add', 'lan0', 'netns', r, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', cl], { ok: true });
    sh(['ip', 'link', 'add', 'wan0', 'netns', r, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', i], { ok: true });
    script(cl, [
      'ip link set lo up; ip link set eth0 up',
      'ip addr add 10.10.1.2/24 dev eth0; ip -6 addr add fd00:1::2/64 dev eth0 nodad',
      'ip route add default via 10.10.1.1; ip -6 route add default via fd00:1::1',
      ...counting('prerouting'),
    ]);
    script(r, [
      'ip link set lo up; ip link set lan0 up; ip link set wan0 up',
      'ip addr add 10.10.1.1/24 dev lan0; ip -6 addr add fd00:1::1/64 dev lan0 nodad',
      'ip addr add 198.51.100.1/24 dev wan0; ip -6 addr add fd00:2::1/64 dev wan0 nodad',
      'ip route add default via 198.51.100.2; ip -6 route add default via fd00:2::2',
      'sysctl -qw net.ipv4.ip_forward=1; sysctl -qw net.ipv6.conf.all.forwarding=1',
    ]);
    script(i, [
      ...internet(i),
      'ip addr add 198.51.100.2/24 dev eth0; ip -6 addr add fd00:2::2/64 dev eth0 nodad',
      'ip route add 10.10.1.0/24 via 198.51.100.1; ip -6 route add fd00:1::/64 via fd00:2::1',
    ]);
    nsenter(r, [bunBin(), HELPER, 'up', root, 'gateway', 'lan0', 'wan0'], { ok: true, timeoutMs: 30000 });
    maps = new EbpfMaps(new Bpf(), new PinPaths(root));
  });

  afterAll(async () => {
    maps?.close();
    nsenter(r, [bunBin(), HELPER, 'down', root], { timeoutMs: 30000 });
    delNs(cl, r, i);
    await wipe(root);
  });

  test('before protection, packets from the address reach the client (the counters work)', () => {
    const before = c('from4');
    spoof(i, PROT4, '10.10.1.2');
    expect(c('from4')).toBeGreaterThan(before);
  });

  test('clear packets from a protected address never reach the LAN client, IPv4 and IPv6', () => {
    maps.upsertDest({ group: 0, addr: PROT4 }, { channelId: 1, mark: MARK, flags: 0 });
    maps.upsertDest({ group: 0, addr: PROT6 }, { channelId: 1, mark: MARK, flags: 0 });
    const [f4, f6, o4] = [c('from4'), c('from6'), c('open4')];
    spoof(i, PROT4, '10.10.1.2', 500);
    spoof(i, PROT4, '10.10.1.2');
    spoof(i, PROT6, 'fd00:1::2');
    spoof(i, OPEN4, '10.10.1.2');
    expect([c('from4') - f4, c('from6') - f6]).toEqual([0, 0]);
    expect(c('open4')).toBeGreaterThan(o4);
  });
});
