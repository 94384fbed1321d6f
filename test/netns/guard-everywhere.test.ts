/**
 * The guard covers every way out, not only the WAN (issue #11 item 6; root only).
 *
 * Gateway mode: client — router — two uplinks. `wan` names only wan0; a protected address is
 * routed out of the second uplink alt0 (a second NIC, a policy route, a VPN interface). The LAN
 * marker marks the client's packets to it; with no XFRM to take them they must be dropped on alt0
 * too. The guard is on the egress of every interface but lo and the LAN ones; on the LAN ones the
 * guard by destination only: a protected address routed back out of the LAN (from the router or
 * forwarded from the WAN) gets nothing in clear either.
 *
 * Host mode: a host with two interfaces, v0 named as WAN and v2 carrying the route to a protected
 * address. A process (in the test cgroup, where the host hooks sit) reaches it over TCP, UDP and
 * a raw socket; cgroup egress drops every clear packet whatever interface it would leave by.
 *
 * The namespace behind each way out counts, with nftables on its ingress, every packet to the
 * protected addresses: zero must arrive.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { mkdirSync } from 'node:fs';
import { Bpf } from '../../src/datapath/ebpf/bpf-syscall.ts';
import { EbpfMaps } from '../../src/datapath/ebpf/maps.ts';
import { defaultCgroupPath, PinPaths } from '../../src/datapath/ebpf/pins.ts';
import { CNT_GUARD_DROP } from '../../src/datapath/layout.ts';
import { channelMark } from '../../src/policy/types.ts';
import { privSkipReason, scratchPinRoot, wipe } from '../datapath/ebpf/helpers.ts';
import { hostTearDown } from './host-fixture.ts';
import { bunBin, delNs, inNs, nftCount, nsenter, script, sh } from './netns.ts';

const cgRoot = defaultCgroupPath();
const skip = privSkipReason() ?? (sh(['which', 'nft', 'nsenter', 'python3']).code !== 0 ? 'nft/nsenter/python3 missing' : undefined);
if (skip) console.log(`netns guard everywhere: skipping: ${skip}`);

const MARK = channelMark(1);
/** Routed out of the second way out (alt0 / v2), protected. */
const ALT4 = '203.0.114.10';
const ALT6 = '2001:db8:21::10';
/** Routed back out of the LAN (gateway mode), protected. */
const LANP4 = '203.0.115.10';
const LANP6 = '2001:db8:22::10';
const HELPER = 'test/netns/fixtures/dp-helper.ts';
const tag = process.pid % 10000;

/** An nftables table counting, on `dev`'s ingress (prerouting), packets to ALT4 / ALT6. */
function counting(dev: string): string[] {
  return [
    'nft add table inet dnsseal_t',
    `nft 'add chain inet dnsseal_t pre_c { type filter hook prerouting priority -300; }'`,
    `nft add rule inet dnsseal_t pre_c iif ${dev} ip daddr ${ALT4} counter comment alt4`,
    `nft add rule inet dnsseal_t pre_c iif ${dev} ip6 daddr ${ALT6} counter comment alt6`,
  ];
}

/** A UDP datagram to `addr` from a raw socket (the kernel builds the IP header; no sendmsg hook runs). */
function rawUdp(addr: string): string {
  const fam = addr.includes(':') ? 'AF_INET6' : 'AF_INET';
  return `python3 -c "import socket; s=socket.socket(socket.${fam}, socket.SOCK_RAW, socket.IPPROTO_UDP); s.sendto(b'\\x00\\x35\\x00\\x35\\x00\\x0c\\x00\\x00leak', ('${addr}', 0))"`;
}

/** UDP (connected), TCP connect and a raw-socket datagram to `addr`, run through `run`. */
function leakAttempts(run: (cmd: string) => unknown, addr: string): void {
  run(`bash -c 'echo leak > /dev/udp/${addr}/53; true'`);
  run(`timeout 1.5 bash -c 'exec 3<>/dev/tcp/${addr}/80'`);
  run(rawUdp(addr));
}

const drops = (maps: EbpfMaps) => maps.counters().filter((c) => c.kind === CNT_GUARD_DROP).reduce((n, c) => n + c.packets, 0n);

(skip ? describe.skip : describe)('netns guard everywhere: gateway mode (every interface but lo and the LAN)', () => {
  const [c, r, i, a] = ['c', 'r', 'i', 'a'].map((x) => `dsg-guard-${x}${tag}`) as [string, string, string, string];
  const root = scratchPinRoot('guard-gw');
  let maps: EbpfMaps;
  const helper = (...args: string[]) => nsenter(r, [bunBin(), HELPER, ...args], { ok: true, timeoutMs: 30000 });

  beforeAll(async () => {
    await wipe(root);
    delNs(c, r, i, a);
    for (const n of [c, r, i, a]) sh(['ip', 'netns', 'add', n], { ok: true });
    sh(['ip', 'link', 'add', 'lan0', 'netns', r, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', c], { ok: true });
    sh(['ip', 'link', 'add', 'wan0', 'netns', r, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', i], { ok: true });
    sh(['ip', 'link', 'add', 'alt0', 'netns', r, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', a], { ok: true });
    script(c, [
      'ip link set lo up; ip link set eth0 up',
      'ip addr add 10.10.1.2/24 dev eth0; ip -6 addr add fd00:1::2/64 dev eth0 nodad',
      'ip route add default via 10.10.1.1; ip -6 route add default via fd00:1::1',
      'nft add table inet dnsseal_t',
      `nft 'add chain inet dnsseal_t pre_c { type filter hook prerouting priority -300; }'`,
      `nft add rule inet dnsseal_t pre_c iif eth0 ip daddr ${LANP4} counter comment lanp4`,
      `nft add rule inet dnsseal_t pre_c iif eth0 ip6 daddr ${LANP6} counter comment lanp6`,
    ]);
    script(r, [
      'ip link set lo up; ip link set lan0 up; ip link set wan0 up; ip link set alt0 up',
      'ip addr add 10.10.1.1/24 dev lan0; ip -6 addr add fd00:1::1/64 dev lan0 nodad',
      'ip addr add 198.51.100.1/24 dev wan0; ip -6 addr add fd00:2::1/64 dev wan0 nodad',
      'ip addr add 198.51.101.1/24 dev alt0; ip -6 addr add fd00:4::1/64 dev alt0 nodad',
      'ip route add default via 198.51.100.2; ip -6 route add default via fd00:2::2',
      `ip route add ${ALT4}/32 via 198.51.101.2; ip -6 route add ${ALT6}/128 via fd00:4::2`,
      `ip route add ${LANP4}/32 via 10.10.1.2; ip -6 route add ${LANP6}/128 via fd00:1::2`,
      'sysctl -qw net.ipv4.ip_forward=1; sysctl -qw net.ipv6.conf.all.forwarding=1',
    ]);
    for (const [ns, addr4, addr6] of [[i, '198.51.100.2', 'fd00:2::2'], [a, '198.51.101.2', 'fd00:4::2']] as const) {
      script(ns, ['ip link set lo up; ip link set eth0 up', `ip addr add ${addr4}/24 dev eth0; ip -6 addr add ${addr6}/64 dev eth0 nodad`, ...counting('eth0')]);
    }
    // The internet reaches the LAN-routed addresses through the router (forwarded out of lan0).
    script(i, [`ip route add ${LANP4}/32 via 198.51.100.1; ip -6 route add ${LANP6}/128 via fd00:2::1`]);
    helper('up', root, 'gateway', 'lan0', 'wan0');
    maps = new EbpfMaps(new Bpf(), new PinPaths(root));
  });

  afterAll(async () => {
    maps?.close();
    nsenter(r, [bunBin(), HELPER, 'down', root], { timeoutMs: 30000 });
    delNs(c, r, i, a);
    await wipe(root);
  });

  test('the guard is on the egress of every interface but lo, by destination only on the LAN, when wan names one', () => {
    const q = JSON.parse(helper('query', 'lan0,wan0,alt0,lo').out) as Record<string, { tcxEgress: string[]; clsactEgress: number }>;
    const egress = (dev: string) => (q[dev]!.tcxEgress.length ? q[dev]!.tcxEgress.filter((p) => p.startsWith('dnsseal_')) : q[dev]!.clsactEgress ? ['clsact'] : []);
    const tcx = q.wan0!.tcxEgress.length > 0;
    expect(['lan0', 'wan0', 'alt0', 'lo'].map((d) => [d, egress(d)])).toEqual([
      // decrypted packets for LAN clients carry the channel mark (set_mark_in): by destination only
      ['lan0', tcx ? ['dnsseal_lan_out'] : ['clsact']],
      ['wan0', tcx ? ['dnsseal_wan_out'] : ['clsact']],
      ['alt0', tcx ? ['dnsseal_wan_out'] : ['clsact']],
      ['lo', []],
    ]);
  });

  test('unprotected, the second uplink carries the traffic in clear (the counters work)', () => {
    const before = nftCount(a, 'alt4');
    inNs(c, ['bash', '-c', `echo x > /dev/udp/${ALT4}/53; true`]);
    expect(nftCount(a, 'alt4')).toBeGreaterThan(before);
  });

  test('zero clear packets to a protected address leave by an interface that is not wan', () => {
    maps.upsertDest({ group: 0, addr: ALT4 }, { channelId: 1, mark: MARK, flags: 0 });
    maps.upsertDest({ group: 0, addr: ALT6 }, { channelId: 1, mark: MARK, flags: 0 });
    const [b4, b6, d0] = [nftCount(a, 'alt4'), nftCount(a, 'alt6'), drops(maps)];
    const run = (cmd: string) => inNs(c, ['sh', '-c', cmd], { timeoutMs: 10000 });
    leakAttempts(run, ALT4);
    leakAttempts(run, ALT6);
    expect([nftCount(a, 'alt4') - b4, nftCount(a, 'alt6') - b6]).toEqual([0, 0]);
    expect(drops(maps) - d0).toBeGreaterThanOrEqual(4n);
  });

  test('zero clear packets to a protected address routed back out of the LAN, forwarded or from the router', () => {
    // Unprotected first: the route via the LAN carries it (the counters work).
    const before = nftCount(c, 'lanp4');
    inNs(i, ['bash', '-c', `echo x > /dev/udp/${LANP4}/53; true`]);
    expect(nftCount(c, 'lanp4')).toBeGreaterThan(before);
    maps.upsertDest({ group: 0, addr: LANP4 }, { channelId: 1, mark: MARK, flags: 0 });
    maps.upsertDest({ group: 0, addr: LANP6 }, { channelId: 1, mark: MARK, flags: 0 });
    const [b4, b6, d0] = [nftCount(c, 'lanp4'), nftCount(c, 'lanp6'), drops(maps)];
    for (const ns of [i, r]) {
      const run = (cmd: string) => inNs(ns, ['sh', '-c', cmd], { timeoutMs: 10000 });
      leakAttempts(run, LANP4);
      leakAttempts(run, LANP6);
    }
    expect([nftCount(c, 'lanp4') - b4, nftCount(c, 'lanp6') - b6]).toEqual([0, 0]);
    expect(drops(maps) - d0).toBeGreaterThanOrEqual(8n);
  });
});

(skip || !cgRoot ? describe.skip : describe)('netns guard everywhere: host mode (cgroup egress)', () => {
  const [h, w, a] = ['h', 'w', 'a'].map((x) => `dsg-guard-${x}${tag}`) as [string, string, string];
  const cg = `${cgRoot}/dsg-guard-${process.pid}`;
  const root = scratchPinRoot('guard-host');
  let maps: EbpfMaps;
  const inCg = (cmd: string) => nsenter(h, ['sh', '-c', `echo $$ > ${cg}/cgroup.procs && exec ${cmd}`], { timeoutMs: 10000 });

  beforeAll(async () => {
    await wipe(root);
    delNs(h, w, a);
    for (const n of [h, w, a]) sh(['ip', 'netns', 'add', n], { ok: true });
    sh(['ip', 'link', 'add', 'v0', 'netns', h, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', w], { ok: true });
    sh(['ip', 'link', 'add', 'v2', 'netns', h, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', a], { ok: true });
    script(h, [
      'ip link set lo up; ip link set v0 up; ip link set v2 up',
      'ip addr add 198.51.100.1/24 dev v0; ip -6 addr add fd00:3::1/64 dev v0 nodad',
      'ip addr add 198.51.101.1/24 dev v2; ip -6 addr add fd00:4::1/64 dev v2 nodad',
      'ip route add default via 198.51.100.2; ip -6 route add default via fd00:3::2',
      `ip route add ${ALT4}/32 via 198.51.101.2; ip -6 route add ${ALT6}/128 via fd00:4::2`,
    ]);
    for (const [ns, addr4, addr6] of [[w, '198.51.100.2', 'fd00:3::2'], [a, '198.51.101.2', 'fd00:4::2']] as const) {
      script(ns, ['ip link set lo up; ip link set eth0 up', `ip addr add ${addr4}/24 dev eth0; ip -6 addr add ${addr6}/64 dev eth0 nodad`, ...counting('eth0')]);
    }
    mkdirSync(cg, { recursive: true });
    nsenter(h, [bunBin(), HELPER, 'up', root, 'host', '-', 'v0', '-', cg], { ok: true, timeoutMs: 30000 });
    maps = new EbpfMaps(new Bpf(), new PinPaths(root));
  });

  afterAll(async () => {
    maps?.close();
    await hostTearDown({ ns: h, others: [w, a], root, cgroup: cg });
  });

  test('unprotected, the second interface carries the traffic in clear (the counters work)', () => {
    const before = nftCount(a, 'alt4');
    inCg(rawUdp(ALT4));
    expect(nftCount(a, 'alt4')).toBeGreaterThan(before);
  });

  test('zero clear packets to a protected address leave by an interface that is not wan, raw sockets included', () => {
    maps.upsertDest({ group: 0, addr: ALT4 }, { channelId: 1, mark: MARK, flags: 0 });
    maps.upsertDest({ group: 0, addr: ALT6 }, { channelId: 1, mark: MARK, flags: 0 });
    const [b4, b6, d0] = [nftCount(a, 'alt4'), nftCount(a, 'alt6'), drops(maps)];
    leakAttempts(inCg, ALT4);
    leakAttempts(inCg, ALT6);
    expect([nftCount(a, 'alt4') - b4, nftCount(a, 'alt6') - b6]).toEqual([0, 0]);
    expect(drops(maps) - d0).toBeGreaterThanOrEqual(6n); // udp, ≥1 SYN and the raw datagram, per family
  });
});
