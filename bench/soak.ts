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
 * BENCH_SOAK_PROTECT_EVERY (5; 0: none protected), BENCH_SOAK_RULES (0), BENCH_SOAK_DAEMON (the
 * executable; default dist/dnsseal: for A/B runs of two builds). The environment passes on to
 * the daemon (so `BUN_JSC_…=… make bench-soak` tries a JavaScriptCore option). A run where,
 * after warm-up, the generator sent under 90% of the rate or the daemon answered under 95% of
 * what was sent is marked NOT VALID: a starved daemon allocates less and its RSS looks better than it is.
 *
 * What holds the memory (2026-12-02, `bun:jsc` heapStats every 5 s in the daemon run from
 * source with a --preload, this load, machine load 2.5–4; 30 s runs):
 * the JS heap after a full collection is 30–50 MB (10k cache + 20k registry entries, the
 * queries in flight); between full collections it grows to about 115 MB, and the RSS saw-tooth
 * (150 → 230 MB) follows it. The garbage looks old-generation (entries that churn with TTL 1): an
 * eden collection every 250 ms above 40 MB left the heap at 75–100 MB; a synchronous full one
 * (`bun:jsc` fullGC) brought RSS to 146 MB but blocks the loop 80–95 ms each time, so queries
 * wait; `Bun.gc(false)` changed nothing. JSC lets the heap double between collections while it
 * is under a quarter of the RAM it sees (24 GB here): `--smol` (documented; also
 * `--compile-exec-argv=--smol`) did not change that (median 186 vs 188 MB), while
 * `BUN_JSC_forceRAMSize=200000000` did (median 135 MB, µs/answer unchanged within the noise, one
 * run at load 3.6) — Bun's help calls BUN_JSC_ options unstable between releases. With 200k
 * rules at 1k qps (load 8–11): heap 32–45 MB plus 26 MB outside it (heapStats extraMemorySize),
 * RSS 101–112 MB; the same with forceRAMSize=200000000 103 MB, no GC storm.
 *
 * Since then the daemon can set that option itself: `memory_plan` (src/daemon/heap-plan.ts; off
 * by default: `--memory-plan 256` to try it). 40–45 s runs of this bench, plans alternated
 * (load 0.4–4.8), median RSS after warm-up / CPU µs per answer: 0 (the machine's 24 GB)
 * 182–209 MB (swinging 155–260) / 25–36; 256 and 384: 144–154 MB (max 155–160); 512 148–154
 * MB; 192 136–149 MB; 128 111–123 MB (max 124) / +20–35%; 96 and 64: 109–113 MB / +35–40%. CPU
 * per answer of 256 against 0 in the same round: -1%, +13%, +14%, and +15% in a 150 s pair
 * (0: median 190 MB, max 253; 256: median 149, max 163) — runs of one plan differ by as much, so
 * it is a trade-off, not a default. With BENCH_SOAK_RULES=200000 at 8k qps (60 s, alternated,
 * load 0.3–0.8): 0 median 207–282 MB, max 246–404, peak (VmHWM) 291–446; 256 median 179–185,
 * max 208–217, peak 233–237, CPU per answer +15–20% (29.3 → 33.6, 33.1 → 39.9). Below about 110 MB it is no longer the heap's slack: 44 MB
 * of the RSS are the executable's own pages (file-backed: RssFile), and the live heap with 20k
 * registry and 10k cache entries (the `none` data path keeps a copy of the map in the heap
 * too) is 30–50 MB, in blocks that stay partly used after a collection.
 *
 * 2026-12-03, 150 s runs one after the other (load 0.3–0.6), with the registry entry at 346 B and
 * the cache entry at 624 B (bench/rest.ts, bench/cache.ts): this build median 157 MB (min 135,
 * max 194, peak 205), CPU 25–26.5 µs per answer, against the day before's build median 189 MB
 * (max 248, peak 250), 27.5–30.8 µs. With the plan set through the variable
 * (BUN_JSC_forceRAMSize, as `memory_plan` does): 256 MB median 117 (max 130, peak 131) at 28.3 µs
 * median per answer against 26.5 without (+7%); 128 MB median 107 (min 97, max 125) at 29.2 µs (+10%).
 * With BENCH_SOAK_RULES=200000 (60 s): the default plan (256) median 177 MB (min 149, max 193, peak
 * 202) at 24.7 µs per answer; the engine's own sizing (forceRAMSize = the machine's 24 GB) median
 * 191 (max 221, peak 226) at 24.7 µs.
 */
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { controlRequest } from '../src/control/client.ts';
import { spawnBenchDaemon, statusMb, writeBenchConfig, startIndexedUpstream } from './bench-daemon.ts';

const env = (k: string, d: number) => Number(process.env[k] ?? d);
const SECONDS = env('BENCH_SOAK_SECONDS', 30);
const QPS = env('BENCH_SOAK_QPS', 8000);
const NAMES = env('BENCH_SOAK_NAMES', 100_000);
const TTL = env('BENCH_SOAK_TTL', 1);
const EVERY = env('BENCH_SOAK_EVERY', 5);
const PROTECT_EVERY = env('BENCH_SOAK_PROTECT_EVERY', 5);
const RULES = env('BENCH_SOAK_RULES', 0);
const ROOT = join(import.meta.dir, '..');
const DIST = process.env.BENCH_SOAK_DAEMON ?? join(ROOT, 'dist', 'dnsseal');
const BUN = join(ROOT, 'node_modules', '.bin', 'bun');

const dir = mkdtempSync(join(tmpdir(), 'dnsseal-bench-soak-'));
const control = join(dir, 'control.sock');
const taskset = Bun.which('taskset');
if (taskset) Bun.spawnSync([taskset, '-p', '-c', '0', String(process.pid)], { stdout: 'ignore', stderr: 'ignore' });

// --- the upstream: one A record per query, TTL `TTL`, the address from the query's name index --
const upstream = await startIndexedUpstream(TTL);

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
console.log(`bench-soak: ${QPS} qps over ${NAMES} names (1 in ${PROTECT_EVERY || '∞'} protected), TTL ${TTL} s, ${RULES} extra rules, ${SECONDS} s; daemon ${cmd[0] === DIST ? DIST : 'bun src/main.ts'}${taskset ? ', pinned (load on CPU 0, daemon on CPU 1)' : ''}`);
console.log('     t s   RSS MB   sent qps   answered qps   unanswered   cpu µs/answer   registry entries   cache entries');
let lastAnswered = 0;
let lastSent = 0;
let lastCpu = cpuS();
let warmSent = 0;
let warmAnswered = 0;
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
  if (t > Math.min(10, SECONDS / 3)) {
    // after warm-up
    rss.push(mb);
    warmSent += sentN - lastSent;
    warmAnswered += a;
  }
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
// A daemon that does not keep up (a loaded machine: its CPU taken by others) allocates less and
// holds less: its RSS looks better than it is. Say so rather than print a figure that misleads.
// The same when the load generator itself fell behind (it shares CPU 0 with the upstream).
const warmWanted = QPS * EVERY * rss.length;
if (warmSent > 0 && (warmAnswered < 0.95 * warmSent || warmSent < 0.9 * warmWanted)) {
  const sentPct = ((100 * warmSent) / warmWanted).toFixed(0);
  const answeredPct = ((100 * warmAnswered) / warmSent).toFixed(0);
  console.log(`NOT VALID: after warm-up ${sentPct}% of ${QPS} qps was sent and ${answeredPct}% of that answered (look at the load); the RSS above is not the figure under ${QPS} qps`);
}
console.log(`machine: load average ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')} on ${navigator.hardwareConcurrency} CPUs`);
client.close();
upstream.close();
cleanup();
await daemon.exited;
