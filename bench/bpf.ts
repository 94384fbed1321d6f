/**
 * eBPF data path figures (root): `make bench-bpf` or `bun bench/bpf.ts [--entries N] [--iperf]`.
 *  1. ns/packet of each tc / cgroup_skb program (and the intercept NAT's, when build/intercept.bpf.o
 *     is there) with BPF_PROG_RUN repeat (kernel-measured average), with the destination maps
 *     nearly empty and again holding N entries (default 1M), each with one client group, a small
 *     client table (inline in dnsseal_config) and a larger one (the LPM trie).
 *  2. Insert rate and per-insert latency (p50/p99) into the pinned HASH map through bun:ffi
 *     bpf() calls, kernel memory of the map (fdinfo memlock), full-map scan (GC sweep) time
 *     and the delete rate.
 *  3. (--iperf) veth TCP throughput between two namespaces with and without the marker and
 *     guard attached (iperf3, 3 interleaved off/on pairs of 5 s; median of the per-pair ratios).
 * Prints figures; asserts nothing (tests live in test/).
 */
import { readFileSync } from 'node:fs';
import { Bpf } from '../src/datapath/ebpf/bpf-syscall.ts';
import { createEbpfDatapath, type EbpfDatapath } from '../src/datapath/ebpf/index.ts';
import { PinPaths, PROGS, type ProgName } from '../src/datapath/ebpf/pins.ts';
import { CFG_CLIENTS, DEST_F_INTERCEPT, MARK_ENCRYPTED } from '../src/datapath/layout.ts';
import { ICPT_PROGS, type IcptProg, icptProgPath, loadIntercept } from '../src/intercept/ebpf-loader.ts';
import { clockOffset, EbpfInterceptStore } from '../src/intercept/ebpf-store.ts';
import { teardown } from '../src/datapath/teardown.ts';
import { Metrics } from '../src/ops/metrics.ts';
import { channelMark } from '../src/policy/types.ts';
import { realClock } from '../src/util/clock.ts';
import { silentLogger } from '../src/util/log.ts';
import { frame, skbCtx, type PacketSpec } from '../test/bpf/packets.ts';

const args = process.argv.slice(2);
const arg = (name: string, dflt: number) => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};
const ENTRIES = arg('--entries', 1_000_000);
const REPEAT = arg('--repeat', 1_000_000);
const ROOT = `/sys/fs/bpf/dnsseal-bench-${process.pid}`;
/** Inserts whose latency is recorded one by one (the 10,000 registrations). */
const LAT_N = Math.min(10_000, ENTRIES);

if (process.getuid?.() !== 0) {
  console.log('bench-bpf: needs root (bpf(), BPF_PROG_RUN); nothing measured');
  process.exit(0);
}

const MARK = channelMark(1);
/** Intercept NAT (bench only): client → intercept address I4 ⇄ real address R4 (see natSetup). */
const I4 = '100.64.0.21';
const R4 = '192.0.2.21';

interface Case {
  name: string;
  prog: () => string;
  pkt: PacketSpec;
  mark?: number;
}

function cases(paths: PinPaths, nat: boolean): Case[] {
  const p = (name: ProgName) => () => paths.prog(name);
  const out: Case[] = [
    { name: 'guard non-IP (floor: run overhead)', prog: p(PROGS.wanOut), pkt: { src: '10.9.9.9', dst: '198.18.0.1', l4: 'tcp', ethertype: 0x0806 } },
    { name: 'guard v4 tcp unprotected (pass)', prog: p(PROGS.wanOut), pkt: { src: '10.9.9.9', dst: '198.18.0.1', l4: 'tcp' } },
    { name: 'guard v4 tcp protected (drop)', prog: p(PROGS.wanOut), pkt: { src: '10.9.9.9', dst: '192.0.2.10', l4: 'tcp' } },
    { name: 'guard v4 esp protected (pass)', prog: p(PROGS.wanOut), pkt: { src: '10.9.9.9', dst: '192.0.2.10', l4: 'esp' } },
    { name: 'guard v4 esp-in-udp protected (pass)', prog: p(PROGS.wanOut), pkt: { src: '10.9.9.9', dst: '192.0.2.10', l4: 'udp', sport: 4500, dport: 4500 }, mark: MARK_ENCRYPTED },
    { name: 'guard v6 tcp unprotected (pass)', prog: p(PROGS.wanOut), pkt: { src: 'fd00::9', dst: '2001:db8:1::1', l4: 'tcp' } },
    { name: 'guard v4 marked plain (drop)', prog: p(PROGS.wanOut), pkt: { src: '10.9.9.9', dst: '198.18.0.1', l4: 'tcp' }, mark: MARK },
    { name: 'marker v4 tcp unprotected', prog: p(PROGS.lanIn), pkt: { src: '10.9.9.9', dst: '198.18.0.1', l4: 'tcp' } },
    { name: 'marker v4 tcp protected (marks)', prog: p(PROGS.lanIn), pkt: { src: '10.9.9.9', dst: '192.0.2.10', l4: 'tcp' } },
    { name: 'marker v6 udp protected (marks)', prog: p(PROGS.lanIn), pkt: { src: 'fd00::9', dst: '2001:db8::10', l4: 'udp' } },
    { name: 'lan guard v4 tcp to a client (pass)', prog: p(PROGS.lanOut), pkt: { src: '198.18.0.1', dst: '10.9.9.9', l4: 'tcp' } },
    { name: 'lan guard v4 tcp protected (drop)', prog: p(PROGS.lanOut), pkt: { src: '10.9.9.9', dst: '192.0.2.10', l4: 'tcp' } },
    { name: 'inbound v4 tcp unprotected (pass)', prog: p(PROGS.in), pkt: { src: '198.18.0.1', dst: '10.9.9.9', l4: 'tcp' } },
    { name: 'inbound v6 tcp unprotected (pass)', prog: p(PROGS.in), pkt: { src: '2001:db8:1::1', dst: 'fd00::9', l4: 'tcp' } },
    { name: 'inbound v4 esp protected (pass)', prog: p(PROGS.in), pkt: { src: '192.0.2.10', dst: '10.9.9.9', l4: 'esp' } },
    { name: 'inbound v4 tcp protected (drop)', prog: p(PROGS.in), pkt: { src: '192.0.2.10', dst: '10.9.9.9', l4: 'tcp' } },
    { name: 'host egress v4 unprotected', prog: p(PROGS.cgOut), pkt: { src: '10.9.9.9', dst: '198.18.0.1', l4: 'tcp' } },
    { name: 'host egress v4 protected (stamps)', prog: p(PROGS.cgOut), pkt: { src: '10.9.9.9', dst: '192.0.2.10', l4: 'tcp' } },
  ];
  if (!nat) return out;
  const n = (prog: IcptProg) => () => icptProgPath(paths, prog);
  return [
    ...out,
    { name: 'nat_in v4 tcp not intercepted', prog: n(ICPT_PROGS.in), pkt: { src: '10.9.9.9', dst: '198.18.0.1', l4: 'tcp' } },
    { name: 'nat_in v4 tcp translated (marks)', prog: n(ICPT_PROGS.in), pkt: { src: '10.9.9.9', dst: I4, l4: 'tcp' } },
    { name: 'nat_out v4 tcp not intercepted', prog: n(ICPT_PROGS.out), pkt: { src: '198.18.0.1', dst: '10.9.9.9', l4: 'tcp' } },
    { name: 'nat_out v4 tcp translated', prog: n(ICPT_PROGS.out), pkt: { src: R4, dst: '10.9.9.9', l4: 'tcp' } },
  ];
}

function progRun(bpf: Bpf, list: Case[], label: string): void {
  console.log(`\n## BPF_PROG_RUN, repeat ${REPEAT} (${label})`);
  console.log('program / packet'.padEnd(40), 'ns/packet (median of 5)');
  for (const c of list) {
    const fd = bpf.objGet(c.prog());
    const data = frame(c.pkt);
    const runs: number[] = [];
    for (let i = 0; i < 5; i++) runs.push(bpf.testRun(fd, data, { repeat: REPEAT, ctx: skbCtx({ mark: c.mark ?? 0 }) }).durationNs);
    bpf.close(fd);
    runs.sort((a, b) => a - b);
    console.log(`${c.name.padEnd(40)} ${String(runs[2]).padStart(4)}   (min ${runs[0]}, max ${runs[4]})`);
  }
}

/**
 * The NAT rewrites the packet BPF_PROG_RUN repeats on, so the mapping goes both ways
 * (I4 → R4 and R4 → I4, both protected): every run translates, as a real packet would.
 */
function natSetup(bpf: Bpf, dp: EbpfDatapath, paths: PinPaths): EbpfInterceptStore | undefined {
  try {
    loadIntercept(bpf, { paths, log: silentLogger });
  } catch (err) {
    console.log(`(intercept NAT not measured: ${(err as Error).message})`);
    return undefined;
  }
  const store = new EbpfInterceptStore(bpf, paths, clockOffset(bpf, realClock));
  const expiresMs = realClock.monoMs() + 3_600_000;
  for (const [i, r] of [[I4, R4], [R4, I4]]) {
    dp.upsert({ group: 0, addr: r! }, { channelId: 1, mark: MARK, flags: DEST_F_INTERCEPT });
    store.put({ group: 0, intercept: i!, real: r!, expiresMs });
  }
  return store;
}

/** Client tables: none (one group), small (inline in dnsseal_config), larger than that (LPM trie). */
const CLIENT_TABLES: [string, { cidr: string; group: number }[]][] = [
  ['one client group', []],
  ['3 client CIDRs: inline table', [
    { cidr: '10.1.0.0/16', group: 5 },
    { cidr: 'fd00:5::/64', group: 5 },
    { cidr: '172.16.0.0/12', group: 7 },
  ]],
  [`${CFG_CLIENTS + 4} client CIDRs: LPM trie`, [
    { cidr: '10.1.0.0/16', group: 5 },
    { cidr: 'fd00:5::/64', group: 5 },
    ...Array.from({ length: CFG_CLIENTS + 2 }, (_, i) => ({ cidr: `172.${16 + i}.0.0/16`, group: 7 })),
  ]],
];

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}

function memlock(fd: number): number {
  const m = /memlock:\s+(\d+)/.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'));
  return m ? Number(m[1]) : NaN;
}

function addrOf(i: number): string {
  return `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
}

async function main(): Promise<void> {
  await teardown(silentLogger, { pinRoot: ROOT });
  const dp = createEbpfDatapath({
    cfg: { mode: 'gateway', lan: [], wan: [], channels: [] },
    log: silentLogger,
    clock: realClock,
    metrics: new Metrics(),
    pinRoot: ROOT,
    capacity: Math.max(ENTRIES + 16, 1024),
    attach: false,
    pollMs: 0,
  });
  const bpf = new Bpf();
  let store: EbpfInterceptStore | undefined;
  try {
    console.log(`# dnsseal bench-bpf — kernel ${readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim()}, ${navigator.hardwareConcurrency} CPUs`);
    const val = { channelId: 1, mark: MARK, flags: 0 };
    dp.upsert({ group: 0, addr: '192.0.2.10' }, val);
    dp.upsert({ group: 0, addr: '2001:db8::10' }, val);
    const paths = new PinPaths(ROOT);
    store = natSetup(bpf, dp, paths);
    const list = cases(paths, store !== undefined);
    const runAll = (entries: string) => {
      for (const [label, table] of CLIENT_TABLES) {
        dp.setClientGroups(table);
        progRun(bpf, list, `map holds ${entries} entries, ${label}`);
      }
    };
    runAll('a few');

    // registration path: single upserts, latency per call
    console.log(`\n## destination map: ${ENTRIES} entries through bpf() (bun:ffi)`);
    const lat: number[] = [];
    const t0 = Bun.nanoseconds();
    for (let i = 0; i < ENTRIES; i++) {
      if (i < LAT_N) {
        const s = Bun.nanoseconds();
        dp.upsert({ group: 0, addr: addrOf(i) }, val);
        lat.push(Bun.nanoseconds() - s);
      } else dp.upsert({ group: 0, addr: addrOf(i) }, val);
    }
    const insertS = (Bun.nanoseconds() - t0) / 1e9;
    console.log(`insert: ${(ENTRIES / insertS).toFixed(0)} entries/s (${insertS.toFixed(2)} s total)`);
    console.log(`upsert latency, first ${LAT_N} (map written): p50 ${(pct(lat, 50) / 1000).toFixed(1)} µs, p99 ${(pct(lat, 99) / 1000).toFixed(1)} µs`);
    const relat: number[] = [];
    for (let i = 0; i < LAT_N; i++) {
      const s = Bun.nanoseconds();
      dp.upsert({ group: 0, addr: addrOf(i) }, val);
      relat.push(Bun.nanoseconds() - s);
    }
    console.log(`upsert latency of an existing key (refresh): p50 ${(pct(relat, 50) / 1000).toFixed(1)} µs, p99 ${(pct(relat, 99) / 1000).toFixed(1)} µs`);
    // The registry's refresh passes the hint that the key is there (looked up first, no failing insert).
    const known: number[] = [];
    for (let i = 0; i < LAT_N; i++) {
      const s = Bun.nanoseconds();
      dp.upsert({ group: 0, addr: addrOf(i) }, val, true);
      known.push(Bun.nanoseconds() - s);
    }
    console.log(`upsert latency of an existing key (refresh, known to the registry): p50 ${(pct(known, 50) / 1000).toFixed(1)} µs, p99 ${(pct(known, 99) / 1000).toFixed(1)} µs`);
    const mem = memlock(dp.maps.fds.dests4) + memlock(dp.maps.fds.dests6);
    console.log(`map memory (fdinfo memlock): ${(mem / 2 ** 20).toFixed(1)} MiB = ${(mem / ENTRIES).toFixed(0)} B/entry`);
    const s1 = Bun.nanoseconds();
    const all = dp.maps.rawDests();
    const scanMs = (Bun.nanoseconds() - s1) / 1e6;
    console.log(`full scan (GC sweep read, batch lookup): ${all.length} entries in ${scanMs.toFixed(0)} ms`);
    const s2 = Bun.nanoseconds();
    const nDel = Math.min(100_000, ENTRIES);
    for (let i = 0; i < nDel; i++) dp.remove({ group: 0, addr: addrOf(i) });
    const delS = (Bun.nanoseconds() - s2) / 1e9;
    console.log(`delete: ${(nDel / delS).toFixed(0)} entries/s`);
    console.log('(a sweep is a scan plus deletes of the expired-and-idle; both are in-process syscalls, each < 10 µs, so queries interleave)');

    runAll(String(all.length - nDel));
    if (args.includes('--iperf')) iperf();
  } finally {
    store?.close();
    dp.close();
    await teardown(silentLogger, { pinRoot: ROOT });
  }
}

function sh(cmd: string): string {
  const r = Bun.spawnSync(['sh', '-c', cmd], { stdout: 'pipe', stderr: 'pipe' });
  if (r.exitCode !== 0) throw new Error(`${cmd}: ${r.stderr.toString()}`);
  return r.stdout.toString();
}

function iperf(): void {
  const a = `dnsseal-ba${process.pid % 10000}`;
  const b = `dnsseal-bb${process.pid % 10000}`;
  const root = `${ROOT}-veth`;
  const helper = `${process.cwd()}/test/netns/fixtures/dp-helper.ts`;
  const bun = `${process.cwd()}/node_modules/.bin/bun`;
  console.log('\n## veth TCP throughput (iperf3, 3 interleaved pairs of 5 s runs)');
  try {
    sh(`ip netns add ${a}; ip netns add ${b}`);
    sh(`ip link add va netns ${a} type veth peer name vb netns ${b}`);
    sh(`ip -n ${a} link set lo up; ip -n ${a} link set va up; ip -n ${a} addr add 198.51.100.1/24 dev va`);
    sh(`ip -n ${b} link set lo up; ip -n ${b} link set vb up; ip -n ${b} addr add 198.51.100.2/24 dev vb`);
    const server = Bun.spawn(['ip', 'netns', 'exec', b, 'iperf3', '-s'], { stdout: 'ignore', stderr: 'ignore' });
    Bun.sleepSync(500);
    const once = (): number => JSON.parse(sh(`ip netns exec ${a} iperf3 -J -t 5 -c 198.51.100.2`)).end.sum_received.bits_per_second / 1e9;
    // interleaved (off, on) pairs: the machine's load drifts, so only side-by-side ratios count
    const off: number[] = [];
    const on: number[] = [];
    const ratio: number[] = [];
    for (let i = 0; i < 3; i++) {
      off.push(once());
      // guard on the sender's egress, marker on the receiver's ingress
      sh(`nsenter --net=/run/netns/${a} ${bun} ${helper} up ${root} gateway - va`);
      sh(`nsenter --net=/run/netns/${b} ${bun} ${helper} up ${root} gateway vb -`);
      on.push(once());
      sh(`nsenter --net=/run/netns/${a} ${bun} ${helper} down ${root}`);
      sh(`nsenter --net=/run/netns/${b} ${bun} ${helper} down ${root}`);
      ratio.push(on[i]! / off[i]!);
    }
    console.log(`without programs: ${off.map((x) => x.toFixed(2)).join(' / ')} Gbit/s`);
    console.log(`with guard (egress) + marker (ingress): ${on.map((x) => x.toFixed(2)).join(' / ')} Gbit/s`);
    console.log(`median per-pair change: ${((pct(ratio, 50) - 1) * 100).toFixed(1)}%`);
    server.kill();
  } finally {
    Bun.spawnSync(['nsenter', `--net=/run/netns/${a}`, bun, helper, 'down', root]);
    Bun.spawnSync(['ip', 'netns', 'del', a]);
    Bun.spawnSync(['ip', 'netns', 'del', b]);
  }
}

await main();
