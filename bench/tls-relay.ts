/**
 * The TLS relay pair against a stunnel pair (issue 13 "Figures"), in one run, interleaved:
 *
 *   client ─▶ [relay ─mTLS 1.3─▶ acceptor] ─▶ server        (dnsseal: bench/tls-pair-node.ts ×2)
 *   client ─▶ [stunnel client ─mTLS 1.3─▶ stunnel server] ─▶ server   (Debian stunnel4 ×2)
 *   client ─▶ server                                         (direct: the baseline)
 *
 * Both pairs use the same ECDSA P-256 certificates (test/tls/pki.ts), TLS 1.3 only, mutual
 * authentication with the peer's name checked, TLS_AES_128_GCM_SHA256 (what BoringSSL picks
 * for the relay; stunnel is told to use it too), one TLS connection per TCP connection, and
 * TCP_NODELAY. Pinned per BENCHMARKING.md: the pair under test (both of its processes) on CPU
 * 1, the load (iperf3 client and server, this process's client and 1-byte server) on CPU 0.
 *
 * Per pass, for each target in turn (direct, relay, stunnel): iperf3 upload and download
 * (MB/s; the pair's on-CPU seconds per GB moved, both processes, from /proc/PID/stat), connect
 * latency over sequential connections (connect → first byte of the server's greeting; p50/p99,
 * the added latency: minus direct; for the relay pair, the time its threads waited for the CPU
 * per connection — on a shared machine that, not the relay, makes the tail), and short connections at concurrency 16 (connections
 * per second; the pair's CPU ms per 1000 connections). Medians over passes, and the median of
 * the per-pass relay/stunnel ratios.
 *
 *   taskset -c 0 bun bench/tls-relay.ts [REPS=3] [SECONDS=4] [CONNECTS=300]
 *   (make bench-tls; the reference method: BENCH_TLS_REPS=5 BENCH_TLS_SECONDS=10)
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Subprocess } from 'bun';
import { standardPki } from '../test/tls/pki.ts';

const REPS = Number(process.argv[2] ?? 3);
const SECONDS = Number(process.argv[3] ?? 4);
const CONNECTS = Number(process.argv[4] ?? 300);
const RATE_CONNS = 2000;
const RATE_CONCURRENCY = 16;
const PAIR_CPU = '1';
const LOAD_CPU = '0';
const CLK_TCK = 100;

const children: Subprocess[] = [];
function spawn(argv: string[], cpu: string): Subprocess<'ignore', 'pipe', 'pipe'> {
  const p = Bun.spawn(['taskset', '-c', cpu, ...argv], { stdout: 'pipe', stderr: 'pipe' });
  children.push(p);
  return p;
}
function cleanup(): void {
  for (const c of children) c.kill();
}
process.on('exit', cleanup);

async function readyLine(p: Subprocess<'ignore', 'pipe', 'pipe'>, what: string): Promise<number[]> {
  const reader = p.stdout.getReader();
  let text = '';
  const until = performance.now() + 20_000;
  while (performance.now() < until) {
    const { value, done } = await reader.read();
    if (done) break;
    text += new TextDecoder().decode(value);
    const m = /ready ([\d ]+)\n/.exec(text);
    if (m) {
      reader.releaseLock();
      return m[1]!.trim().split(' ').map(Number);
    }
  }
  throw new Error(`${what} did not start: ${text} ${await new Response(p.stderr).text()}`);
}

async function waitListening(port: number, what: string): Promise<void> {
  const until = performance.now() + 20_000;
  while (performance.now() < until) {
    try {
      const s = await Bun.connect({ hostname: '127.0.0.1', port, socket: { data() {} } });
      s.end();
      return;
    } catch {
      await Bun.sleep(20);
    }
  }
  throw new Error(`${what} is not listening on ${port}`);
}

async function freePort(): Promise<number> {
  const l = Bun.listen({ hostname: '127.0.0.1', port: 0, socket: { data() {} } });
  const p = l.port;
  l.stop(true);
  return p;
}

/** On-CPU seconds of processes so far (utime + stime of every thread). */
function cpuSeconds(pids: number[]): number {
  let ticks = 0;
  for (const pid of pids) {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    ticks += Number(f[11]) + Number(f[12]);
  }
  return ticks / CLK_TCK;
}

/**
 * Run-queue wait (schedstat field 2: runnable, but another task held the CPU) of the
 * processes' threads, ms by thread id. Threads that end between two readings are lost, so this
 * is shown for the relay pair only (its threads live on; stunnel's per-connection threads do not).
 */
function runqueue(pids: number[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const pid of pids) {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      try {
        out.set(tid, Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[1]) / 1e6);
      } catch {
        /* the thread ended */
      }
    }
  }
  return out;
}

/** ms waited between two readings, over the threads present in both. */
function waited(a: Map<string, number>, b: Map<string, number>): number {
  let ms = 0;
  for (const [tid, v] of b) if (a.has(tid)) ms += v - a.get(tid)!;
  return ms;
}

// ── the servers: iperf3, and a 1-byte greeter for the connection tests ──────────────────────
const pki = standardPki();
const iperfPort = await freePort();
spawn(['iperf3', '-s', '-p', String(iperfPort)], LOAD_CPU);
await waitListening(iperfPort, 'iperf3 server');
const greeter = Bun.listen({
  hostname: '127.0.0.1',
  port: 0,
  socket: {
    open(s) {
      s.write('!');
      s.end();
    },
    data() {},
  },
});

// ── the dnsseal pair ────────────────────────────────────────────────────────────────────────
const accept = spawn([process.execPath, join(import.meta.dir, 'tls-pair-node.ts'), 'accept', pki.dir, String(iperfPort), String(greeter.port)], PAIR_CPU);
const [acceptPort] = await readyLine(accept, 'acceptor');
const relayProc = spawn([process.execPath, join(import.meta.dir, 'tls-pair-node.ts'), 'relay', pki.dir, String(acceptPort), String(iperfPort), String(greeter.port)], PAIR_CPU);
const [relayIperf, relayGreet] = await readyLine(relayProc, 'relay');

// ── the stunnel pair ────────────────────────────────────────────────────────────────────────
const sPorts = { serverIperf: await freePort(), serverGreet: await freePort(), clientIperf: await freePort(), clientGreet: await freePort() };
const common = ['foreground = yes', 'pid =', 'debug = 3', 'socket = l:TCP_NODELAY=1', 'socket = r:TCP_NODELAY=1'];
const tlsOpts = (name: string) => [
  `cert = ${pki.path(`${name}.crt`)}`,
  `key = ${pki.path(`${name}.key`)}`,
  `CAfile = ${pki.path('ca.crt')}`,
  'verifyChain = yes',
  'requireCert = yes',
  'sslVersionMin = TLSv1.3',
  'sslVersionMax = TLSv1.3',
  'ciphersuites = TLS_AES_128_GCM_SHA256',
];
writeFileSync(
  pki.path('stunnel-server.conf'),
  [
    ...common,
    '[iperf]',
    `accept = 127.0.0.1:${sPorts.serverIperf}`,
    `connect = 127.0.0.1:${iperfPort}`,
    ...tlsOpts('peer'),
    'checkHost = router.corp.test',
    '[greet]',
    `accept = 127.0.0.1:${sPorts.serverGreet}`,
    `connect = 127.0.0.1:${greeter.port}`,
    ...tlsOpts('peer'),
    'checkHost = router.corp.test',
    '',
  ].join('\n'),
);
writeFileSync(
  pki.path('stunnel-client.conf'),
  [
    ...common,
    '[iperf]',
    'client = yes',
    `accept = 127.0.0.1:${sPorts.clientIperf}`,
    `connect = 127.0.0.1:${sPorts.serverIperf}`,
    ...tlsOpts('router'),
    'checkHost = peer.partner.test',
    '[greet]',
    'client = yes',
    `accept = 127.0.0.1:${sPorts.clientGreet}`,
    `connect = 127.0.0.1:${sPorts.serverGreet}`,
    ...tlsOpts('router'),
    'checkHost = peer.partner.test',
    '',
  ].join('\n'),
);
const sServer = spawn(['stunnel4', pki.path('stunnel-server.conf')], PAIR_CPU);
const sClient = spawn(['stunnel4', pki.path('stunnel-client.conf')], PAIR_CPU);
for (const [p, w] of [
  [sPorts.serverIperf, 'stunnel server'],
  [sPorts.clientIperf, 'stunnel client'],
] as const) await waitListening(p, w);

interface Target {
  name: string;
  iperf: number;
  greet: number;
  pids: number[];
}
const TARGETS: Target[] = [
  { name: 'direct', iperf: iperfPort, greet: greeter.port, pids: [] },
  { name: 'relay', iperf: relayIperf!, greet: relayGreet!, pids: [accept.pid, relayProc.pid] },
  { name: 'stunnel', iperf: sPorts.clientIperf, greet: sPorts.clientGreet, pids: [sServer.pid, sClient.pid] },
];

// ── measurements ────────────────────────────────────────────────────────────────────────────
async function iperf(t: Target, reverse: boolean): Promise<{ mbs: number; cpuPerGb: number }> {
  const c0 = cpuSeconds(t.pids);
  const p = Bun.spawn(['taskset', '-c', LOAD_CPU, 'iperf3', '-c', '127.0.0.1', '-p', String(t.iperf), '-t', String(SECONDS), '-J', ...(reverse ? ['-R'] : [])], { stdout: 'pipe', stderr: 'pipe' });
  const out = await new Response(p.stdout).text();
  await p.exited;
  const c1 = cpuSeconds(t.pids);
  const j = JSON.parse(out) as { end?: { sum_received?: { bytes: number; seconds: number } }; error?: string };
  if (!j.end?.sum_received) throw new Error(`iperf3 through ${t.name}: ${j.error ?? out.slice(0, 300)}`);
  const { bytes, seconds } = j.end.sum_received;
  return { mbs: bytes / 2 ** 20 / seconds, cpuPerGb: t.pids.length ? (c1 - c0) / (bytes / 2 ** 30) : NaN };
}

/** Connect → the greeter's byte; resolves with ms (rejects when the byte does not come). */
function greet(port: number): Promise<number> {
  const t0 = performance.now();
  let first = 0;
  return new Promise((resolve, reject) => {
    Bun.connect({
      hostname: '127.0.0.1',
      port,
      socket: {
        data(s) {
          if (!first) first = performance.now() - t0;
          s.end();
        },
        close: () => (first ? resolve(first) : reject(new Error(`no greeting through port ${port}`))),
        connectError: (_s, e) => reject(e),
      },
    }).catch(reject);
  });
}

async function latency(t: Target): Promise<{ sorted: number[]; waitMs: number }> {
  const ms: number[] = [];
  const w0 = runqueue(t.pids);
  for (let i = 0; i < CONNECTS; i++) ms.push(await greet(t.greet));
  return { sorted: ms.sort((a, b) => a - b), waitMs: waited(w0, runqueue(t.pids)) / CONNECTS };
}

async function rate(t: Target): Promise<{ perS: number; cpuMsPer1000: number }> {
  const c0 = cpuSeconds(t.pids);
  const t0 = performance.now();
  let left = RATE_CONNS;
  await Promise.all(
    Array.from({ length: RATE_CONCURRENCY }, async () => {
      while (left-- > 0) await greet(t.greet);
    }),
  );
  const s = (performance.now() - t0) / 1000;
  return { perS: RATE_CONNS / s, cpuMsPer1000: t.pids.length ? ((cpuSeconds(t.pids) - c0) * 1000) / (RATE_CONNS / 1000) : NaN };
}

const q = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) >> 1]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

type Row = { up: number; upCpu: number; down: number; downCpu: number; p50: number; p90: number; p99: number; wait: number; rate: number; rateCpu: number };
const results = new Map<string, Row[]>(TARGETS.map((t) => [t.name, []]));

console.log(`tls-relay bench: ${REPS} passes; iperf3 ${SECONDS} s each way; ${CONNECTS} sequential connects; ${RATE_CONNS} connects at concurrency ${RATE_CONCURRENCY}`);
console.log(`pair on CPU ${PAIR_CPU}, load on CPU ${LOAD_CPU}; Bun ${Bun.version}; ${(await new Response(Bun.spawn(['stunnel4', '-version'], { stderr: 'pipe' }).stderr).text()).split('\n').find((l) => l.startsWith('stunnel')) ?? 'stunnel4'}`);
for (let pass = 1; pass <= REPS; pass++) {
  for (const t of TARGETS) {
    const up = await iperf(t, false);
    const down = await iperf(t, true);
    const { sorted: lat, waitMs } = await latency(t);
    const r = await rate(t);
    results.get(t.name)!.push({ up: up.mbs, upCpu: up.cpuPerGb, down: down.mbs, downCpu: down.cpuPerGb, p50: q(lat, 0.5), p90: q(lat, 0.9), p99: q(lat, 0.99), wait: waitMs, rate: r.perS, rateCpu: r.cpuMsPer1000 });
    const x = results.get(t.name)!.at(-1)!;
    console.log(
      `pass ${pass} ${t.name.padEnd(8)} up ${x.up.toFixed(0).padStart(5)} MB/s  down ${x.down.toFixed(0).padStart(5)} MB/s  ` +
        `connect p50 ${x.p50.toFixed(3)} p90 ${x.p90.toFixed(3)} p99 ${x.p99.toFixed(3)} ms  ${x.rate.toFixed(0)} conn/s` +
        (t.pids.length ? `  cpu ${x.upCpu.toFixed(2)}/${x.downCpu.toFixed(2)} s/GB, ${x.rateCpu.toFixed(0)} ms/1000 conns` : '') +
        (t.name === 'relay' ? `, run-queue wait ${x.wait.toFixed(2)} ms/conn` : ''),
    );
  }
}

const med = (name: string, k: keyof Row) => median(results.get(name)!.map((r) => r[k]));
const ratio = (k: keyof Row) => median(results.get('relay')!.map((r, i) => r[k] / results.get('stunnel')![i]![k]));
const added = (name: string, k: 'p50' | 'p99') => median(results.get(name)!.map((r, i) => r[k] - results.get('direct')![i]![k]));
console.log('\nmedians            up MB/s  down MB/s  s/GB up/down   connect p50 / p99 ms (added)          conn/s   ms CPU/1000 conns');
for (const t of TARGETS) {
  const n = t.name;
  const cpu = t.pids.length ? `${med(n, 'upCpu').toFixed(2)} / ${med(n, 'downCpu').toFixed(2)}` : '-';
  const add = n === 'direct' ? '' : ` (+${added(n, 'p50').toFixed(3)} / +${added(n, 'p99').toFixed(3)})`;
  console.log(
    `${n.padEnd(18)} ${med(n, 'up').toFixed(0).padStart(7)}  ${med(n, 'down').toFixed(0).padStart(9)}  ${cpu.padStart(12)}   ` +
      `${med(n, 'p50').toFixed(3)} / ${med(n, 'p99').toFixed(3)}${add}`.padEnd(38) +
      `${med(n, 'rate').toFixed(0).padStart(7)}   ${t.pids.length ? med(n, 'rateCpu').toFixed(0) : '-'}`,
  );
}
console.log(
  `\nrelay / stunnel (median of per-pass ratios): up ${ratio('up').toFixed(2)}x, down ${ratio('down').toFixed(2)}x, ` +
    `CPU/GB up ${ratio('upCpu').toFixed(2)}x down ${ratio('downCpu').toFixed(2)}x, ` +
    `added connect latency p50 ${(added('relay', 'p50') / added('stunnel', 'p50')).toFixed(2)}x p99 ${(added('relay', 'p99') / added('stunnel', 'p99')).toFixed(2)}x, ` +
    `conn/s ${ratio('rate').toFixed(2)}x, CPU/conn ${ratio('rateCpu').toFixed(2)}x`,
);
greeter.stop(true);
cleanup();
pki.cleanup();
process.exit(0);
