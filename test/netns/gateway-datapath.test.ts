/**
 * Gateway mode on this machine's kernel (root only): client — router — internet namespaces with
 * veth. The router gets the LAN marker (tc ingress) and the WAN leak guard (tc egress) from the
 * eBPF backend, run by a helper process that then EXITS (as after kill -9: pins and links must
 * keep working). An entry inserted through the backend makes the client's packets to the
 * protected address carry the channel mark (nftables `meta mark` counter on the router's forward
 * hook); with no XFRM to take them, the guard drops every one (kernel counter; tcpdump on the
 * router's WAN veth and an nftables counter in the internet namespace see zero). Unprotected
 * traffic passes in clear. Runs once with tcx and once with the clsact fallback (Debian 12's path).
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { EbpfMaps } from '../../src/datapath/ebpf/maps.ts';
import { Bpf } from '../../src/datapath/ebpf/bpf-syscall.ts';
import { PinPaths } from '../../src/datapath/ebpf/pins.ts';
import { CNT_GUARD_DROP, CNT_MARKED } from '../../src/datapath/layout.ts';
import { channelMark } from '../../src/policy/types.ts';
import { kernelHasTcx, privSkipReason, scratchPinRoot, wipe } from '../datapath/ebpf/helpers.ts';
import { waitFor } from './fixtures/dp-watch.ts';
import { bunBin, delNs, inNs, nftCount, nsenter, script, sh, startCapture } from './netns.ts';

const skip = privSkipReason() ?? (sh(['which', 'nft', 'tcpdump', 'nsenter']).code !== 0 ? 'nft/tcpdump/nsenter missing' : undefined);
if (skip) console.log(`netns gateway datapath: skipping: ${skip}`);

const MARK = channelMark(1);
const PROT4 = '203.0.113.10';
const OPEN4 = '203.0.113.20';
const PROT6 = '2001:db8:20::10';
const OPEN6 = '2001:db8:20::20';
const HELPER = 'test/netns/fixtures/dp-helper.ts';
/** TCP :80 on every address of the internet namespace; accepts and closes. */
const LISTENER = "Bun.listen({ hostname: '::', port: 80, socket: { open(s) { s.end(); }, data() {} } }); setInterval(() => {}, 1e6);";

function topology(tag: string) {
  const c = `dnsseal-${tag}-c`;
  const r = `dnsseal-${tag}-r`;
  const i = `dnsseal-${tag}-i`;
  delNs(c, r, i);
  for (const n of [c, r, i]) sh(['ip', 'netns', 'add', n], { ok: true });
  sh(['ip', 'link', 'add', 'lan0', 'netns', r, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', c], { ok: true });
  sh(['ip', 'link', 'add', 'wan0', 'netns', r, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', i], { ok: true });
  script(c, [
    'ip link set lo up; ip link set eth0 up',
    'ip addr add 10.10.1.2/24 dev eth0; ip -6 addr add fd00:1::2/64 dev eth0 nodad',
    'ip route add default via 10.10.1.1; ip -6 route add default via fd00:1::1',
  ]);
  script(r, [
    'ip link set lo up; ip link set lan0 up; ip link set wan0 up',
    'ip addr add 10.10.1.1/24 dev lan0; ip -6 addr add fd00:1::1/64 dev lan0 nodad',
    'ip addr add 198.51.100.1/24 dev wan0; ip -6 addr add fd00:2::1/64 dev wan0 nodad',
    'ip route add 203.0.113.0/24 via 198.51.100.2; ip -6 route add 2001:db8:20::/64 via fd00:2::2',
    'sysctl -qw net.ipv4.ip_forward=1; sysctl -qw net.ipv6.conf.all.forwarding=1',
    `nft add table inet dnsseal_t`,
    `nft 'add chain inet dnsseal_t forward_c { type filter hook forward priority 0; }'`,
    `nft add rule inet dnsseal_t forward_c meta mark ${MARK} ip daddr ${PROT4} counter comment "marked4"`,
    `nft add rule inet dnsseal_t forward_c meta mark ${MARK} ip6 daddr ${PROT6} counter comment "marked6"`,
  ]);
  script(i, [
    'ip link set lo up; ip link set eth0 up',
    'ip addr add 198.51.100.2/24 dev eth0; ip -6 addr add fd00:2::2/64 dev eth0 nodad',
    `ip addr add ${PROT4}/32 dev lo; ip addr add ${OPEN4}/32 dev lo`,
    `ip -6 addr add ${PROT6}/128 dev lo nodad; ip -6 addr add ${OPEN6}/128 dev lo nodad`,
    'ip route add 10.10.1.0/24 via 198.51.100.1; ip -6 route add fd00:1::/64 via fd00:2::1',
    `nft add table inet dnsseal_t`,
    `nft 'add chain inet dnsseal_t input_c { type filter hook input priority 0; }'`,
    `nft add rule inet dnsseal_t input_c ip daddr ${PROT4} counter comment "arrived4"`,
    `nft add rule inet dnsseal_t input_c ip6 daddr ${PROT6} counter comment "arrived6"`,
    `nft add rule inet dnsseal_t input_c ip daddr ${OPEN4} counter comment "open4"`,
  ]);
  return { c, r, i };
}

const HAVE_PING = sh(['which', 'ping']).code === 0;
if (!HAVE_PING) console.log('netns gateway datapath: no ping (iputils-ping): ICMP left to the BPF_PROG_RUN tables');

/**
 * Client traffic to one address: a UDP datagram, a TCP connect (ok = the listener in the
 * internet namespace accepted it) and, where ping exists, ICMP echo.
 */
function traffic(ns: string, addr: string): { pingOk: boolean } {
  inNs(ns, ['bash', '-c', `echo dnsseal > /dev/udp/${addr}/9; true`], { timeoutMs: 5000 });
  const tcp = inNs(ns, ['timeout', '2.5', 'bash', '-c', `exec 3<>/dev/tcp/${addr}/80`], { timeoutMs: 6000 });
  if (HAVE_PING) inNs(ns, ['ping', '-c', '2', '-i', '0.2', '-W', '1', addr], { timeoutMs: 10000 });
  return { pingOk: tcp.code === 0 };
}

for (const mode of ['tcx', 'clsact'] as const) {
  const noTcx = mode === 'tcx' && !skip && !kernelHasTcx();
  if (noTcx) console.log('netns gateway datapath (tcx): skipping: kernel < 6.6 has no tcx');
  (skip || noTcx ? describe.skip : describe)(`netns gateway datapath (${mode})`, () => {
    const tag = `${mode === 'tcx' ? 'gx' : 'gc'}${process.pid % 10000}`;
    const root = scratchPinRoot(`gw-${mode}`);
    let ns: ReturnType<typeof topology>;
    let maps: EbpfMaps;
    let capture: ReturnType<typeof Bun.spawn> | undefined;
    let listener: ReturnType<typeof Bun.spawn> | undefined;
    const pcap = `/tmp/dnsseal-${tag}.pcap`;

    const helper = (...args: string[]) => nsenter(ns.r, [bunBin(), HELPER, ...args], { ok: true, timeoutMs: 30000 });

    beforeAll(async () => {
      await wipe(root);
      ns = topology(tag);
      const up = JSON.parse(helper('up', root, 'gateway', 'lan0', 'wan0', mode).out);
      expect(up.wan0[mode === 'tcx' ? 'tcxEgress' : 'clsactEgress']).toEqual(mode === 'tcx' ? ['dnsseal_wan_out'] : 1);
      maps = new EbpfMaps(new Bpf(), new PinPaths(root));
      listener = Bun.spawn(['ip', 'netns', 'exec', ns.i, bunBin(), '-e', LISTENER], { stdout: 'ignore', stderr: 'inherit' });
      capture = await startCapture(ns.r, 'wan0', pcap);
      // the first test needs the TCP listener up (its connect must succeed)
      const listening = () => inNs(ns.i, ['ss', '-Hltn', 'sport = :80']).out.trim() !== '';
      await waitFor(() => listening() || listener!.exitCode !== null, 20_000, 100);
      expect(listening(), 'the TCP listener on :80 in the internet namespace').toBe(true);
    });

    afterAll(async () => {
      capture?.kill();
      listener?.kill();
      maps?.close();
      if (ns) {
        nsenter(ns.r, [bunBin(), HELPER, 'down', root], { timeoutMs: 30000 });
        delNs(ns.c, ns.r, ns.i);
      }
      await wipe(root);
      sh(['rm', '-f', pcap]);
    });

    test('unprotected traffic passes in clear when no entry exists', () => {
      expect(traffic(ns.c, PROT4).pingOk).toBe(true); // not yet protected
      expect(traffic(ns.c, OPEN4).pingOk).toBe(true);
      expect(nftCount(ns.i, 'arrived4')).toBeGreaterThan(0);
    });

    test('packets to a protected address are marked and dropped by the guard when there is no XFRM', () => {
      maps.upsertDest({ group: 0, addr: PROT4 }, { channelId: 1, mark: MARK, flags: 0 });
      maps.upsertDest({ group: 0, addr: PROT6 }, { channelId: 1, mark: MARK, flags: 0 });
      const arrived4 = nftCount(ns.i, 'arrived4');
      const marked4 = nftCount(ns.r, 'marked4');
      const drops = (kind: number, id: number) => maps.counters().find((c) => c.kind === kind && c.id === id)?.packets ?? 0n;
      const drop0 = drops(CNT_GUARD_DROP, 1);
      const mark0 = drops(CNT_MARKED, 1);

      expect(traffic(ns.c, PROT4).pingOk).toBe(false);
      expect(traffic(ns.c, PROT6).pingOk).toBe(false);

      expect(nftCount(ns.r, 'marked4') - marked4).toBeGreaterThanOrEqual(2); // udp + ≥1 SYN (+ echo where ping exists)
      expect(nftCount(ns.r, 'marked6')).toBeGreaterThanOrEqual(2);
      expect(drops(CNT_GUARD_DROP, 1) - drop0).toBeGreaterThanOrEqual(4n);
      expect(drops(CNT_MARKED, 1) - mark0).toBeGreaterThanOrEqual(4n);
      expect(nftCount(ns.i, 'arrived4')).toBe(arrived4); // nothing reached the internet side
      expect(nftCount(ns.i, 'arrived6')).toBe(0);
      expect(maps.lastSeenNs({ group: 0, addr: PROT4 })).toBeGreaterThan(0n);
    });

    test('unprotected traffic still passes when another address is protected', () => {
      const open = nftCount(ns.i, 'open4');
      expect(traffic(ns.c, OPEN4).pingOk).toBe(true);
      expect(traffic(ns.c, OPEN6).pingOk).toBe(true);
      expect(nftCount(ns.i, 'open4')).toBeGreaterThan(open);
    });

    test('tcpdump on the WAN veth sees zero clear packets to the protected address after protection', async () => {
      // a window for the last packets to reach the file (immediate mode: they are written as
      // they come); everything to PROT after the entry went in must be absent from the capture
      await Bun.sleep(500);
      capture?.kill();
      await capture?.exited;
      const r = sh(['tcpdump', '-n', '-r', pcap, `(dst host ${PROT4} or dst host ${PROT6}) and not esp`]);
      const lines = r.out.trim().split('\n').filter(Boolean);
      // the only packets to PROT4 are from the first test, before the entry existed: udp + one TCP exchange (+ echo)
      const before = lines.filter((l) => l.includes(PROT4));
      const six = lines.filter((l) => l.includes(PROT6));
      expect(six).toEqual([]);
      expect(before.length).toBeGreaterThan(0);
      expect(before.length).toBeLessThanOrEqual(10);
      const open = sh(['tcpdump', '-n', '-r', pcap, `dst host ${OPEN4}`]).out.trim().split('\n').filter(Boolean);
      expect(open.length).toBeGreaterThan(0);
    });

    test('attaching twice leaves one program per hook when the helper runs again', () => {
      const again = JSON.parse(helper('up', root, 'gateway', 'lan0', 'wan0', mode).out);
      if (mode === 'tcx') {
        expect(again.lan0.tcxIngress).toEqual(['dnsseal_lan_in']);
        expect(again.wan0.tcxEgress).toEqual(['dnsseal_wan_out']);
      } else {
        expect([again.lan0.clsactIngress, again.wan0.clsactEgress]).toEqual([1, 1]);
      }
      expect(maps.listDests().map((e) => e.key.addr).sort()).toEqual([PROT6, PROT4].sort()); // adopted, not flushed
      expect(traffic(ns.c, PROT4).pingOk).toBe(false);
    });

    test('teardown detaches everything and is idempotent when run twice', () => {
      maps.close();
      const first = JSON.parse(helper('down', root).out) as string[];
      expect(first.length).toBeGreaterThan(0);
      expect(JSON.parse(helper('down', root).out)).toEqual([]);
      const q = JSON.parse(helper('query', 'lan0,wan0').out);
      expect(q.wan0).toEqual({ tcxIngress: [], tcxEgress: [], clsactIngress: 0, clsactEgress: 0 });
      expect(q.lan0).toEqual({ tcxIngress: [], tcxEgress: [], clsactIngress: 0, clsactEgress: 0 });
      expect(traffic(ns.c, PROT4).pingOk).toBe(true); // no guard any more: clear again
    });
  });
}
