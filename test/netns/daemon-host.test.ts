/**
 * Host mode with the real dist/dnsseal (root): the router namespace plays the host (dnsseal
 * listening on its loopback, charon, the uplink wan0 towards the internet namespace; the
 * client namespace is unused). dnsseal attaches its socket hooks to the root cgroup v2, as it
 * does on a real host, and the guard to wan0. A process in the host namespace that resolves a
 * protected name and connects to it gets its socket marked (nftables on the output hook);
 * with charon's trap XFRM holds the marked packets, once charon is gone the guard drops them,
 * and the guard drops what the hooks do not mark (ICMP echo, an unconnected socket's first
 * datagram). Nothing arrives, the WAN capture
 * has zero clear packets to the address, an unprotected name passes in clear and unmarked.
 * Finally `dnsseal down` removes every pin, the cgroup hooks and the tc links.
 *
 * The hooks on the root cgroup see every process on the machine, but they only act on
 * destinations in the map: here one documentation address, reachable only in this lab.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { existsSync } from 'node:fs';
import { defaultCgroupPath } from '../../src/datapath/ebpf/pins.ts';
import { channelMark } from '../../src/policy/types.ts';
import type { LabCharon } from '../ipsec/charon-lab.ts';
import { DaemonLab, DIST, HOST4, HUB4, kernelCounters, labSkipReason, NET4, OPEN4, PIN_ROOT, requireDist, type Dnsseal } from './fixtures/daemon-lab.ts';
import { bunBin, nftCount, nsenter, sh } from './netns.ts';

const cgRoot = defaultCgroupPath();
const skip = labSkipReason() ?? (Bun.which('/usr/lib/ipsec/charon') ? undefined : 'charon missing (make deps)') ?? (cgRoot ? undefined : 'no cgroup v2 mount');
if (skip) console.log(`netns daemon host: skipping: ${skip}`);

const MARK = channelMark(1);
const UDP_SEND = 'test/netns/fixtures/udp-send.ts';
const LISTENER = "Bun.listen({ hostname: '::', port: 80, socket: { open(s) { s.end(); }, data() {} } }); setInterval(() => {}, 1e6);";

describe.skipIf(skip !== undefined)('netns daemon host mode (dist/dnsseal)', () => {
  const lab = new DaemonLab('h');
  let charon: LabCharon;
  let daemon: Dnsseal;
  let capture: ReturnType<typeof Bun.spawn>;
  const pcap = `${lab.dir}/wan.pcap`;
  const host = (argv: string[], timeoutMs = 10_000) => nsenter(lab.r, argv, { timeoutMs });
  /**
   * From processes on the host: a connected UDP datagram and a TCP connect (connect hooks:
   * marked), a datagram from an unconnected UDP socket (its first one leaves unmarked: the
   * kernel reads sk_mark before the sendmsg hook runs, see host-datapath.test.ts) and 3 echo
   * requests (no socket hook): the guard must drop the unmarked ones.
   */
  const traffic = (addr: string) => {
    host(['bash', '-c', `echo dnsseal > /dev/udp/${addr}/9; true`]);
    host([bunBin(), UDP_SEND, `${addr}:9`]);
    const tcp = host(['timeout', '2.5', 'bash', '-c', `exec 3<>/dev/tcp/${addr}/80`]);
    const ping = host(['ping', '-c', '3', '-i', '0.2', '-W', '1', addr]);
    return { tcpOk: tcp.code === 0, pingOk: ping.code === 0 };
  };
  const out = (name: string) => nftCount(lab.r, name);

  beforeAll(async () => {
    requireDist();
    lab.topology();
    lab.nft(
      lab.r,
      `chain out_c { type filter hook output priority 0;
        ip daddr ${HOST4} meta mark ${MARK} counter comment "marked_host"
        ip daddr ${HOST4} meta mark != ${MARK} counter comment "unmarked_host"
        ip daddr ${OPEN4} meta mark != 0 counter comment "open_marked"
        ip daddr ${OPEN4} counter comment "open_out"
      }`,
    );
    lab.nft(lab.i, `chain input_c { type filter hook input priority 0; ip daddr ${HOST4} counter comment "arrived_host"; ip daddr ${OPEN4} counter comment "arrived_open"; }`);
    await lab.startKnot();
    charon = await lab.startCharon();
    lab.spawnIn(lab.i, [process.execPath, '-e', LISTENER]);
    capture = await lab.capture(lab.r, 'wan0', pcap);
    daemon = await lab.startDnssealClaimed([
      '--config', 'none', '--mode', 'host', '--datapath', 'ebpf', '--wan', 'wan0',
      '--listen', '127.0.0.1:53', '--upstream', `${NET4}:53`,
      '--channel', `hub=tunnel:${HUB4},identity=hub.test`, '--protect', 'hostp.seal.test=hub',
      '--vici-socket', charon.socketPath, '--local-id', 'router.test', '--min-hold', '60', '--log-level', 'debug',
    ]);
  }, 300_000);

  afterAll(async () => {
    await lab.destroy();
  }, 60_000);

  test('registers the protected name when a host process resolves it through dnsseal', () => {
    expect(host(['dig', '@127.0.0.1', '+tries=1', '+short', 'hostp.seal.test', 'A']).out.trim()).toBe(HOST4);
    const row = lab.listJson().find((r) => r.address === HOST4);
    expect(row?.names).toEqual(['hostp.seal.test']);
    expect(row?.channel).toBe('hub');
    // host mode: the tunnel's local selector is our own address
    expect(lab.xfrmPolicies(lab.r)).toContain(`src 198.51.100.1/32 dst 0.0.0.0/0`);
  });

  test('marks the host sockets to the protected address and nothing leaves when charon has the trap', () => {
    const m = out('marked_host');
    const u = out('unmarked_host');
    const k = kernelCounters();
    const held = lab.xfrmStat(lab.r, 'XfrmOutNoStates');
    expect(traffic(HOST4)).toEqual({ tcpOk: false, pingOk: false });
    const marked = out('marked_host') - m;
    const unmarked = out('unmarked_host') - u;
    const k2 = kernelCounters();
    console.log(`netns daemon host: trap: marked ${marked} (sockets ${k2.sockMarked - k.sockMarked}), XFRM no-state lookups ${lab.xfrmStat(lab.r, "XfrmOutNoStates") - held}, unmarked (echo, first unconnected datagram) ${unmarked}, guard drops ${k2.guardDrops - k.guardDrops}`);
    expect(marked).toBeGreaterThanOrEqual(2); // the connected datagram and ≥1 SYN
    expect(Number(k2.sockMarked - k.sockMarked)).toBeGreaterThanOrEqual(2); // the UDP and the TCP socket
    expect(lab.xfrmStat(lab.r, 'XfrmOutNoStates') - held).toBeGreaterThanOrEqual(marked);
    expect(unmarked).toBeGreaterThanOrEqual(4); // 3 echo requests, the unconnected datagram
    expect(Number(k2.guardDrops - k.guardDrops)).toBeGreaterThanOrEqual(unmarked);
    expect(nftCount(lab.i, 'arrived_host')).toBe(0);
  });

  test('the leak guard drops the host packets to the protected address when charon is gone', async () => {
    await lab.charons.stopCharon(charon);
    const end = Date.now() + 10_000;
    while (lab.xfrmPolicies(lab.r).includes('mark 0x') && Date.now() < end) await Bun.sleep(100);
    expect(lab.xfrmPolicies(lab.r)).not.toContain('mark 0x');
    const m = out('marked_host');
    const u = out('unmarked_host');
    const k = kernelCounters();
    expect(traffic(HOST4)).toEqual({ tcpOk: false, pingOk: false });
    const sent = out('marked_host') - m + (out('unmarked_host') - u);
    const drops = Number(kernelCounters().guardDrops - k.guardDrops);
    console.log(`netns daemon host: no charon: marked ${out('marked_host') - m}, unmarked ${out('unmarked_host') - u}, guard drops ${drops}`);
    expect(out('marked_host') - m).toBeGreaterThanOrEqual(2);
    expect(drops).toBeGreaterThanOrEqual(sent);
    expect(nftCount(lab.i, 'arrived_host')).toBe(0);
  });

  test('passes an unprotected name in clear and unmarked when a host process talks to it', () => {
    expect(host(['dig', '@127.0.0.1', '+tries=1', '+short', 'open.seal.test', 'A']).out.trim()).toBe(OPEN4);
    expect(traffic(OPEN4)).toEqual({ tcpOk: true, pingOk: true });
    expect(out('open_out')).toBeGreaterThanOrEqual(5);
    expect(out('open_marked')).toBe(0);
    expect(nftCount(lab.i, 'arrived_open')).toBeGreaterThanOrEqual(5);
  });

  test('tcpdump on the uplink sees zero clear packets to the protected address', async () => {
    const lines = await lab.readCapture(capture, pcap, `dst host ${HOST4} and not esp and not (udp port 4500)`);
    const open = (await Promise.resolve(sh(['tcpdump', '-n', '-r', pcap, `dst host ${OPEN4}`]).out)).split('\n').filter(Boolean);
    console.log(`netns daemon host: WAN capture: ${lines.length} clear packets to ${HOST4}, ${open.length} to the unprotected address`);
    expect(lines).toEqual([]);
    expect(open.length).toBeGreaterThanOrEqual(5);
  });

  test('dnsseal down removes the pins, the cgroup hooks and the tc links when the daemon has stopped', async () => {
    daemon.proc.kill('SIGTERM');
    await daemon.proc.exited;
    expect(daemon.proc.exitCode).toBe(0);
    expect(existsSync(`${PIN_ROOT}/maps/dnsseal_dests4`)).toBe(true); // a stopped daemon leaves the kernel protecting
    const down = sh(['nsenter', `--net=/run/netns/${lab.r}`, DIST, 'down', '--json', '--pin-root', PIN_ROOT, '--control', lab.control], { timeoutMs: 30_000 });
    expect(down.code).toBe(0);
    expect(JSON.parse(down.out).via).toBe('teardown');
    expect(existsSync(PIN_ROOT)).toBe(false);
    const cg = sh(['bpftool', '-j', 'cgroup', 'show', cgRoot!]).out;
    expect(cg).not.toContain('dnsseal');
    expect(nsenter(lab.r, ['bpftool', '-j', 'net', 'show', 'dev', 'wan0']).out).not.toContain('dnsseal');
    // with no guard and no mark, the address is reachable in clear again: the teardown took effect
    expect(traffic(HOST4).tcpOk).toBe(true);
  });
});
