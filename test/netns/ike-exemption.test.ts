/**
 * The guard's IKE exemption goes by charon's sockets, never by port number (issue #11 item 7;
 * host mode, root only). A namespace h (v0 towards w, where nftables counts what arrives for the
 * protected addresses), the host hooks on a test cgroup, the tc guard on v0. A fake charon
 * (fixtures/fake-charon.ts: a listening unix socket standing for the VICI socket, UDP sockets on
 * :500 and [::]:4500) is found and tagged the way the daemon does it at each VICI connect.
 *
 * - An application's UDP to 500/4500 of a protected address (even 4500 → 4500, what ESP-in-UDP
 *   looks like) is marked and, with no XFRM here, dropped: zero arrive.
 * - charon's own IKE before it is tagged: dropped too (fail closed); once tagged: unmarked (never
 *   sent into XFRM) and let through, IPv4 and IPv6.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { mkdirSync, rmSync } from 'node:fs';
import { Bpf } from '../../src/datapath/ebpf/bpf-syscall.ts';
import { EbpfMaps } from '../../src/datapath/ebpf/maps.ts';
import { defaultCgroupPath, PinPaths } from '../../src/datapath/ebpf/pins.ts';
import { CNT_GUARD_DROP } from '../../src/datapath/layout.ts';
import { channelMark } from '../../src/policy/types.ts';
import { privSkipReason, scratchPinRoot, wipe } from '../datapath/ebpf/helpers.ts';
import { waitFor } from './fixtures/dp-watch.ts';
import { bunBin, nftCount, nsenter, sh } from './netns.ts';
import { hostPair, hostTearDown } from './host-fixture.ts';

const cgRoot = defaultCgroupPath();
const skip = privSkipReason() ?? (cgRoot ? undefined : 'no cgroup v2 mount') ?? (sh(['which', 'nft', 'nsenter', 'python3']).code !== 0 ? 'nft/nsenter/python3 missing' : undefined);
if (skip) console.log(`netns ike exemption: skipping: ${skip}`);

const MARK = channelMark(1);
const PROT4 = '203.0.113.10';
const PROT6 = '2001:db8:20::10';
const HELPER = 'test/netns/fixtures/dp-helper.ts';

/** Reads a child's stdout line by line. */
function lines(stream: ReadableStream<Uint8Array>): () => Promise<string> {
  const reader = stream.getReader();
  const decoder = new TextDecoder();
  let buf = '';
  return async () => {
    for (;;) {
      const nl = buf.indexOf('\n');
      if (nl >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        return line;
      }
      const { value, done } = await reader.read();
      if (done) throw new Error(`fake charon exited: ${buf}`);
      buf += decoder.decode(value);
    }
  };
}

(skip ? describe.skip : describe)('netns ike exemption (charon by socket, host mode)', () => {
  const tag = process.pid % 10000;
  const [h, w] = [`dsg-guard-ih${tag}`, `dsg-guard-iw${tag}`];
  const cg = `${cgRoot}/dsg-guard-ike-${process.pid}`;
  const vici = `/tmp/dsg-guard-vici-${process.pid}.sock`;
  const root = scratchPinRoot('guard-ike');
  let maps: EbpfMaps;
  let charon: ReturnType<typeof Bun.spawn> | undefined;
  let next: () => Promise<string>;
  const inCg = (cmd: string) => nsenter(h, ['sh', '-c', `echo $$ > ${cg}/cgroup.procs && exec ${cmd}`], { timeoutMs: 10000 });
  const arrived = () => [nftCount(w, 'in4'), nftCount(w, 'in6')];
  const delta = (before: number[]) => arrived().map((n, i) => n - before[i]!);
  /**
   * The fake charon, started by the first test that needs it: its [::]:4500 socket takes port
   * 4500 for IPv4 too, so the application test before it could not send from 4500 (the bind
   * failed and nothing was sent, and "nothing arrived" held without testing anything).
   */
  let charonReady: Promise<void> | undefined;
  const ensureCharon = () =>
    (charonReady ??= (async () => {
      charon = Bun.spawn(['nsenter', `--net=/run/netns/${h}`, 'sh', '-c', `echo $$ > ${cg}/cgroup.procs && exec ${bunBin()} test/netns/fixtures/fake-charon.ts ${vici}`], {
        stdin: 'pipe',
        stdout: 'pipe',
        stderr: 'inherit',
      });
      next = lines(charon.stdout as ReadableStream<Uint8Array>);
      expect(await next()).toBe('ready');
    })());
  /** One datagram from the fake charon to addr:port; resolves once it was sent. */
  const charonSends = async (addr: string, port: number) => {
    await ensureCharon();
    (charon!.stdin as import('bun').FileSink).write(`${addr} ${port}\n`);
    (charon!.stdin as import('bun').FileSink).flush();
    expect(await next()).toBe('sent');
  };
  /** Waits until the arrival counters moved by `want` (packets in flight), at most 10 s. */
  const settle = async (before: number[], want: number[]) => {
    await waitFor(() => JSON.stringify(delta(before)) === JSON.stringify(want), 10_000, 100);
    return delta(before);
  };
  /** Guard drops so far (every channel, both guards). */
  const drops = () => maps.counters().filter((c) => c.kind === CNT_GUARD_DROP).reduce((n, c) => n + c.packets, 0n);
  /**
   * Nothing may arrive: first wait until the guard dropped the `n` datagrams (so they went
   * through it, and a slow machine cannot pass this by not having sent them yet), then give a
   * leak 300 ms to show up.
   */
  const noneArrive = async (before: number[], drops0: bigint, n: number) => {
    expect(await waitFor(() => drops() - drops0 >= BigInt(n), 10_000, 50), `the guard to drop the ${n} datagrams (dropped ${drops() - drops0})`).toBe(true);
    await Bun.sleep(300);
    expect(delta(before)).toEqual([0, 0]);
  };

  beforeAll(async () => {
    await wipe(root);
    rmSync(vici, { force: true });
    hostPair(h, w, {
      h: [
        'nft add table inet dnsseal_t',
        `nft 'add chain inet dnsseal_t out_c { type filter hook output priority 0; }'`,
        `nft add rule inet dnsseal_t out_c udp sport { 500, 4500 } meta mark != 0 counter comment charon_marked`,
      ],
      w: [
        'nft add table inet dnsseal_t',
        `nft 'add chain inet dnsseal_t pre_c { type filter hook prerouting priority -300; }'`,
        `nft add rule inet dnsseal_t pre_c iif eth0 ip daddr ${PROT4} counter comment in4`,
        `nft add rule inet dnsseal_t pre_c iif eth0 ip6 daddr ${PROT6} counter comment in6`,
      ],
    });
    mkdirSync(cg, { recursive: true });
    nsenter(h, [bunBin(), HELPER, 'up', root, 'host', '-', 'v0', '-', cg], { ok: true, timeoutMs: 30000 });
    maps = new EbpfMaps(new Bpf(), new PinPaths(root));
    maps.upsertDest({ group: 0, addr: PROT4 }, { channelId: 1, mark: MARK, flags: 0 });
    maps.upsertDest({ group: 0, addr: PROT6 }, { channelId: 1, mark: MARK, flags: 0 });
    // A `peer` channel: what the port-number exemption let IKE through for.
    maps.setChannels([{ id: 1, mark: MARK, up: true, peer: true }]);
  });

  afterAll(async () => {
    charon?.kill();
    await charon?.exited;
    maps?.close();
    rmSync(vici, { force: true });
    await hostTearDown({ ns: h, others: [w], root, cgroup: cg });
  });

  test('an application\'s UDP to 500 and 4500 of a protected address never leaves in clear (4500 → 4500 included)', async () => {
    const before = arrived();
    const drops0 = drops();
    for (const addr of [PROT4, PROT6]) {
      inCg(`bash -c 'echo x > /dev/udp/${addr}/500; echo x > /dev/udp/${addr}/4500; true'`);
      const fam = addr.includes(':') ? 'AF_INET6' : 'AF_INET';
      const any = addr.includes(':') ? '::' : '0.0.0.0';
      // unconnected, bound to 4500: what ESP-in-UDP looks like on the wire
      // each send either leaves the socket or is refused (EPERM: dropped by the cgroup guard)
      const py = inCg(`python3 -c "import socket
s = socket.socket(socket.${fam}, socket.SOCK_DGRAM)
s.bind(('${any}', 4500))
for _ in range(2):
    try:
        s.sendto(b'x', ('${addr}', 4500)); print('sent')
    except PermissionError:
        print('refused')"`);
      expect(py.code, `two datagrams from port 4500: ${py.err.trim()}`).toBe(0);
    }
    await noneArrive(before, drops0, 8);
  });

  test('charon\'s own IKE is dropped while its sockets are not tagged (fail closed)', async () => {
    const before = arrived();
    const drops0 = drops();
    await charonSends(PROT4, 500);
    await charonSends(PROT6, 500);
    await noneArrive(before, drops0, 2);
  });

  test('charon\'s own IKE leaves unmarked and passes once its sockets are found and tagged', async () => {
    await ensureCharon();
    const r = JSON.parse(nsenter(h, [bunBin(), HELPER, 'ike-tag', root, vici], { ok: true, timeoutMs: 30000 }).out);
    expect(r.found?.fds.length).toBe(2);
    expect([r.tagged, r.failed]).toEqual([2, []]);
    const before = arrived();
    await charonSends(PROT4, 500);
    await charonSends(PROT6, 500);
    expect(await settle(before, [1, 1])).toEqual([1, 1]);
  });

  test('charon\'s sockets carry no dnsseal mark once tagged (IKE is never sent into XFRM)', async () => {
    const marked = nftCount(h, 'charon_marked');
    await charonSends(PROT4, 500);
    await charonSends(PROT6, 500);
    expect(nftCount(h, 'charon_marked')).toBe(marked);
  });

  test('an application\'s IKE-port UDP is still dropped after charon was tagged', async () => {
    const before = arrived();
    const drops0 = drops();
    inCg(`bash -c 'echo x > /dev/udp/${PROT4}/500; echo x > /dev/udp/${PROT6}/4500; true'`);
    await noneArrive(before, drops0, 2);
  });
});
