/**
 * The real dist/dnsseal in gateway mode (root): client — router — internet namespaces, knotd
 * authoritative for seal.test in the internet namespace, charon on the router with a tunnel
 * channel to a hub address that does not answer IKE (so no CHILD_SA, on any kernel), dnsseal
 * on the router with `--mode gateway --datapath ebpf --lan lan0 --wan wan0 --vici-socket`.
 *
 * - the daemon starts with the tunnel's local traffic selectors derived from lan0's addresses
 *   (it used to stop with `invalid value for: local_ts`);
 * - the map update happens before the answer is sent: the kernel's own syscall trace of the
 *   daemon shows bpf(BPF_MAP_UPDATE_ELEM) before the send on the DNS listener's socket;
 * - the client's packets to the protected addresses carry the channel mark (nftables counter
 *   in the router's prerouting hook, after the tc ingress marker); with charon's trap policy
 *   XFRM holds them (no SA: XfrmOutNoStates), and once charon is gone the leak guard drops
 *   them (kernel counter, and the daemon's metrics); nothing reaches the internet namespace and
 *   tcpdump on the WAN veth sees zero clear packets to them;
 * - the unprotected name's traffic passes in clear, unmarked.
 *
 * The pins are this checkout's PIN_ROOT: bun runs test files one after another, and
 * startDnssealClaimed() waits for any other dnsseal of this checkout to let go of them.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { ViciClient } from '../../src/ipsec/vici-client.ts';
import { channelMark } from '../../src/policy/types.ts';
import {
  CLIENT4, DaemonLab, HUB4, kernelCounters, labSkipReason, LAN4, metricSum, NET4, OPEN4, PROT4, PROT6, requireDist, type Dnsseal,
} from './fixtures/daemon-lab.ts';
import { fdOf, isMapUpdate, isSend, SyscallTrace, traceSkipReason, udpSocketFd } from './fixtures/syscall-trace.ts';
import { inNs, nftCount } from './netns.ts';
import { readPcap } from './fixtures/daemon-lab.ts';
import type { LabCharon } from '../ipsec/charon-lab.ts';

const skip = labSkipReason() ?? (Bun.which('/usr/lib/ipsec/charon') ? undefined : 'charon missing (make deps)');
if (skip) console.log(`netns daemon gateway: skipping: ${skip}`);
const traceSkip = skip ? undefined : traceSkipReason();
if (traceSkip) console.log(`netns daemon gateway: the syscall-order check is skipped: ${traceSkip}`);

const MARK = channelMark(1);
const METRICS = '127.0.0.1:9153';
const LISTENER = "Bun.listen({ hostname: '::', port: 80, socket: { open(s) { s.end(); }, data() {} } }); setInterval(() => {}, 1e6);";

describe.skipIf(skip !== undefined)('netns daemon gateway (dist/dnsseal)', () => {
  const lab = new DaemonLab('g');
  let charon: LabCharon;
  let daemon: Dnsseal;
  let capture: ReturnType<typeof Bun.spawn>;
  const pcap = `${lab.dir}/wan.pcap`;

  const dig = (name: string, type: string) => inNs(lab.c, ['dig', `@${LAN4}`, '+tries=1', '+timeout=3', '+short', name, type], { timeoutMs: 10_000 }).out.trim();
  /** UDP datagram, a TCP connect (true when accepted) and 3 echo requests from the client. */
  const traffic = (addr: string) => {
    inNs(lab.c, ['bash', '-c', `echo dnsseal > /dev/udp/${addr}/9; true`], { timeoutMs: 5000 });
    const tcp = inNs(lab.c, ['timeout', '2.5', 'bash', '-c', `exec 3<>/dev/tcp/${addr}/80`], { timeoutMs: 6000 });
    const ping = inNs(lab.c, ['ping', '-c', '3', '-i', '0.2', '-W', '1', addr], { timeoutMs: 10_000 });
    return { tcpOk: tcp.code === 0, pingOk: ping.code === 0 };
  };
  const nft = (name: string) => nftCount(lab.r, name);
  const arrived = (name: string) => nftCount(lab.i, name);

  beforeAll(async () => {
    requireDist();
    lab.topology();
    lab.nft(
      lab.r,
      `chain pre { type filter hook prerouting priority 0;
        iif lan0 ip daddr ${PROT4} meta mark ${MARK} counter comment "marked4"
        iif lan0 ip6 daddr ${PROT6} meta mark ${MARK} counter comment "marked6"
        iif lan0 ip daddr ${PROT4} meta mark != ${MARK} counter comment "unmarked4"
        iif lan0 ip daddr ${OPEN4} meta mark != 0 counter comment "open_marked"
        iif lan0 ip daddr ${OPEN4} counter comment "open4"
      }`,
    );
    lab.nft(
      lab.i,
      `chain input_c { type filter hook input priority 0;
        ip daddr ${PROT4} counter comment "arrived4"
        ip6 daddr ${PROT6} counter comment "arrived6"
        ip daddr ${OPEN4} counter comment "arrived_open"
      }`,
    );
    await lab.startKnot();
    charon = await lab.startCharon();
    lab.spawnIn(lab.i, [process.execPath, '-e', LISTENER]);
    capture = await lab.capture(lab.r, 'wan0', pcap);
    daemon = await lab.startDnssealClaimed([
      '--config', 'none', '--mode', 'gateway', '--datapath', 'ebpf', '--lan', 'lan0', '--wan', 'wan0',
      '--listen', `${LAN4}:53`, '--upstream', `${NET4}:53`, '--metrics', METRICS,
      '--channel', `hub=tunnel:${HUB4},identity=hub.test`, '--protect', 'prot.seal.test=hub',
      '--vici-socket', charon.socketPath, '--local-id', 'router.test', '--min-hold', '60', '--log-level', 'debug',
    ]);
  }, 300_000);

  afterAll(async () => {
    await lab.destroy();
  }, 60_000);

  test('starts and loads the tunnel on the LAN prefixes when --lan names an interface', async () => {
    const log = await Bun.file(daemon.logPath).text();
    expect(log).toContain('local_ts="10.77.1.0/24,fd00:77:1::/64"');
    expect(log).toContain('tunnel channel loaded');
    const vici = new ViciClient({ socketPath: charon.socketPath });
    try {
      const conns = await vici.listConns({ ike: 'dnsseal-tunnel-hub' });
      const conn = conns[0]!['dnsseal-tunnel-hub'] as any;
      expect(conn.children['dnsseal-tunnel-hub']['local-ts']).toEqual(['10.77.1.0/24', 'fd00:77:1::/64']);
      expect(conn['local-1'].id).toBe('router.test');
    } finally {
      vici.close();
    }
    expect(lab.xfrmPolicies(lab.r)).toContain('src 10.77.1.0/24 dst 0.0.0.0/0');
  });

  test.skipIf(traceSkip !== undefined)('writes the map before it sends the answer when a client asks for a protected name', () => {
    const listenerFd = udpSocketFd(daemon.pid, LAN4, 53);
    expect(listenerFd).toBeGreaterThan(2);
    const trace = new SyscallTrace(daemon.pid, 'gw');
    let events;
    try {
      expect(dig('prot.seal.test', 'A')).toBe(PROT4);
      Bun.sleepSync(300); // a registration that came late would still be in the trace, after the send
      events = trace.stop();
    } finally {
      trace.remove();
    }
    const answer = events.findLast((e) => isSend(e) && fdOf(e) === listenerFd);
    const upstream = events.find((e) => isSend(e) && fdOf(e) !== listenerFd);
    const update = events.find(isMapUpdate);
    if (!answer || !upstream || !update) console.error(events.map((e) => `${e.ts} ${e.call}(${e.args})`).join('\n'));
    expect(upstream).toBeDefined(); // the query went to knot …
    expect(update).toBeDefined(); // … the address went into the map …
    expect(answer).toBeDefined(); // … and the answer went back on the listener's socket
    expect(update!.ts).toBeGreaterThan(upstream!.ts);
    expect(update!.ts).toBeLessThanOrEqual(answer!.ts);
    expect(events.indexOf(update!)).toBeLessThan(events.indexOf(answer!));
  });

  test('lists the protected addresses when dig has returned', () => {
    expect(dig('prot.seal.test', 'A')).toBe(PROT4);
    expect(dig('prot.seal.test', 'AAAA')).toBe(PROT6);
    const rows = lab.listJson();
    const mine = rows.filter((r) => r.names.includes('prot.seal.test')).map((r) => r.address).sort();
    expect(mine).toEqual([PROT6, PROT4].sort());
    for (const r of rows.filter((x) => x.names.includes('prot.seal.test'))) {
      expect(r.channel).toBe('hub');
      expect(r.expiresInS).toBeGreaterThan(5); // TTL 5 floored by --min-hold 60
    }
  });

  test('marks the client packets and XFRM holds them when charon has the trap installed', () => {
    expect(lab.xfrmPolicies(lab.r)).toContain(`mark 0x${MARK.toString(16)}/0xffffffff`);
    const m4 = nft('marked4');
    const m6 = nft('marked6');
    const held = lab.xfrmStat(lab.r, 'XfrmOutNoStates');
    const k = kernelCounters();
    const t4 = traffic(PROT4);
    const t6 = traffic(PROT6);
    expect(t4).toEqual({ tcpOk: false, pingOk: false });
    expect(t6).toEqual({ tcpOk: false, pingOk: false });
    const marked = nft('marked4') - m4 + (nft('marked6') - m6);
    expect(nft('marked4') - m4).toBeGreaterThanOrEqual(5); // udp + ≥1 SYN + 3 echo
    expect(nft('marked6') - m6).toBeGreaterThanOrEqual(5);
    expect(nft('unmarked4')).toBe(0);
    expect(Number(kernelCounters().marked - k.marked)).toBeGreaterThanOrEqual(marked);
    // no SA for the mark: XFRM keeps every marked packet (and the guard never sees them)
    expect(lab.xfrmStat(lab.r, 'XfrmOutNoStates') - held).toBeGreaterThanOrEqual(marked);
    expect(arrived('arrived4')).toBe(0);
    expect(arrived('arrived6')).toBe(0);
    console.log(`netns daemon gateway: trap: marked ${marked}, held by XFRM ${lab.xfrmStat(lab.r, 'XfrmOutNoStates') - held}, guard drops ${kernelCounters().guardDrops - k.guardDrops}`);
  });

  test('the leak guard drops the marked packets when charon is gone', async () => {
    await lab.charons.stopCharon(charon); // SIGTERM: charon removes its policies on the way out
    const end = Date.now() + 10_000;
    while (lab.xfrmPolicies(lab.r).includes('mark 0x') && Date.now() < end) await Bun.sleep(100);
    expect(lab.xfrmPolicies(lab.r)).not.toContain('mark 0x');
    const m4 = nft('marked4');
    const m6 = nft('marked6');
    const k = kernelCounters();
    expect(traffic(PROT4)).toEqual({ tcpOk: false, pingOk: false });
    expect(traffic(PROT6)).toEqual({ tcpOk: false, pingOk: false });
    const marked = nft('marked4') - m4 + (nft('marked6') - m6);
    expect(marked).toBeGreaterThanOrEqual(10);
    const drops = Number(kernelCounters().guardDrops - k.guardDrops);
    expect(drops).toBeGreaterThanOrEqual(marked);
    expect(arrived('arrived4')).toBe(0);
    expect(arrived('arrived6')).toBe(0);
    // the daemon reports the same kernel counters
    const text = lab.metrics(METRICS);
    expect(metricSum(text, 'dnsseal_datapath_guard_drops_total')).toBe(Number(kernelCounters().guardDrops));
    expect(metricSum(text, 'dnsseal_datapath_marked_packets_total', 'channel="1"')).toBe(Number(kernelCounters().marked));
    console.log(`netns daemon gateway: no charon: marked ${marked}, guard drops ${drops}`);
  });

  test('passes the unprotected name in clear and unmarked when it matches no rule', () => {
    expect(dig('open.seal.test', 'A')).toBe(OPEN4);
    expect(lab.listJson().map((r) => r.address)).not.toContain(OPEN4);
    const before = arrived('arrived_open');
    expect(traffic(OPEN4)).toEqual({ tcpOk: true, pingOk: true });
    expect(arrived('arrived_open') - before).toBeGreaterThanOrEqual(5);
    expect(nft('open4')).toBeGreaterThanOrEqual(5);
    expect(nft('open_marked')).toBe(0);
  });

  test('tcpdump on the WAN veth sees zero clear packets to the protected addresses', async () => {
    const lines = await lab.readCapture(capture, pcap, `(dst host ${PROT4} or dst host ${PROT6}) and not esp and not (udp port 4500)`);
    const open = readPcap(pcap, `dst host ${OPEN4}`);
    const dns = readPcap(pcap, `udp port 53 and host ${NET4}`);
    console.log(`netns daemon gateway: WAN capture: ${lines.length} clear packets to protected addresses, ${open.length} to the unprotected one, ${dns.length} DNS (router ↔ knot); client ${CLIENT4}`);
    expect(lines).toEqual([]);
    expect(open.length).toBeGreaterThanOrEqual(5); // the capture did see traffic
    expect(dns.length).toBeGreaterThan(0);
  });
});
