/**
 * `make bench-soak`: the daemon's memory under sustained load (issue 12, "Figures": RSS under
 * 8k qps over 100k names with TTL 1). An upstream in this process answers every A query with
 * one address (derived from the name, so names bring distinct addresses) and a short TTL, so
 * cache entries and registrations churn; an open-loop load generator sends BENCH_SOAK_QPS
 * queries a second over BENCH_SOAK_NAMES names, one in BENCH_SOAK_PROTECT_EVERY of them under
 * a protected suffix (registered into the registry, `none` data path). Prints, every
 * BENCH_SOAK_EVERY seconds: the daemon's RSS, its answered qps, answers lost, the CPU it used
 * per answer and the live registry entries; at the end the RSS after warm-up (min / median /
 * max) and the peak (VmHWM). BENCH_SOAK_RULES > 0 loads a rules file of that many extra rules
 * (the "≤ 250 MB with 200k rules" figure).
 *
 * The daemon is dist/dnsseal when built (`make build`), else `bun src/main.ts`; pinned as
 * ../shared/BENCHMARKING.md says: this process (load and upstream) on CPU 0, the daemon on
 * CPU 1. Loopback only. Asserts nothing.
 *
 * Env: BENCH_SOAK_SECONDS (30; the figure: 150), BENCH_SOAK_QPS (8000),
 * BENCH_SOAK_NAMES (100000), BENCH_SOAK_TTL (1), BENCH_SOAK_EVERY (5),
 * BENCH_SOAK_PROTECT_EVERY (5; 0: none protected), BENCH_SOAK_RULES (0).
 */
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { controlRequest } from '../src/control/client.ts';
import { spawnBenchDaemon, statusMb, writeBenchConfig } from './bench-daemon.ts';

const env = (k: string, d: number) => Number(process.env[k] ?? d);
const SECONDS = env('BENCH_SOAK_SECONDS', 30);
const QPS = env('BENCH_SOAK_QPS', 8000);
const NAMES = env('BENCH_SOAK_NAMES', 100_000);
const TTL = env('BENCH_SOAK_TTL', 1);
const EVERY = env('BENCH_SOAK_EVERY', 5);
const PROTECT_EVERY = env('BENCH_SOAK_PROTECT_EVERY', 5);
const RULES = env('BENCH_SOAK_RULES', 0);
const ROOT = join(import.meta.dir, '..');
const DIST = join(ROOT, 'dist', 'dnsseal');
const BUN = join(ROOT, 'node_modules', '.bin', 'bun');

const dir = mkdtempSync(join(tmpdir(), 'dnsseal-bench-soak-'));
const control = join(dir, 'control.sock');
const taskset = Bun.which('taskset');
if (taskset) Bun.spawnSync([taskset, '-p', '-c', '0', String(process.pid)], { stdout: 'ignore', stderr: 'ignore' });

// --- the upstream: one A record per query, TTL `TTL`, the address from the query's name index --
const upstream = await Bun.udpSocket({
  hostname: '127.0.0.1',
  port: 0,
  socket: {
    data(s, q, port, addr) {
      // The name is n<index>.…: its digits pick the address (10.x.y.z), so names differ in address.
      let i = 0;
      for (let p = 14; p < 13 + q[12]!; p++) i = i * 10 + (q[p]! - 48);
      const qEnd = q.length - ((q[10]! << 8) | q[11]!) * 11; // the question ends where our OPT starts
      const a = new Uint8Array(qEnd + 16);
      a.set(q.subarray(0, qEnd));
      a[2] = 0x81;
      a[3] = 0x80;
      a[7] = 1; // ANCOUNT
      a[11] = 0; // ARCOUNT: no OPT echoed
      a.set([0xc0, 12, 0, 1, 0, 1, TTL >>> 24, (TTL >>> 16) & 255, (TTL >>> 8) & 255, TTL & 255, 0, 4, 10, (i >>> 16) & 255, (i >>> 8) & 255, i & 255], qEnd);
      s.send(a, port, addr);
    },
    error() {},
  },
});

// --- the daemon ------------------------------------------------------------------------------
const listenPort = 20000 + Math.floor(Math.random() * 20000);
const rulesPath = join(dir, 'soak.rules');
if (RULES > 0) writeFileSync(rulesPath, Array.from({ length: RULES }, (_, i) => `*.r${i.toString(36)}.example`).join('\n') + '\n');
const configPath = join(dir, 'dnsseal.yaml');
writeBenchConfig(configPath, {
  listenPort,
  upstreamPort: upstream.port,
  control,
  rules: ['    - { match: "*.p.soak.test", channel: hub }', ...(RULES > 0 ? [`    - rules_file: ${rulesPath}`, '      channel: hub'] : [])],
});
const cmd = [...(existsSync(DIST) ? [DIST] : [BUN, join(ROOT, 'src', 'main.ts')]), 'run', '--config', configPath];
const { daemon, cleanup } = spawnBenchDaemon(cmd, taskset, dir);
/** CPU seconds (user + system, all threads) of the daemon so far. */
const cpuS = (): number => {
  const stat = readFileSync(`/proc/${daemon.pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
};
for (let end = Date.now() + 120_000; ; ) {
  try {
    await controlRequest(control, { cmd: 'status' }, { timeoutMs: 2000 });
    break;
  } catch {
    if (daemon.exitCode !== null || Date.now() > end) throw new Error(`bench-soak: the daemon did not come up (exit ${daemon.exitCode})`);
    await Bun.sleep(100);
  }
}

// --- the load: open loop, QPS a second, names in turn ------------------------------------------
const wires = new Array<Uint8Array>(NAMES);
for (let i = 0; i < NAMES; i++) {
  const labels = [`n${i}`, ...(PROTECT_EVERY > 0 && i % PROTECT_EVERY === 0 ? ['p'] : []), 'soak', 'test'];
  const bytes = [0, 0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
  for (const l of labels) bytes.push(l.length, ...Buffer.from(l));
  bytes.push(0, 0, 1, 0, 1);
  wires[i] = Uint8Array.from(bytes);
}
let answered = 0;
let sentN = 0;
const client = await Bun.udpSocket({
  socket: {
    data() {
      answered++;
    },
    error() {},
  },
});
let next = 0;
const t0 = performance.now();
/** Most queries one 1 ms tick sends: a starved generator falls behind (the sent rate shows it) rather than bursting. */
const BURST = Math.max(1, Math.ceil(QPS / 250));
let owed = 0;
let lastTick = t0;
const load = setInterval(() => {
  const now = performance.now();
  owed = Math.min(owed + ((now - lastTick) * QPS) / 1000, BURST);
  lastTick = now;
  for (; owed >= 1; owed--, sentN++) {
    const q = wires[next]!;
    next = (next + 1) % NAMES;
    q[0] = (sentN >>> 8) & 255;
    q[1] = sentN & 255;
    client.send(q, listenPort, '127.0.0.1');
  }
}, 1);

const rss: number[] = [];
console.log(`bench-soak: ${QPS} qps over ${NAMES} names (1 in ${PROTECT_EVERY || '∞'} protected), TTL ${TTL} s, ${RULES} extra rules, ${SECONDS} s; daemon ${cmd[0] === DIST ? 'dist/dnsseal' : 'bun src/main.ts'}${taskset ? ', pinned (load on CPU 0, daemon on CPU 1)' : ''}`);
console.log('     t s   RSS MB   sent qps   answered qps   unanswered   cpu µs/answer   registry entries   cache entries');
let lastAnswered = 0;
let lastSent = 0;
let lastCpu = cpuS();
for (let t = EVERY; t <= SECONDS; t += EVERY) {
  await Bun.sleep(Math.max(0, t0 + t * 1000 - performance.now()));
  const cpu = cpuS();
  const a = answered - lastAnswered;
  const lost = sentN - lastSent - a; // in this interval (answers arriving later count in the next)
  const st = (await controlRequest(control, { cmd: 'status' }, { timeoutMs: 5000 }).catch(() => null)) as {
    entries?: { total?: number };
    cache?: { entries?: number };
  } | null;
  const mb = statusMb(daemon.pid, 'VmRSS');
  if (t > Math.min(10, SECONDS / 3)) rss.push(mb); // after warm-up
  console.log(
    `${String(t).padStart(8)} ${mb.toFixed(0).padStart(8)} ${((sentN - lastSent) / EVERY).toFixed(0).padStart(10)} ${(a / EVERY).toFixed(0).padStart(14)} ${String(Math.max(0, lost)).padStart(12)} ` +
      `${(((cpu - lastCpu) * 1e6) / Math.max(1, a)).toFixed(1).padStart(15)} ${String(st?.entries?.total ?? '-').padStart(18)} ${String(st?.cache?.entries ?? '-').padStart(15)}`,
  );
  lastAnswered = answered;
  lastSent = sentN;
  lastCpu = cpu;
}
clearInterval(load);
const sorted = [...rss].sort((x, y) => x - y);
if (sorted.length > 0) {
  console.log(
    `RSS after warm-up: min ${sorted[0]!.toFixed(0)} MB, median ${sorted[sorted.length >> 1]!.toFixed(0)} MB, max ${sorted.at(-1)!.toFixed(0)} MB; peak (VmHWM) ${statusMb(daemon.pid, 'VmHWM').toFixed(0)} MB`,
  );
}
console.log(`machine: load average ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')} on ${navigator.hardwareConcurrency} CPUs`);
client.close();
upstream.close();
cleanup();
await daemon.exited;
