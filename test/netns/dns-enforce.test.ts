/**
 * enforce_dns on this machine's kernel (root): client — router — internet namespaces. The router
 * runs a stand-in for dnsseal on its LAN address (UDP/TCP 53 answering "dnsseal"), the internet
 * namespace a rogue resolver (UDP/TCP 53 and 853 answering "rogue"). The real NftDnsEnforcer
 * (nft in the router namespace) must send the client's plain DNS to the rogue resolver to dnsseal
 * (redirect; the reply still comes from the address asked) or drop it (drop), drop DoT/DoQ on 853
 * in both modes, drop IPv6 plain DNS when dnsseal serves no IPv6 to the LAN, count all of it, and
 * leave nothing behind after remove().
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { NftDnsEnforcer, type EnforcePlan } from '../../src/datapath/dns-enforce.ts';
import { privSkipReason } from '../datapath/ebpf/helpers.ts';
import { bunBin, delNs, nsenter, script, sh } from './netns.ts';

const skip = privSkipReason() ?? (sh(['which', 'nft', 'nsenter']).code !== 0 ? 'nft/nsenter missing' : undefined);
if (skip) console.log(`netns enforce_dns: skipping: ${skip}`);

const PROBE = 'test/netns/fixtures/port-probe.ts';
const tag = `dnse${process.pid % 10000}`;
const C = `${tag}-c`;
const R = `${tag}-r`;
const I = `${tag}-i`;
const ROGUE4 = '198.51.100.53';
const ROGUE6 = 'fd00:66:2::53';

function probe(proto: 'udp' | 'tcp', addr: string, port: number): string {
  return nsenter(C, [bunBin(), PROBE, proto, addr, String(port)], { ok: true }).out.trim();
}

describe.skipIf(skip !== undefined)('netns enforce_dns (nft)', () => {
  const servers: ReturnType<typeof Bun.spawn>[] = [];
  const enforcer = new NftDnsEnforcer((argv, stdin) => {
    const r = Bun.spawnSync(['nsenter', `--net=/run/netns/${R}`, ...argv], {
      stdin: stdin === undefined ? 'ignore' : new TextEncoder().encode(stdin),
      stdout: 'pipe',
      stderr: 'pipe',
    });
    return { code: r.exitCode ?? -1, out: r.stdout.toString(), err: r.stderr.toString().trim() };
  });
  const plan = (mode: EnforcePlan['mode']): EnforcePlan => ({ mode, lan: ['lan0'], listen: ['10.66.1.1:53', '127.0.0.53:53'] });

  async function serve(ns: string, addrs: string, ports: string, name: string) {
    const p = Bun.spawn(['nsenter', `--net=/run/netns/${ns}`, bunBin(), PROBE, 'serve', addrs, ports, name], { stdout: 'pipe', stderr: 'inherit' });
    servers.push(p);
    const reader = p.stdout.getReader();
    const first = await reader.read();
    reader.releaseLock();
    if (!new TextDecoder().decode(first.value).includes('ready')) throw new Error(`${name} server did not start`);

  }

  beforeAll(async () => {
    delNs(C, R, I);
    for (const n of [C, R, I]) sh(['ip', 'netns', 'add', n], { ok: true });
    sh(['ip', 'link', 'add', 'lan0', 'netns', R, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', C], { ok: true });
    sh(['ip', 'link', 'add', 'wan0', 'netns', R, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', I], { ok: true });
    script(C, [
      'ip link set lo up; ip link set eth0 up',
      'ip addr add 10.66.1.2/24 dev eth0; ip -6 addr add fd00:66:1::2/64 dev eth0 nodad',
      'ip route add default via 10.66.1.1; ip -6 route add default via fd00:66:1::1',
    ]);
    script(R, [
      'ip link set lo up; ip link set lan0 up; ip link set wan0 up',
      'ip addr add 10.66.1.1/24 dev lan0; ip -6 addr add fd00:66:1::1/64 dev lan0 nodad',
      'ip addr add 198.51.100.1/24 dev wan0; ip -6 addr add fd00:66:2::1/64 dev wan0 nodad',
      'sysctl -qw net.ipv4.ip_forward=1; sysctl -qw net.ipv6.conf.all.forwarding=1',
    ]);
    script(I, [
      'ip link set lo up; ip link set eth0 up',
      `ip addr add ${ROGUE4}/24 dev eth0; ip -6 addr add ${ROGUE6}/64 dev eth0 nodad`,
      'ip route add default via 198.51.100.1; ip -6 route add default via fd00:66:2::1',
    ]);
    await serve(R, '10.66.1.1', '53', 'dnsseal');
    await serve(I, `${ROGUE4},${ROGUE6}`, '53,853', 'rogue');
    // The veths and IPv6 neighbours come up in the background: wait until both families forward.
    const end = Date.now() + 20_000;
    while (probe('udp', ROGUE4, 53) !== 'rogue' || probe('udp', ROGUE6, 53) !== 'rogue') {
      if (Date.now() > end) throw new Error(`the client never reached the rogue resolver (IPv4: ${probe('udp', ROGUE4, 53)}, IPv6: ${probe('udp', ROGUE6, 53)}): the topology does not forward`);
      await Bun.sleep(100);
    }
  }, 60_000);

  afterAll(async () => {
    for (const p of servers) p.kill('SIGKILL');
    await Promise.all(servers.map((p) => p.exited));
    delNs(C, R, I);
  });

  test('the client reaches the rogue resolver on 53 and 853 when nothing is enforced', () => {
    expect(probe('udp', ROGUE4, 53)).toBe('rogue');
    expect(probe('tcp', ROGUE4, 853)).toBe('rogue');
    expect(probe('udp', ROGUE6, 53)).toBe('rogue');
  });

  test('redirect: plain DNS to another resolver is answered by dnsseal from the address asked, DoT/DoQ and IPv6 DNS are dropped, and counted', () => {
    enforcer.apply(plan('redirect'));
    expect(probe('udp', ROGUE4, 53)).toBe('dnsseal'); // a connected socket: the reply came from ROGUE4:53
    expect(probe('tcp', ROGUE4, 53)).toBe('dnsseal');
    expect(probe('udp', '10.66.1.1', 53)).toBe('dnsseal'); // dnsseal itself: untouched
    expect(probe('tcp', ROGUE4, 853)).toBe('timeout');
    expect(probe('udp', ROGUE4, 853)).toBe('timeout');
    expect(probe('udp', ROGUE6, 53)).toBe('timeout'); // no IPv6 listen address for the LAN
    const n = enforcer.counts();
    expect(n.dns_redirected.packets).toBeGreaterThanOrEqual(2); // NAT counts a flow's first packet
    expect(n.dot_dropped.packets).toBeGreaterThanOrEqual(1);
    expect(n.doq_dropped.packets).toBe(1);
    expect(n.dns_dropped.packets).toBe(1);
  });

  test('drop: plain DNS to another resolver gets nothing, dnsseal still answers, and it is counted', () => {
    enforcer.apply(plan('drop'));
    const before = enforcer.counts().dns_dropped.packets; // a fresh table starts at 0
    expect(before).toBe(0);
    expect(probe('udp', ROGUE4, 53)).toBe('timeout');
    expect(probe('udp', '10.66.1.1', 53)).toBe('dnsseal');
    expect(probe('tcp', ROGUE4, 853)).toBe('timeout');
    expect(enforcer.counts().dns_dropped.packets).toBe(1);
  });

  test('remove leaves no table and the client reaches the rogue resolver again; a second remove finds nothing', () => {
    expect(enforcer.remove()).toEqual(['nft table inet dnsseal_enforce']);
    expect(nsenter(R, ['nft', 'list', 'tables']).out).not.toContain('dnsseal_enforce');
    expect(probe('udp', ROGUE4, 53)).toBe('rogue');
    expect(enforcer.remove()).toEqual([]);
  });
});
