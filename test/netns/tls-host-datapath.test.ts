/**
 * Host mode, tls channels (issue 13), on this machine's kernel (root only): the same namespace
 * and child cgroup as host-datapath.test.ts (WAN veth v0, its peer v1 counts what left), a tls
 * `peer` channel (id 1, TLS port 9853) protecting one IPv4 and one IPv6 address, and a stand-in
 * relay (fixtures/tls-relay-stub.ts) that tells the kernel where it listens and answers each
 * connection with the original destination it finds in the map.
 *
 * - a plain application's TCP connect (IPv4, IPv6 to a v4-mapped address) reaches the relay, the
 *   relay finds the original destination, getpeername() shows it, nothing leaves in clear;
 * - the relay's own connect to the peer's TLS port is not redirected and the guard lets it out;
 * - UDP and ICMP to the address, and TCP that bypasses the hooks (a process outside the cgroup),
 *   are dropped by the guard and counted by reason;
 * - without a relay, connects are refused (EPERM), nothing leaves.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { mkdirSync } from 'node:fs';
import { Bpf } from '../../src/datapath/ebpf/bpf-syscall.ts';
import { EbpfMaps } from '../../src/datapath/ebpf/maps.ts';
import { defaultCgroupPath, PinPaths } from '../../src/datapath/ebpf/pins.ts';
import { EbpfTlsMaps } from '../../src/datapath/ebpf/tls-maps.ts';
import { CNT_GUARD_DROP, CNT_GUARD_PASS } from '../../src/datapath/layout.ts';
import { channelMark } from '../../src/policy/types.ts';
import { privSkipReason, scratchPinRoot, wipe } from '../datapath/ebpf/helpers.ts';
import { hostLoop, hostTearDown } from './host-fixture.ts';
import { bunBin, nftCount, nsenter, sh } from './netns.ts';

const cgRoot = defaultCgroupPath();
const PY = Bun.which('python3', { PATH: '/usr/bin:/bin' });
const skip =
  privSkipReason() ?? (cgRoot ? undefined : 'no cgroup v2 mount') ?? (sh(['which', 'nft', 'nsenter']).code !== 0 ? 'nft/nsenter missing' : undefined) ?? (PY ? undefined : 'python3 missing');
if (skip) console.log(`netns tls host datapath: skipping: ${skip}`);

const MARK = channelMark(1);
const PROT4 = '203.0.113.10';
const PROT6 = '2001:db8:20::10';
const HELPER = 'test/netns/fixtures/dp-helper.ts';
const STUB = 'test/netns/fixtures/tls-relay-stub.ts';
const PEERNAME = 'test/netns/fixtures/peername.py';
const UDP_SEND = 'test/netns/fixtures/udp-send.ts';
const TLS_PORT = 9853;

(skip ? describe.skip : describe)('netns tls host datapath (connect redirect, sockops, getpeername, guard)', () => {
  const ns = `dsg-tlsx-h${process.pid % 10000}`;
  const cg = `${cgRoot}/dnsseal-tlsx-${process.pid}`;
  const root = scratchPinRoot('tlsx');
  let maps: EbpfMaps;
  let tls: EbpfTlsMaps;
  let stub: ReturnType<typeof Bun.spawn> | undefined;

  const inCg = (cmd: string) => nsenter(ns, ['sh', '-c', `echo $$ > ${cg}/cgroup.procs && exec ${cmd}`], { timeoutMs: 10000 });
  const c = (name: string) => nftCount(ns, name);
  const counter = (kind: number, id: number) => maps.counters().find((x) => x.kind === kind && x.id === id)?.packets ?? 0n;
  const app = (addr: string, port: number) => inCg(`${PY} ${PEERNAME} ${addr} ${port}`).out.trim().split('\n');

  /** Starts the stub relay in the namespace and the test cgroup (its hooks see the relay's connects: exempt by pid). */
  async function startStub(extra: string[] = []): Promise<{ port: number; lines: string[] }> {
    const p = Bun.spawn(['nsenter', `--net=/run/netns/${ns}`, 'sh', '-c', `echo $$ > ${cg}/cgroup.procs && exec ${bunBin()} ${STUB} ${root} 0 ${extra.join(' ')}`], { stdout: 'pipe', stderr: 'inherit' });
    stub = p;
    const lines: string[] = [];
    const reader = p.stdout.getReader();
    let buf = '';
    const want = extra[0] === 'connect' ? 2 : 1;
    while (lines.length < want) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`stub relay ended: ${buf}`);
      buf += new TextDecoder().decode(value);
      const parts = buf.split('\n');
      buf = parts.pop()!;
      lines.push(...parts);
    }
    reader.releaseLock();
    return { port: Number(lines[0]!.split(' ')[1]), lines };
  }

  async function stopStub(): Promise<void> {
    stub?.kill('SIGTERM');
    await stub?.exited;
    stub = undefined;
  }

  beforeAll(async () => {
    await wipe(root);
    hostLoop(ns, [
      'nft add table inet dnsseal_t',
      `nft 'add chain inet dnsseal_t pre_c { type filter hook prerouting priority 0; }'`,
      `nft add rule inet dnsseal_t pre_c iif v1 ip daddr ${PROT4} tcp dport ${TLS_PORT} counter comment left_tls`,
      `nft add rule inet dnsseal_t pre_c iif v1 ip daddr ${PROT4} tcp dport != ${TLS_PORT} counter comment left_tcp`,
      `nft add rule inet dnsseal_t pre_c iif v1 ip daddr ${PROT4} meta l4proto != tcp counter comment left_other`,
      `nft add rule inet dnsseal_t pre_c iif v1 ip6 daddr ${PROT6} counter comment left6`,
    ]);
    mkdirSync(cg, { recursive: true });
    nsenter(ns, [bunBin(), HELPER, 'up', root, 'host', '-', 'v0', '-', cg], { ok: true, timeoutMs: 30000 });
    const bpf = new Bpf();
    maps = new EbpfMaps(bpf, new PinPaths(root));
    tls = new EbpfTlsMaps(bpf, new PinPaths(root));
    maps.setChannels([{ id: 1, mark: MARK, up: false, peer: false, tls: { port: TLS_PORT } }]);
    maps.upsertDest({ group: 0, addr: PROT4 }, { channelId: 1, mark: MARK, flags: 0 });
    maps.upsertDest({ group: 0, addr: PROT6 }, { channelId: 1, mark: MARK, flags: 0 });
  });

  afterAll(async () => {
    await stopStub();
    tls?.close();
    maps?.close();
    await hostTearDown({ ns: ns, root, cgroup: cg });
  });

  test('without a relay a TCP connect to a tls-channel address is refused and nothing leaves', () => {
    expect(app(PROT4, 80)).toEqual(['connect-error 1']); // EPERM
    expect(c('left_tcp')).toBe(0);
    expect(tls.counters().refused).toBeGreaterThan(0);
  });

  test('an IPv4 connect reaches the relay, which finds the original destination; getpeername shows it', async () => {
    await startStub();
    expect(app(PROT4, 80)).toEqual([`peer ${PROT4} 80`, `read orig ${PROT4} 80`]);
    expect(app(PROT4, 443)).toEqual([`peer ${PROT4} 443`, `read orig ${PROT4} 443`]);
    expect(tls.counters().redirected).toBeGreaterThanOrEqual(2);
  });

  test('an IPv6 socket to the IPv4-mapped address reaches the relay with the IPv4 original', () => {
    expect(app(`::ffff:${PROT4}`, 8080)).toEqual([`peer ::ffff:${PROT4} 8080`, `read orig ${PROT4} 8080`]);
  });

  test('an IPv6 connect to an IPv6 tls address reaches the relay (at its IPv4-mapped address)', () => {
    // the stub listens on 127.0.0.1: an IPv6 socket goes to ::ffff:127.0.0.1 (a V6ONLY one would be refused)
    expect(app(PROT6, 80)).toEqual([`peer ${PROT6} 80`, `read orig ${PROT6} 80`]);
  });

  test('the relay\'s own connect to the peer\'s TLS port is not redirected and the guard lets it out', async () => {
    await stopStub();
    const [left, pass] = [c('left_tls'), counter(CNT_GUARD_PASS, 16)];
    const { lines } = await startStub(['connect', `${PROT4}:${TLS_PORT}`]);
    expect(lines[1]).toBe('connect failed'); // nobody answers behind v1: the SYN left and was counted
    expect(c('left_tls')).toBeGreaterThan(left);
    expect(counter(CNT_GUARD_PASS, 16)).toBeGreaterThan(pass);
    expect(tls.counters().own).toBeGreaterThan(0);
  });

  test('the entries are gone once the redirected sockets closed', () => {
    // the stub ends every connection: the sockops close callback empties both maps
    const dump = (m: string) => JSON.parse(sh(['bpftool', '-j', 'map', 'dump', 'pinned', `${root}/maps/${m}`], { ok: true }).out) as unknown[];
    expect(dump('dnsseal_tls_orig')).toEqual([]);
    expect(dump('dnsseal_tls_cookie')).toEqual([]);
  });

  test('UDP and ICMP to a tls-channel address are dropped by the guard, counted as tls_not_tcp', () => {
    const before = counter(CNT_GUARD_DROP, 16);
    inCg(`bash -c 'echo x > /dev/udp/${PROT4}/53'`);
    inCg(`${bunBin()} ${UDP_SEND} ${PROT4}:53`);
    inCg(`ping -c 2 -i 0.2 -W 1 ${PROT4}`);
    expect(counter(CNT_GUARD_DROP, 16) - before).toBeGreaterThanOrEqual(4n);
    expect(c('left_other')).toBe(0);
  });

  test('TCP that bypassed the connect hook is dropped by the guard, counted as tls_bypass', () => {
    const before = counter(CNT_GUARD_DROP, 17);
    // outside the test cgroup: no hook redirects it
    nsenter(ns, ['timeout', '1.5', 'bash', '-c', `exec 3<>/dev/tcp/${PROT4}/80`]);
    expect(counter(CNT_GUARD_DROP, 17)).toBeGreaterThan(before);
    expect(c('left_tcp')).toBe(0);
    expect(c('left6')).toBe(0);
  });
});
