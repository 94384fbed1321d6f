/**
 * Intercept mode on this machine's kernel (root only). Namespaces:
 *
 *   client (10.30.1.2, fd00:30:1::2) ── lan ── node (dnsseal NAT) ── wan ── server (real addresses)
 *
 * The client's default gateway is NOT the node (10.30.1.254 / fd00:30:1::fe, absent); only the
 * pool prefixes (100.64.0.0/16, fd00:fe80::/64) are routed to the node. The node runs the
 * intercept NAT on lan.30 (plus the LAN marker), the real addresses are in dnsseal_dests. The
 * LAN name has a dot, as VLAN interfaces do: bpffs refuses dots in pin names (see tcxLinkName).
 *
 * NAT-only part: there is no XFRM on this kernel and NO guard is attached, so the node forwards
 * the marked, translated packets in clear (this test only, to show the NAT end to end); the
 * server routes the client prefix back via the node, as the IPsec tunnel would. Checked: TCP/UDP
 * echo and ping through the intercept address (the UDP socket is connected, so a reply from any
 * other source than the intercept address would be dropped by the client's kernel), the mark
 * counted by nftables on the node's forward hook, the client sees only intercept sources, an ICMP
 * error generated at the node (TTL 1) quotes the intercept address (iputils ping ignores an error
 * whose quoted destination is not its target), and a flow survives a daemon restart.
 * Guard part: with the WAN guard attached, zero clear packets to the real addresses leave
 * (tcpdump on the node's WAN veth and the server's nftables counters), drops counted.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from 'bun:test';
import { Bpf } from '../../src/datapath/ebpf/bpf-syscall.ts';
import { EbpfMaps } from '../../src/datapath/ebpf/maps.ts';
import { PinPaths } from '../../src/datapath/ebpf/pins.ts';
import { CNT_GUARD_DROP } from '../../src/datapath/layout.ts';
import { channelMark } from '../../src/policy/types.ts';
import { kernelHasTcx, scratchPinRoot, wipe } from '../datapath/ebpf/helpers.ts';
import { icptSkipReason } from '../intercept/helpers.ts';
import { waitFor } from './fixtures/dp-watch.ts';
import { bunBin, delNs, inNs, nftCount, nsenter, script, sh, startCapture } from './netns.ts';

const skip = icptSkipReason() ?? (sh(['which', 'nft', 'tcpdump', 'nsenter']).code !== 0 ? 'nft/tcpdump/nsenter missing' : undefined);
if (skip) console.log(`netns intercept: skipping: ${skip}`);
const HAVE_PING = sh(['which', 'ping']).code === 0;
if (!skip && !HAVE_PING) console.log('netns intercept: no ping (iputils-ping): ICMP checks left to the BPF_PROG_RUN table');

setDefaultTimeout(60_000);

/*
 * veth hands CHECKSUM_PARTIAL skbs across namespaces and marks the rest as verified, so a wrong
 * checksum (or a wrong pseudo-header seed in a PARTIAL skb, which only bites when something
 * finishes the checksum in software — ESP does) would go unnoticed. With ethtool, the node's
 * veths finish every checksum in software (tx off) and the receivers verify (rx off).
 */
const HAVE_ETHTOOL = sh(['which', 'ethtool']).code === 0;
if (!skip && !HAVE_ETHTOOL) console.log('netns intercept: no ethtool: checksums stay offloaded on the veths (not verified end to end)');

const HELPER = 'test/netns/intercept-helper.ts';
const ECHO = 'test/netns/intercept-echo.ts';
const GROUP = 7;
const MARK = channelMark(1);
const R4 = '203.0.113.10';
const R6 = 'fd00:aa91::1001'; // figure 8's mapping shape: fd00:fe80::3090 → fd00:aa91::1001
const POOLS = '100.64.0.0/16,fd00:fe80::3090/124';
const CLIENTS = '10.30.1.0/24,fd00:30:1::/64';

function topology(tag: string) {
  const c = `dnsseal-${tag}-c`;
  const n = `dnsseal-${tag}-n`;
  const s = `dnsseal-${tag}-s`;
  delNs(c, n, s);
  for (const x of [c, n, s]) sh(['ip', 'netns', 'add', x], { ok: true });
  sh(['ip', 'link', 'add', 'lan.30', 'netns', n, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', c], { ok: true });
  sh(['ip', 'link', 'add', 'wan0', 'netns', n, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', s], { ok: true });
  script(c, [
    'ip link set lo up; ip link set eth0 up',
    'ip addr add 10.30.1.2/24 dev eth0; ip -6 addr add fd00:30:1::2/64 dev eth0 nodad',
    // the default gateway is another router (absent here), NOT the node
    'ip route add default via 10.30.1.254; ip -6 route add default via fd00:30:1::fe',
    // only the pool prefixes go to the node
    'ip route add 100.64.0.0/16 via 10.30.1.1; ip -6 route add fd00:fe80::/64 via fd00:30:1::1',
    'nft add table inet dnsseal_t',
    `nft 'add chain inet dnsseal_t input_c { type filter hook input priority 0; }'`,
    'nft add rule inet dnsseal_t input_c ip saddr 100.64.0.0/16 counter comment "from_pool4"',
    'nft add rule inet dnsseal_t input_c ip6 saddr fd00:fe80::/64 counter comment "from_pool6"',
    `nft add rule inet dnsseal_t input_c ip saddr ${R4} counter comment "from_real4"`,
    `nft add rule inet dnsseal_t input_c ip6 saddr ${R6} counter comment "from_real6"`,
  ]);
  script(n, [
    'ip link set lo up; ip link set lan.30 up; ip link set wan0 up',
    'ip addr add 10.30.1.1/24 dev lan.30; ip -6 addr add fd00:30:1::1/64 dev lan.30 nodad',
    'ip addr add 198.51.100.1/24 dev wan0; ip -6 addr add fd00:30:2::1/64 dev wan0 nodad',
    'ip route add 203.0.113.0/24 via 198.51.100.2; ip -6 route add fd00:aa91::/64 via fd00:30:2::2',
    'sysctl -qw net.ipv4.ip_forward=1; sysctl -qw net.ipv6.conf.all.forwarding=1',
    'nft add table inet dnsseal_t',
    `nft 'add chain inet dnsseal_t forward_c { type filter hook forward priority 0; }'`,
    `nft add rule inet dnsseal_t forward_c meta mark ${MARK} ip daddr ${R4} counter comment "marked4"`,
    `nft add rule inet dnsseal_t forward_c meta mark ${MARK} ip6 daddr ${R6} counter comment "marked6"`,
    'nft add rule inet dnsseal_t forward_c ip daddr 100.64.0.0/16 counter comment "pool_fwd4"',
    'nft add rule inet dnsseal_t forward_c ip6 daddr fd00:fe80::/64 counter comment "pool_fwd6"',
  ]);
  script(s, [
    'ip link set lo up; ip link set eth0 up',
    'ip addr add 198.51.100.2/24 dev eth0; ip -6 addr add fd00:30:2::2/64 dev eth0 nodad',
    `ip addr add ${R4}/32 dev lo; ip -6 addr add ${R6}/128 dev lo nodad`,
    // replies to the client go back via the node (in the lab: through the IPsec tunnel)
    'ip route add 10.30.1.0/24 via 198.51.100.1; ip -6 route add fd00:30:1::/64 via fd00:30:2::1',
    'nft add table inet dnsseal_t',
    `nft 'add chain inet dnsseal_t input_c { type filter hook input priority 0; }'`,
    `nft add rule inet dnsseal_t input_c ip saddr 10.30.1.2 ip daddr ${R4} counter comment "arrived4"`,
    `nft add rule inet dnsseal_t input_c ip6 saddr fd00:30:1::2 ip6 daddr ${R6} counter comment "arrived6"`,
  ]);
  if (HAVE_ETHTOOL) {
    for (const [x, dev, dir] of [[n, 'lan.30', 'tx'], [n, 'wan0', 'tx'], [c, 'eth0', 'rx'], [s, 'eth0', 'rx']] as const) {
      inNs(x, ['ethtool', '-K', dev, dir, 'off'], { ok: true });
    }
  }
  return { c, n, s };
}

for (const mode of ['tcx', 'clsact'] as const) {
  const noTcx = mode === 'tcx' && !skip && !kernelHasTcx();
  if (noTcx) console.log('netns intercept (tcx): skipping: kernel < 6.6 has no tcx');
  (skip || noTcx ? describe.skip : describe)(`netns intercept (${mode})`, () => {
    const tag = `${mode === 'tcx' ? 'ix' : 'ic'}${process.pid % 10000}`;
    const root = scratchPinRoot(`icpt-${mode}`);
    let ns: ReturnType<typeof topology>;
    let server: ReturnType<typeof Bun.spawn> | undefined;
    let I4 = '';
    let I6 = '';

    const up = (wan: string) =>
      JSON.parse(nsenter(ns.n, [bunBin(), HELPER, 'up', root, 'lan.30', wan, mode, String(GROUP), String(MARK), CLIENTS, POOLS, `${R4},${R6}`], { ok: true, timeoutMs: 30000 }).out) as {
        kind: string;
        map: Record<string, string>;
        used: number;
        adoptedBefore: boolean;
        lan: { tcxIngress: string[]; tcxEgress: string[]; clsactIngress: string[]; clsactEgress: string[] };
      };
    const echo = (kind: 'tcp' | 'udp', addr: string) => {
      const r = inNs(ns.c, [bunBin(), ECHO, kind, addr], { timeoutMs: 10000 });
      return (r.out.trim() || r.err.trim().split('\n').pop()) ?? '';
    };

    beforeAll(async () => {
      await wipe(root);
      ns = topology(tag);
      server = Bun.spawn(['ip', 'netns', 'exec', ns.s, bunBin(), ECHO, 'server', `${R4},${R6}`], { stdout: 'pipe', stderr: 'inherit' });
      const serverReady = (async () => {
        let out = '';
        for await (const chunk of server.stdout as ReadableStream<Uint8Array>) {
          out += new TextDecoder().decode(chunk);
          if (out.includes('ready\n')) return true;
        }
        return false;
      })();
      const r = up('-');
      expect(r.kind).toBe('ebpf');
      I4 = r.map[R4]!;
      I6 = r.map[R6]!;
      // the echo server prints `ready` once its TCP and UDP sockets are bound
      const ready = await Promise.race([serverReady, Bun.sleep(20_000).then(() => false)]);
      expect(ready, 'the echo server in the server namespace to print ready').toBe(true);
    });

    afterAll(async () => {
      server?.kill();
      if (ns) {
        nsenter(ns.n, [bunBin(), HELPER, 'down', root], { timeoutMs: 30000 });
        delNs(ns.c, ns.n, ns.s);
      }
      await wipe(root);
    });

    test('hands out pool addresses for the real addresses when the node starts', () => {
      expect(I4).toBe('100.64.0.0');
      expect(I6).toBe('fd00:fe80::3090'); // figure 8: fe80::3090 → aa91::1001, in ULA
    });

    test('nothing to a pool address without a mapping is forwarded when the client tries one', () => {
      expect(echo('udp', '100.64.255.254')).not.toBe('ok');
      expect(echo('udp', 'fd00:fe80::309f')).not.toBe('ok');
      expect(nftCount(ns.n, 'pool_fwd4')).toBe(0);
      expect(nftCount(ns.n, 'pool_fwd6')).toBe(0);
    });

    test.each([
      ['v4', 4],
      ['v6', 6],
    ])('a bulk TCP transfer through the intercept address comes back intact when segments are offloaded (%s)', (_f, fam) => {
      const r = inNs(ns.c, [bunBin(), ECHO, 'bulk', fam === 4 ? I4 : I6, String(4 << 20)], { timeoutMs: 30000 });
      expect(r.out.trim()).toBe('ok');
    });

    test.each([
      ['v4', 4],
      ['v6', 6],
    ])('TCP, UDP and ping reach the real server through the intercept address when no guard is attached (%s)', (_f, fam) => {
      const I = fam === 4 ? I4 : I6;
      const before = { marked: nftCount(ns.n, `marked${fam}`), arrived: nftCount(ns.s, `arrived${fam}`), pool: nftCount(ns.c, `from_pool${fam}`) };
      expect(echo('tcp', I)).toBe('ok');
      expect(echo('udp', I)).toBe('ok');
      if (HAVE_PING) expect(inNs(ns.c, ['ping', '-c', '2', '-i', '0.2', '-W', '2', I], { timeoutMs: 10000 }).code).toBe(0);
      const min = HAVE_PING ? 5 : 3; // SYN+data+…, one datagram, two echoes
      expect(nftCount(ns.n, `marked${fam}`) - before.marked).toBeGreaterThanOrEqual(min);
      expect(nftCount(ns.s, `arrived${fam}`) - before.arrived).toBeGreaterThanOrEqual(min); // client address kept (no SNAT)
      expect(nftCount(ns.c, `from_pool${fam}`) - before.pool).toBeGreaterThanOrEqual(min);
      expect(nftCount(ns.c, `from_real${fam}`)).toBe(0); // the real address never shows to the client
    });

    (HAVE_PING ? test : test.skip).each([
      ['v4', 4, /Time to live exceeded/],
      ['v6', 6, /Time exceeded: Hop limit/],
    ])('an ICMP error from the node quotes the intercept address when the TTL runs out there (%s)', (_f, fam, want) => {
      const I = fam === 4 ? I4 : I6;
      const r = inNs(ns.c, ['ping', '-c', '1', '-W', '2', fam === 4 ? '-t' : '-t', '1', I], { timeoutMs: 10000 });
      expect(r.out).toMatch(want as RegExp);
    });

    test('a running TCP flow survives a daemon restart when the pins are adopted', async () => {
      const echoed = () => nftCount(ns.c, 'from_pool4');
      const before = echoed();
      // 8 s of echoes every 100 ms: long enough to span the restart on a loaded machine (checked below)
      const flow = Bun.spawn(['ip', 'netns', 'exec', ns.c, bunBin(), ECHO, 'hold', I4, '8000'], { stdout: 'pipe', stderr: 'inherit' });
      // the flow is up once echoes come back through the intercept address
      await waitFor(() => echoed() - before >= 3 || flow.exitCode !== null, 20_000, 50);
      expect(echoed() - before, 'echoes of the flow through the intercept address before the restart').toBeGreaterThanOrEqual(3);
      expect(flow.exitCode, 'the flow to be running before the restart').toBeNull();
      const again = up('-'); // a new daemon: reloads the programs, re-attaches, rebuilds the pool
      await Bun.sleep(0);
      expect(flow.exitCode, 'the flow to be still running after the restart (else it did not span it)').toBeNull();
      expect(again.adoptedBefore).toBe(true);
      expect(again.map).toEqual({ [R4]: I4, [R6]: I6 });
      expect(again.used).toBe(2);
      // chained with the LAN marker, one program per hook after attaching twice
      if (mode === 'tcx') {
        expect([...again.lan.tcxIngress].sort()).toEqual(['dnsseal_lan_in', 'dnsseal_nat_in']);
        expect(again.lan.tcxEgress).toEqual(['dnsseal_nat_out']);
      } else {
        expect(again.lan.clsactIngress).toEqual([`${0x5e50}:dnsseal_nat_in`, `${0x5e51}:dnsseal_lan_in`]);
        expect(again.lan.clsactEgress).toEqual([`${0x5e50}:dnsseal_nat_out`]);
      }
      await flow.exited;
      expect((await new Response(flow.stdout).text()).trim()).toMatch(/^ok \d+$/);
    });

    test('zero clear packets to the real addresses leave the node when the guard is attached', async () => {
      up('wan0');
      const pcap = `/tmp/dnsseal-${tag}.pcap`;
      const cap = await startCapture(ns.n, 'wan0', pcap);
      const maps = new EbpfMaps(new Bpf(), new PinPaths(root));
      try {
        const drops = () => maps.counters().find((c) => c.kind === CNT_GUARD_DROP && c.id === 1)?.packets ?? 0n;
        const d0 = drops();
        const before = { a4: nftCount(ns.s, 'arrived4'), a6: nftCount(ns.s, 'arrived6'), m4: nftCount(ns.n, 'marked4') };
        expect(echo('tcp', I4)).not.toBe('ok');
        expect(echo('udp', I4)).not.toBe('ok');
        expect(echo('udp', I6)).not.toBe('ok');
        if (HAVE_PING) expect(inNs(ns.c, ['ping', '-c', '1', '-W', '1', I6], { timeoutMs: 10000 }).code).not.toBe(0);
        expect(nftCount(ns.n, 'marked4') - before.m4).toBeGreaterThanOrEqual(2); // translated and marked …
        expect(drops() - d0).toBeGreaterThanOrEqual(4n); // … and dropped by the guard
        expect(nftCount(ns.s, 'arrived4')).toBe(before.a4);
        expect(nftCount(ns.s, 'arrived6')).toBe(before.a6);
      } finally {
        maps.close();
        await Bun.sleep(300); // a window for a leaked packet to reach the file (immediate mode)
        cap.kill();
        await cap.exited;
      }
      const seen = sh(['tcpdump', '-n', '-r', pcap, `(dst host ${R4} or dst host ${R6}) and not esp`]).out.trim();
      sh(['rm', '-f', pcap]);
      expect(seen).toBe('');
    });
  });
}
