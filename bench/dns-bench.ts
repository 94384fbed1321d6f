/**
 * `make bench-dns`: dnsperf against knot directly, dnsmasq (cache off), unbound (forwarding,
 * cache minimal) and dnsseal (`--datapath none`), interleaved, pinned as BENCHMARKING.md says
 * (dnsperf and knot on CPU 0, the forwarder under test on CPU 1). Prints median qps per
 * target, latency at a fixed rate (p50/p99/avg from dnsperf -v), the median of per-pass
 * ratios dnsseal/dnsmasq and dnsseal/unbound, and a cache check (N identical queries must
 * reach knot N times). On a shared machine qps depends on the share of CPU 1 each forwarder
 * gets, so each forwarder's CPU time per answered query (from /proc, all threads) is printed
 * too, with CPU-normalised ratios. Loopback only.
 *
 * Env: BENCH_DNS_REPS (default 3; the reference method is 5), BENCH_DNS_SECONDS (default 5;
 * reference 10; 0 skips the saturating passes), BENCH_DNS_LAT_QPS (5000), BENCH_DNS_LAT_SECONDS (3),
 * BENCH_DNS_LAT_REPS (the latency rounds, default BENCH_DNS_REPS: every target once per round,
 * the order rotated each round; the medians of the per-round figures are printed), BENCH_DNS_TARGETS
 * (comma list, default knot,dnsmasq,unbound,dnsseal; `toy` adds bench/dns-toy.ts as a yardstick,
 * `echo-cache` bench/dns-echo.ts: Bun's UDP floor, an answer per query with no work), BENCH_DNSSEAL_CMD (replaces the dnsseal
 * command; `{LISTEN}` `{UPSTREAM}` `{CONTROL}` are substituted).
 *
 * `dnsseal` runs with `--cache-size 0`, like dnsmasq (`--cache-size=0`) and unbound
 * (`cache-max-ttl: 0`): every query is forwarded. The cached targets `dnsmasq-cache`,
 * `unbound-cache` and `dnsseal-cache` (caches on, default sizes) get their own query file:
 * 2,000 names asked over and over, one in five under `p.wild.test`, which dnsseal protects, so
 * every hit of those goes through decide and register as a fresh answer does. Their figures
 * and ratios are printed beside the uncached ones (add them to BENCH_DNS_TARGETS).
 *
 * A/B: the targets `dnsseal-b` and `dnsseal-cache-b` run BENCH_DNSSEAL_B (a second build's
 * command, split on spaces: `env VAR=1 /tmp/dnsseal-main` works) with the same arguments, in the
 * same interleaved rounds; the CPU-normalised ratio dnsseal-b/dnsseal is printed (A's CPU per
 * query ÷ B's: above 1, B is cheaper), likewise for the cached pair.
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Subprocess } from 'bun';
import { randomPort, startKnot, type KnotServer } from '../test/integration/knot-server.ts';

const REPS = Number(process.env.BENCH_DNS_REPS ?? 3);
const SECONDS = Number(process.env.BENCH_DNS_SECONDS ?? 5);
const LAT_QPS = Number(process.env.BENCH_DNS_LAT_QPS ?? 5000);
const LAT_SECONDS = Number(process.env.BENCH_DNS_LAT_SECONDS ?? 3);
const LAT_REPS = Number(process.env.BENCH_DNS_LAT_REPS ?? REPS);
const TARGETS = (process.env.BENCH_DNS_TARGETS ?? 'knot,dnsmasq,unbound,dnsseal').split(',');
const CACHE_CHECK_N = 500;
/** Names of the cached targets' query file, and the share of them dnsseal protects. */
const CACHED_NAMES = 2000;
const PROTECTED_EVERY = 5;
const SBIN = { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' };
const DIST = join(import.meta.dir, '..', 'dist', 'dnsseal');
const CLK_TCK = 100; // sysconf(_SC_CLK_TCK) on Linux

interface Target {
  name: string;
  port: number;
  proc?: Subprocess;
}

const dir = mkdtempSync(join(tmpdir(), 'dnsseal-bench-'));
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

async function run(cmd: string[]): Promise<string> {
  const p = Bun.spawn(cmd, { stdout: 'pipe', stderr: 'pipe' });
  const [out, err] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text()]);
  await p.exited;
  return out + err;
}

/** True once `port` answers www.test with knot's address (echo-cache: with any NOERROR answer). */
async function answers(port: number, echo = false): Promise<boolean> {
  const out = await run(['dig', '@127.0.0.1', '-p', String(port), '+tries=1', '+timeout=1', 'www.test', 'A', ...(echo ? [] : ['+short'])]);
  return echo ? out.includes('status: NOERROR') : out.includes('192.0.2.10');
}

async function waitReady(t: Target): Promise<void> {
  for (let i = 0; i < 50; i++) {
    if (await answers(t.port, t.name === 'echo-cache')) return;
    if (t.proc && t.proc.exitCode !== null) break;
    await Bun.sleep(100);
  }
  throw new Error(`bench: ${t.name} did not answer on 127.0.0.1:${t.port}`);
}

function spawnPinned(cmd: string[]): Subprocess {
  return Bun.spawn(['taskset', '-c', '1', ...cmd], { stdout: 'ignore', stderr: 'inherit' });
}

async function startTarget(name: string, knot: KnotServer): Promise<Target> {
  const port = randomPort();
  const up = `${knot.address}:${knot.port}`;
  let proc: Subprocess | undefined;
  switch (name) {
    case 'knot':
      return { name, port: knot.port };
    case 'dnsmasq':
    case 'dnsmasq-cache':
      proc = spawnPinned([
        Bun.which('dnsmasq', SBIN) ?? 'dnsmasq',
        '-k', '-C', '/dev/null', '--no-resolv', '--no-hosts', '--no-poll', '--bind-interfaces',
        `--server=${knot.address}#${knot.port}`, '--listen-address=127.0.0.1', `--port=${port}`, `--cache-size=${name === 'dnsmasq' ? 0 : 10000}`,
        `--pid-file=${join(dir, `${name}.pid`)}`,
      ]);
      break;
    case 'unbound':
    case 'unbound-cache': {
      const conf = join(dir, `${name}.conf`);
      writeFileSync(
        conf,
        `server:
  interface: 127.0.0.1
  port: ${port}
  do-ip6: no
  num-threads: 1
  module-config: "iterator"
  do-not-query-localhost: no
  local-zone: "test." nodefault
${name === 'unbound' ? '  cache-max-ttl: 0\n' : ''}  chroot: ""
  username: ""
  directory: "${dir}"
  pidfile: "${join(dir, `${name}.pid`)}"
  use-syslog: no
  logfile: ""
  verbosity: 0
  access-control: 127.0.0.0/8 allow
forward-zone:
  name: "."
  forward-addr: ${knot.address}@${knot.port}
remote-control:
  control-enable: no
`,
      );
      proc = spawnPinned([Bun.which('unbound', SBIN) ?? 'unbound', '-d', '-c', conf]);
      break;
    }
    case 'dnsseal':
    case 'dnsseal-cache':
    case 'dnsseal-b':
    case 'dnsseal-cache-b': {
      const listen = `127.0.0.1:${port}`;
      const control = join(dir, `${name}.sock`);
      const custom = process.env.BENCH_DNSSEAL_CMD;
      const b = name.endsWith('-b');
      if (b && !process.env.BENCH_DNSSEAL_B) throw new Error(`bench: target ${name} needs BENCH_DNSSEAL_B (the second build's command)`);
      const exe = b ? process.env.BENCH_DNSSEAL_B!.split(/\s+/) : existsSync(DIST) ? [DIST] : [process.execPath, join(import.meta.dir, '..', 'src', 'main.ts')];
      const cmd = custom && !b
        ? custom.replaceAll('{LISTEN}', listen).replaceAll('{UPSTREAM}', up).replaceAll('{CONTROL}', control).split(/\s+/)
        : [
            // The built executable when there is one (`make bench-dns` builds it), else the sources.
            ...exe,
            'run', '--datapath', 'none',
            '--listen', listen, '--upstream', up, '--control', control, '--log-level', 'error',
            // Every answer with addresses goes through the decision; p.wild.test names are registered.
            '--channel', 'hub=tunnel:192.0.2.1', '--protect', '*.corp.test=hub', '--protect', '*.p.wild.test=hub',
            ...(name.includes('-cache') ? [] : ['--cache-size', '0']),
          ];
      proc = spawnPinned(cmd);
      break;
    }
    case 'toy':
      proc = spawnPinned([process.execPath, join(import.meta.dir, 'dns-toy.ts'), String(port), up]);
      break;
    case 'echo-cache':
      proc = spawnPinned([process.execPath, join(import.meta.dir, 'dns-echo.ts'), String(port)]);
      break;
    default:
      throw new Error(`bench: unknown target ${name}`);
  }
  const t = { name, port, proc };
  await waitReady(t);
  return t;
}

async function dnsperf(port: number, args: string[], queryFile: string): Promise<string> {
  return run(['taskset', '-c', '0', 'dnsperf', '-s', '127.0.0.1', '-p', String(port), '-d', queryFile, ...args]);
}

function qpsOf(out: string): number {
  const m = /Queries per second:\s+([\d.]+)/.exec(out);
  if (!m) throw new Error(`bench: no qps in dnsperf output:\n${out}`);
  return Number(m[1]);
}

function completedOf(out: string): number {
  return Number(/Queries completed:\s+(\d+)/.exec(out)?.[1] ?? 0);
}

/** CPU seconds (user + system, all threads) a process has used so far, from /proc. */
async function cpuSeconds(pid: number | undefined): Promise<number | null> {
  if (pid === undefined) return null;
  try {
    const stat = await Bun.file(`/proc/${pid}/stat`).text();
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / CLK_TCK; // fields 14 and 15 of stat(5)
  } catch {
    return null;
  }
}

function lostOf(out: string): number {
  return Number(/Queries lost:\s+(\d+)/.exec(out)?.[1] ?? 0);
}

function latencies(out: string): { p50: number; p99: number; avg: number; n: number } {
  const xs: number[] = [];
  for (const m of out.matchAll(/^> \S+ \S+ \S+ ([\d.]+)$/gm)) xs.push(Number(m[1]) * 1e6);
  xs.sort((a, b) => a - b);
  const at = (p: number) => xs[Math.min(xs.length - 1, Math.floor(p * xs.length))] ?? NaN;
  return { p50: at(0.5), p99: at(0.99), avg: xs.reduce((a, b) => a + b, 0) / (xs.length || 1), n: xs.length };
}

async function main(): Promise<void> {
  const knot = await startKnot({ cpu: 0, stats: true });
  const targets: Target[] = [];
  try {
    // Unique names (a wildcard in the zone): nothing to share or cache between queries.
    const qfile = join(dir, 'queries.txt');
    writeFileSync(qfile, Array.from({ length: 20000 }, (_, i) => `q${i}.wild.test A`).join('\n') + '\n');
    const same = join(dir, 'same.txt');
    writeFileSync(same, 'www.test A\n');
    // The cached targets: a working set that fits every cache, a share of it protected.
    const cfile = join(dir, 'cached.txt');
    writeFileSync(cfile, Array.from({ length: CACHED_NAMES }, (_, i) => (i % PROTECTED_EVERY === 0 ? `c${i}.p.wild.test A` : `c${i}.wild.test A`)).join('\n') + '\n');
    const fileOf = (t: Target) => (t.name.includes('-cache') ? cfile : qfile);
    for (const name of TARGETS) targets.push(await startTarget(name, knot));
    console.log(`bench-dns: ${REPS} × ${SECONDS}s saturating (dnsperf -c 10) + ${LAT_SECONDS}s at ${LAT_QPS} qps per target; knot udp-workers 1; pinned 0=dnsperf+knot, 1=forwarder`);

    // Cache check: N identical queries one after another must reach knot N times.
    for (const t of targets.filter((x) => x.name !== 'knot')) {
      const before = await knot.queryCount();
      await dnsperf(t.port, ['-n', String(CACHE_CHECK_N), '-c', '1', '-q', '1'], same);
      const seen = (await knot.queryCount()) - before;
      console.log(`cache check: ${t.name}: ${seen}/${CACHE_CHECK_N} identical queries reached knot${seen < CACHE_CHECK_N * 0.99 ? (t.name.includes('-cache') ? '  (cache on)' : '  <-- CACHING') : ''}`);
    }

    const qps: Record<string, number[]> = {};
    const lost: Record<string, number> = {};
    /** CPU µs per answered query at saturation: what the forwarder costs, whatever share of CPU 1 it got. */
    const cpuPerQuery: Record<string, number[]> = {};
    const ratios: Record<string, number[]> = { dnsmasq: [], unbound: [] };
    for (let rep = 0; rep < REPS; rep++) {
      const pass: Record<string, number> = {};
      for (const t of targets) {
        await dnsperf(t.port, ['-c', '10', '-l', '1'], fileOf(t)); // warm-up
        const cpu0 = await cpuSeconds(t.proc?.pid);
        const out = await dnsperf(t.port, ['-c', '10', '-l', String(SECONDS)], fileOf(t));
        const cpu1 = await cpuSeconds(t.proc?.pid);
        if (cpu0 !== null && cpu1 !== null) (cpuPerQuery[t.name] ??= []).push(((cpu1 - cpu0) * 1e6) / Math.max(1, completedOf(out)));
        pass[t.name] = qpsOf(out);
        lost[t.name] = (lost[t.name] ?? 0) + lostOf(out);
        (qps[t.name] ??= []).push(pass[t.name]!);
      }
      for (const peer of ['dnsmasq', 'unbound']) if (pass.dnsseal && pass[peer]) ratios[peer]!.push(pass.dnsseal / pass[peer]!);
      for (const peer of ['dnsmasq-cache', 'unbound-cache']) if (pass['dnsseal-cache'] && pass[peer]) (ratios[peer] ??= []).push(pass['dnsseal-cache'] / pass[peer]!);
      if (pass.toy && pass.dnsmasq) (ratios.toy ??= []).push(pass.toy / pass.dnsmasq);
      console.log(`pass ${rep + 1}: ` + targets.map((t) => `${t.name} ${Math.round(pass[t.name]!)}`).join('  '));
    }

    // Latency at a fixed rate: one short pass per target per round, the order rotated each round
    // (a slow spell of the machine lands on a different target each time); medians of the rounds.
    const latRounds: Record<string, ReturnType<typeof latencies>[]> = {};
    for (let rep = 0; rep < Math.max(1, LAT_REPS); rep++) {
      const order = targets.map((_, i) => targets[(i + rep) % targets.length]!);
      for (const t of order) (latRounds[t.name] ??= []).push(latencies(await dnsperf(t.port, ['-c', '10', '-l', String(LAT_SECONDS), '-Q', String(LAT_QPS), '-v'], fileOf(t))));
    }
    const lat: Record<string, { p50: number; p99: number; avg: number }> = {};
    for (const [name, rs] of Object.entries(latRounds)) lat[name] = { p50: median(rs.map((r) => r.p50)), p99: median(rs.map((r) => r.p99)), avg: median(rs.map((r) => r.avg)) };
    if (LAT_REPS > 1) {
      console.log(`\nlatency at ${LAT_QPS} qps, ${LAT_REPS} rounds of ${LAT_SECONDS} s, avg µs per round:`);
      for (const t of targets) console.log(`  ${t.name.padEnd(15)} ${latRounds[t.name]!.map((r) => r.avg.toFixed(0).padStart(5)).join(' ')}   p50 ${latRounds[t.name]!.map((r) => r.p50.toFixed(0)).join(' ')}`);
    }
    console.log('\ntarget          qps(median)   lost   lat p50 µs   p99 µs   avg µs   added avg µs   cpu µs/query');
    const base = lat.knot?.avg ?? 0;
    for (const t of targets) {
      const l = lat[t.name]!;
      console.log(
        `${t.name.padEnd(15)} ${(qps[t.name] ? Math.round(median(qps[t.name]!)).toString() : '-').padStart(11)} ${String(lost[t.name] ?? 0).padStart(6)} ` +
          `${l.p50.toFixed(0).padStart(12)} ${l.p99.toFixed(0).padStart(8)} ${l.avg.toFixed(0).padStart(8)} ${(t.name === 'knot' ? '-' : (l.avg - base).toFixed(0)).padStart(14)}` +
          `${(cpuPerQuery[t.name] ? median(cpuPerQuery[t.name]!).toFixed(1) : '-').padStart(15)}`,
      );
    }
    for (const [ours, peer] of [['dnsseal', 'dnsmasq'], ['dnsseal', 'unbound'], ['dnsseal', 'toy'], ['dnsseal-cache', 'dnsmasq-cache'], ['dnsseal-cache', 'unbound-cache'], ['dnsseal-cache', 'dnsseal'], ['dnsseal-cache', 'echo-cache'], ['dnsseal-b', 'dnsseal'], ['dnsseal-cache-b', 'dnsseal-cache']] as const) {
      if (cpuPerQuery[peer] && cpuPerQuery[ours]) {
        console.log(`cpu-normalised ratio ${ours}/${peer} (${peer} cpu per query ÷ ${ours}'s): ${(median(cpuPerQuery[peer]!) / median(cpuPerQuery[ours]!)).toFixed(2)}`);
      }
    }
    if (ratios.toy?.length) console.log(`ratio toy/dnsmasq (yardstick): ${median(ratios.toy).toFixed(2)}`);
    for (const peer of ['dnsmasq', 'unbound', 'dnsmasq-cache', 'unbound-cache']) {
      const ours = peer.endsWith('-cache') ? 'dnsseal-cache' : 'dnsseal';
      if (ratios[peer]?.length) console.log(`ratio ${ours}/${peer}: ${median(ratios[peer]!).toFixed(2)} (median of per-pass ratios: ${ratios[peer]!.map((r) => r.toFixed(2)).join(' ')})`);
    }
  } finally {
    for (const t of targets) {
      t.proc?.kill('SIGTERM');
      await t.proc?.exited;
    }
    await knot.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
