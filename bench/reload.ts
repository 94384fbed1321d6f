/**
 * `make bench-reload`: a 200k-rule reload of a running daemon under query load (issue 12,
 * "A reload builds the new policy off the hot path"). Prints, per reload and in sum:
 *
 * - the longest answer delay while the reload ran (send → answer, measured by the load
 *   generator in this process) against the longest of an equal window without a reload
 *   (the machine's own jitter), and any answer lost;
 * - the event loop's extra CPU time for the reload (its main thread's on-CPU time in the
 *   window beyond its rate without a reload, /proc/PID/task/PID/schedstat): on a shared
 *   machine, the bound of what the reload itself can hold an answer back by;
 * - the daemon's RSS before the reload (steady state), its peak during it (VmHWM, reset before
 *   each reload, and sampled every 2 ms) and after it settled.
 *
 * The daemon is `bun src/main.ts run` (or BENCH_RELOAD_CMD, `{CONFIG}` substituted) with a
 * config whose default table is a rules file of BENCH_RELOAD_RULES (default 200000) rules;
 * each reload rewrites the file with another 1% of the rules changed, so the policy really is
 * rebuilt. Pinned as ../shared/BENCHMARKING.md says when taskset exists: this process (load
 * generator and the upstream) on CPU 0, the daemon on CPU 1 — its reload worker included, so
 * the worker and the event loop share one CPU (the worst case; BENCH_RELOAD_PIN=0 leaves the
 * daemon unpinned, as it runs on a router). Loopback only. Asserts nothing.
 *
 * Env: BENCH_RELOAD_RULES (200000), BENCH_RELOAD_RELOADS (5), BENCH_RELOAD_QPS (2000),
 * BENCH_RELOAD_PIN (1).
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { controlRequest } from '../src/control/client.ts';
import { spawnBenchDaemon, statusMb, writeBenchConfig } from './bench-daemon.ts';

const RULES = Number(process.env.BENCH_RELOAD_RULES ?? 200_000);
const RELOADS = Number(process.env.BENCH_RELOAD_RELOADS ?? 5);
const QPS = Number(process.env.BENCH_RELOAD_QPS ?? 2000);
const PIN = process.env.BENCH_RELOAD_PIN !== '0';
const ROOT = join(import.meta.dir, '..');
const BUN = join(ROOT, 'node_modules', '.bin', 'bun');

const dir = mkdtempSync(join(tmpdir(), 'dnsseal-bench-reload-'));
const rulesPath = join(dir, 'bench.rules');
const configPath = join(dir, 'dnsseal.yaml');
const control = join(dir, 'control.sock');

// --- rules: the mix of bench/rules.ts (45% exact, 35% suffix, 10% prefix, 10% infix) ------------
const TLDS = ['com', 'net', 'org', 'jp', 'co.jp', 'ne.jp', 'de', 'example', 'io', 'co.uk'];
const WORDS = ['mail', 'www', 'api', 'cdn', 'git', 'vpn', 'corp', 'shop', 'app', 'login'];
function pattern(i: number, gen: number): string {
  const r = (Math.imul(i + 1, 0x9e3779b1) >>> 0) / 2 ** 32;
  // `gen` changes every hundredth rule, so each reload really brings another table
  const d = `d${i.toString(36)}${i % 100 === gen % 100 ? `g${gen}` : ''}.${TLDS[i % TLDS.length]}`;
  if (r < 0.45) return `${WORDS[i % WORDS.length]}.${d}`;
  if (r < 0.8) return `*.${d}`;
  if (r < 0.9) return `p${i.toString(36)}.*`;
  return `*.x${i.toString(36)}.*`;
}
function writeRules(gen: number): void {
  const lines = new Array<string>(RULES);
  for (let i = 0; i < RULES; i++) lines[i] = pattern(i, gen);
  writeFileSync(rulesPath, lines.join('\n') + '\n');
}

// --- the upstream: answers every A query with one address, in this process (CPU 0) ---------------
const upstream = await Bun.udpSocket({
  hostname: '127.0.0.1',
  port: 0,
  socket: {
    data(s, q, port, addr) {
      // header (id kept, QR RD RA), the question copied, one A record by pointer
      const a = new Uint8Array(q.length + 16);
      a.set(q);
      a[2] = 0x81;
      a[3] = 0x80;
      a[7] = 1; // ANCOUNT
      a[10] = 0;
      a[11] = 0; // ARCOUNT (no OPT echoed)
      a.set([0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 198, 51, 100, (q[1]! & 0x7f) + 1], q.length);
      s.send(a, port, addr);
    },
    error() {}, // ICMP for an answer nobody waits for any more
  },
});

// --- the daemon ------------------------------------------------------------------------------------
const listenPort = 20000 + Math.floor(Math.random() * 20000);
writeRules(0);
writeBenchConfig(configPath, {
  listenPort,
  upstreamPort: upstream.port,
  control,
  rules: [`    - rules_file: ${rulesPath}`, '      channel: hub'],
});
const taskset = PIN ? Bun.which('taskset') : null;
const cmdText = process.env.BENCH_RELOAD_CMD;
const cmd = cmdText ? cmdText.replaceAll('{CONFIG}', configPath).split(/\s+/) : [BUN, join(ROOT, 'src', 'main.ts'), 'run', '--config', configPath];
if (taskset) {
  Bun.spawnSync([taskset, '-p', '-c', '0', String(process.pid)], { stdout: 'ignore', stderr: 'ignore' });
}
const { daemon, cleanup } = spawnBenchDaemon(cmd, taskset, dir);

const status = (key: string): number => statusMb(daemon.pid, key);
/** Milliseconds the daemon's main thread (its event loop) has spent on a CPU. */
const loopCpuMs = (): number => Number(readFileSync(`/proc/${daemon.pid}/task/${daemon.pid}/schedstat`, 'utf8').split(' ')[0]) / 1e6;
const resetPeak = (): boolean => {
  try {
    writeFileSync(`/proc/${daemon.pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
};

// --- the load: QPS queries a second, each answer's delay recorded ---------------------------------
interface Sample {
  sentMs: number;
  delayMs: number;
}
const sent = new Map<number, number>();
const samples: Sample[] = [];
let nextId = 0;
const client = await Bun.udpSocket({
  socket: {
    data(_s, buf) {
      const id = (buf[0]! << 8) | buf[1]!;
      const t = sent.get(id);
      if (t === undefined) return;
      sent.delete(id);
      samples.push({ sentMs: t, delayMs: performance.now() - t });
    },
    error() {},
  },
});
const encodeName = (name: string) => name.split('.').flatMap((l) => [l.length, ...new TextEncoder().encode(l)]);
// half protected (names the rules match), half not
const names = Array.from({ length: 512 }, (_, i) => encodeName(i % 2 ? `host${i}.d${(i * 37).toString(36)}.${TLDS[(i * 37) % TLDS.length]}` : `www.free${i}.test`));
function sendOne(): void {
  const id = nextId++ & 0xffff;
  if (sent.has(id)) return; // still outstanding after 65536 queries: counted as lost below
  const q = new Uint8Array([id >> 8, id & 0xff, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, ...names[id % names.length]!, 0, 0, 1, 0, 1]);
  sent.set(id, performance.now());
  client.send(q, listenPort, '127.0.0.1');
}
let loadTimer: ReturnType<typeof setInterval> | undefined;
function startLoad(): void {
  const perTick = Math.max(1, Math.round(QPS / 1000));
  loadTimer = setInterval(() => {
    for (let i = 0; i < perTick; i++) sendOne();
  }, 1);
}

async function waitForDaemon(): Promise<void> {
  const end = Date.now() + 120_000;
  for (;;) {
    try {
      await controlRequest(control, { cmd: 'status' }, { timeoutMs: 2000 });
      return;
    } catch {
      if (daemon.exitCode !== null) throw new Error(`bench-reload: the daemon exited ${daemon.exitCode}`);
      if (Date.now() > end) throw new Error('bench-reload: the daemon did not come up within 120 s');
      await Bun.sleep(100);
    }
  }
}

/** The longest delay of answers to queries sent in [from, to), and how many of them got none. */
function window(from: number, to: number): { max: number; p99: number; answered: number; lost: number } {
  const inWin = samples.filter((s) => s.sentMs >= from && s.sentMs < to).map((s) => s.delayMs);
  const lost = [...sent.values()].filter((t) => t >= from && t < to && performance.now() - t > 3000).length;
  inWin.sort((a, b) => a - b);
  return { max: inWin.at(-1) ?? NaN, p99: inWin[Math.floor(inWin.length * 0.99)] ?? NaN, answered: inWin.length, lost };
}

await waitForDaemon();
startLoad();
await Bun.sleep(3000); // warm up: JIT, upstream sockets
const rows: string[] = [];
const summary = { reloadMax: 0, quietMax: 0, lost: 0, peakRatio: 0, reloadMs: 0, reloadP99: [] as number[], quietP99: [] as number[], before: [] as number[], peak: [] as number[], loopExtra: [] as number[] };
const hwm = resetPeak();
for (let r = 1; r <= RELOADS; r++) {
  Bun.gc(true);
  await Bun.sleep(1500);
  // a quiet window as long as a reload usually takes: the machine's own jitter
  const quietFrom = performance.now();
  const quietCpu0 = loopCpuMs();
  await Bun.sleep(1500);
  const quietCpu = loopCpuMs() - quietCpu0;
  const quietMs = performance.now() - quietFrom;
  const quiet = window(quietFrom, performance.now());
  const before = status('VmRSS');
  writeRules(r);
  resetPeak();
  let peak = before;
  const sampler = setInterval(() => (peak = Math.max(peak, status('VmRSS'))), 2);
  const from = performance.now();
  const cpu0 = loopCpuMs();
  let reply: unknown;
  try {
    reply = await controlRequest(control, { cmd: 'reload' }, { timeoutMs: 60_000 });
  } catch (err) {
    reply = `error: ${(err as Error).message}`;
  }
  const tookMs = performance.now() - from;
  // answers to queries sent up to 1 s after the reply (settling work happens then)
  await Bun.sleep(1000);
  const to = performance.now();
  // the event loop's extra work: its CPU time in the reload window beyond its rate without one
  const loopExtra = loopCpuMs() - cpu0 - (quietCpu / quietMs) * (to - from);
  await Bun.sleep(3000);
  clearInterval(sampler);
  const during = window(from, to);
  if (hwm) peak = Math.max(peak, status('VmHWM'));
  const after = status('VmRSS');
  summary.reloadMax = Math.max(summary.reloadMax, during.max);
  summary.quietMax = Math.max(summary.quietMax, quiet.max);
  summary.lost += during.lost;
  summary.peakRatio = Math.max(summary.peakRatio, peak / before);
  summary.reloadMs = Math.max(summary.reloadMs, tookMs);
  summary.reloadP99.push(during.p99);
  summary.quietP99.push(quiet.p99);
  summary.before.push(before);
  summary.peak.push(peak);
  summary.loopExtra.push(loopExtra);
  const ok = typeof reply === 'object' && reply !== null && 'rules' in reply ? `rules ${(reply as { rules: number }).rules}` : String(reply);
  rows.push(
    `reload ${r}: ${tookMs.toFixed(0)} ms (${ok}); answer delay max ${during.max.toFixed(1)} ms, p99 ${during.p99.toFixed(1)} ms over ${during.answered} answers, lost ${during.lost}` +
      ` | quiet window max ${quiet.max.toFixed(1)} ms, p99 ${quiet.p99.toFixed(1)} ms | event loop +${loopExtra.toFixed(1)} ms CPU | RSS before ${before.toFixed(0)} MB, peak ${peak.toFixed(0)} MB (${(peak / before).toFixed(2)}x), after ${after.toFixed(0)} MB`,
  );
  console.log(rows.at(-1));
}
clearInterval(loadTimer);
console.log(`rules:    ${RULES} in the default table, ${QPS} queries/s (half protected), ${RELOADS} reloads`);
const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
console.log(`delay:    longest answer delay during a reload ${summary.reloadMax.toFixed(1)} ms (target <= 10 ms); without a reload ${summary.quietMax.toFixed(1)} ms; answers lost ${summary.lost}`);
console.log(`          p99 per window, median of ${RELOADS}: ${med(summary.reloadP99).toFixed(1)} ms during a reload, ${med(summary.quietP99).toFixed(1)} ms without`);
console.log(`          the event loop's own extra CPU time per reload (beyond its rate without one): median ${med(summary.loopExtra).toFixed(1)} ms, most ${Math.max(...summary.loopExtra).toFixed(1)} ms — an upper bound of how long the reload itself can hold an answer back`);
console.log(`memory:   peak RSS during a reload up to ${summary.peakRatio.toFixed(2)}x the steady state before it (target <= 1.5x); median before ${med(summary.before).toFixed(0)} MB, peak ${med(summary.peak).toFixed(0)} MB`);
console.log(`duration: a reload took up to ${summary.reloadMs.toFixed(0)} ms (request to reply)`);
console.log(`machine:  load average ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')} on ${navigator.hardwareConcurrency} CPUs${taskset ? ', pinned' : ''}`);
client.close();
upstream.close();
cleanup();
await daemon.exited;
