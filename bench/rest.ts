/**
 * `make bench-rest`: the daemon's memory at rest (issue 12, "Figures": RSS with 10k live
 * registry entries and the default answer cache full). An upstream in this process answers
 * every A query with one address derived from the name and a long TTL (BENCH_REST_TTL), so
 * everything stays live; the daemon (default config: the default cache size) is asked
 * BENCH_REST_ENTRIES names under a protected suffix (one registry entry each: distinct
 * addresses) and BENCH_REST_CACHE unprotected ones (the cache sees ENTRIES + CACHE answers, so
 * the default 10,000 entries are full and evicting), BENCH_REST_WINDOW queries in flight.
 * Then the load stops and the RSS is printed every BENCH_REST_EVERY seconds for
 * BENCH_REST_SECONDS: the figure is the last one (at rest), beside the RSS of the same daemon
 * idle and empty before the fill, its peak (VmHWM) and the split of the RSS into anonymous
 * memory (heap, malloc) and file pages (the executable's code).
 *
 * The daemon is dist/dnsseal when built (`make build`), else `bun src/main.ts`
 * (BENCH_REST_DAEMON: another executable, for A/B runs); the environment passes on to it.
 * Pinned as bench/soak.ts is (this process on CPU 0, the daemon on CPU 1). Loopback only.
 * First, in this process: the heap bytes one registry entry costs (10,000 registered, full
 * collections before and after), alone and with the `none` data path's in-memory copy of the
 * map the bench daemon runs with (the eBPF data path keeps it in the kernel); bench/cache.ts
 * prints the same for a cache entry. Asserts nothing.
 *
 * 2026-12-03: 346 B per registry entry (564 with the none data path's copy), from 708 (928)
 * the same day before the record was slimmed. Part by part: the record 160 (an EntryRecord,
 * every field inline: one name and its hold without a Map, the value written as four numbers,
 * the channel's ref shared by all its entries), the name 52, the address 65, its slot in
 * `byGroup` the other 69 (no second index over all entries). A second name still costs a Map
 * (a CNAME chain). Before: a `names` Map 306 B with one name (the name 52, the Map 254), the
 * record 80, its own `channelRef` 48 and `written` copy 48, the address 65, the `group/addr` key
 * of `entries` 65 plus a slot in each of `entries` and `byGroup`.
 * 2026-12-03, the RSS with that record and the slimmer cache entry (624 B, bench/cache.ts), one
 * run each, this build then the day before's (load 0.5): at rest 79.6 and 78.9 MB (anon 36.3 /
 * 36.7, file 43.3 / 42.2) against 82.2 MB (anon 42.1, file 40.0): the anonymous part 5.4–5.8 MB
 * smaller; the executable's pages move by ±5 MB between runs (how much of it the page cache
 * holds when the daemon starts: fault-around maps only what is cached). Idle and empty: 44–48 MB.
 * 2026-12-03 10:40, two JSC levers tried and not adopted (one run each, machine under a CI run,
 * an experimental build with a timer; the executable's pages were 43.6 MB in that series, 40 in
 * the one before, so compare the anonymous part): `Bun.shrink()` every 12 s (JSC's
 * shrinkFootprintWhenIdle: drops every compiled function and collects once the loop is idle)
 * took the anonymous part at rest from 35.2 to 29.0 MB, a full `Bun.gc(true)` every 12 s only to
 * 33.6; but it throws away the JIT's work, so the first queries after each shrink run in the
 * interpreter again, Bun marks it deprecated, and on a router that never falls quite silent it
 * would either never run or run under load. BUN_JSC_useFTLJIT=0 (no top-tier JIT): at rest 70–71
 * against 73–75 MB (file pages 2 MB fewer, anonymous 1–2), peak during the fill 83–84 against
 * 94; in bench/soak (60 s, loaded machine) no better (median 122 against 117 MB).
 * 2026-12-02 (load 1–2.5): at rest 84–87 MB with or without
 * `memory_plan`: 44 MB the executable's pages, 40–43 MB anonymous for a live heap of 20 MB
 * (heap capacity 35 MB after a full collection: blocks left partly used), 86.8 MB with mimalloc
 * purging at once (MIMALLOC_PURGE_DELAY=0), 85 MB right after a full collection.
 */
import { heapStats } from 'bun:jsc';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { controlRequest } from '../src/control/client.ts';
import type { Datapath } from '../src/datapath/datapath.ts';
import { NoneDatapath } from '../src/datapath/none.ts';
import { Metrics } from '../src/ops/metrics.ts';
import type { ChannelSpec } from '../src/policy/types.ts';
import { Registry } from '../src/registry/registry.ts';
import { realClock } from '../src/util/clock.ts';
import { silentLogger } from '../src/util/log.ts';
import { spawnBenchDaemon, statusMb, writeBenchConfig, startIndexedUpstream } from './bench-daemon.ts';

const env = (k: string, d: number) => Number(process.env[k] ?? d);
const ENTRIES = env('BENCH_REST_ENTRIES', 10_000);
const CACHE = env('BENCH_REST_CACHE', 10_000);
const TTL = env('BENCH_REST_TTL', 3600);
const WINDOW = env('BENCH_REST_WINDOW', 200);
const SECONDS = env('BENCH_REST_SECONDS', 30);
const EVERY = env('BENCH_REST_EVERY', 5);
const ROOT = join(import.meta.dir, '..');
const DIST = process.env.BENCH_REST_DAEMON ?? join(ROOT, 'dist', 'dnsseal');
const BUN = join(ROOT, 'node_modules', '.bin', 'bun');

// --- heap bytes per registry entry, in this process ----------------------------------------------
{
  const n = 10_000;
  const heap = () => {
    Bun.gc(true);
    Bun.gc(true);
    return heapStats().heapSize;
  };
  const ch = { name: 'hub', id: 1, mark: 0x100, protocol: 'ipsec', kind: 'tunnel', gateway: '192.0.2.1', identity: '', esp: '' } as unknown as ChannelSpec;
  /** A data path that keeps nothing (as the eBPF one keeps nothing in the heap). */
  class NoStore extends NoneDatapath {
    override upsert(): void {}
    override remove(): void {}
    override lastSeen(): undefined {}
  }
  const figures: string[] = [];
  for (const [what, dp] of [['registry alone', () => new NoStore()], ["with the none data path's copy", () => new NoneDatapath()]] as const) {
    const reg = new Registry({ datapath: dp() as Datapath, clock: realClock, log: silentLogger, metrics: new Metrics(), minHoldMs: 0, idleMs: 60_000, channels: [ch] });
    // the name and address strings made per answer, as the pipeline makes them: counted in
    const h0 = heap();
    for (let i = 0; i < n; i++) {
      const name = `n${i}.p.rest.test`;
      reg.registerNow({ group: 0, channel: ch, names: [name], addrs: [`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`], ttlS: 3600, queryName: name });
    }
    figures.push(`${what} ${((heap() - h0) / n).toFixed(0)} B`);
    if (reg.size !== n) throw new Error('bench-rest: registrations lost');
  }
  console.log(`heap per registry entry (${n} registered): ${figures.join('; ')}`);
}

const dir = mkdtempSync(join(tmpdir(), 'dnsseal-bench-rest-'));
const control = join(dir, 'control.sock');
const taskset = Bun.which('taskset');
if (taskset) Bun.spawnSync([taskset, '-p', '-c', '0', String(process.pid)], { stdout: 'ignore', stderr: 'ignore' });

// --- the upstream: one A record per query, TTL `TTL`, the address from the name's index --------
const upstream = await startIndexedUpstream(TTL);

// --- the daemon --------------------------------------------------------------------------------
const listenPort = 20000 + Math.floor(Math.random() * 20000);
const configPath = join(dir, 'dnsseal.yaml');
writeBenchConfig(configPath, { listenPort, upstreamPort: upstream.port, control, rules: ['    - { match: "*.p.rest.test", channel: hub }'] });
const cmd = [...(existsSync(DIST) ? [DIST] : [BUN, join(ROOT, 'src', 'main.ts')]), 'run', '--config', configPath];
const { daemon, cleanup } = spawnBenchDaemon(cmd, taskset, dir);
type Status = { entries?: { total?: number }; cache?: { entries?: number } } | null;
const status = async (): Promise<Status> => (await controlRequest(control, { cmd: 'status' }, { timeoutMs: 5000 }).catch(() => null)) as Status;
for (let end = Date.now() + 120_000; ; ) {
  try {
    await controlRequest(control, { cmd: 'status' }, { timeoutMs: 2000 });
    break;
  } catch {
    if (daemon.exitCode !== null || Date.now() > end) throw new Error(`bench-rest: the daemon did not come up (exit ${daemon.exitCode})`);
    await Bun.sleep(100);
  }
}
/** RSS, its anonymous and file parts, MB. */
const rssParts = (): string => `${statusMb(daemon.pid, 'VmRSS').toFixed(1)} MB (anon ${statusMb(daemon.pid, 'RssAnon').toFixed(1)}, file ${statusMb(daemon.pid, 'RssFile').toFixed(1)})`;
await Bun.sleep(2000);
const idle = rssParts();

// --- the fill: every name once, WINDOW in flight, a lost query sent again -----------------------
function wire(i: number, id: number): Uint8Array {
  const labels = [`n${i}`, i < ENTRIES ? 'p' : 'u', 'rest', 'test'];
  const bytes = [id >> 8, id & 255, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
  for (const l of labels) bytes.push(l.length, ...Buffer.from(l));
  bytes.push(0, 0, 1, 0, 1);
  return Uint8Array.from(bytes);
}
const TOTAL = ENTRIES + CACHE;
const pending = new Map<number, { i: number; sentMs: number }>(); // by query id
let nextName = 0;
let nextId = 0;
let answered = 0;
let resent = 0;
const { promise: filled, resolve: fillDone } = Promise.withResolvers<void>();
const client = await Bun.udpSocket({
  socket: {
    data(_s, a) {
      const id = (a[0]! << 8) | a[1]!;
      if (!pending.delete(id)) return;
      answered++;
      pump();
    },
    error() {},
  },
});
function send(i: number): void {
  let id = nextId;
  while (pending.has(id)) id = (id + 1) & 0xffff;
  nextId = (id + 1) & 0xffff;
  pending.set(id, { i, sentMs: performance.now() });
  client.send(wire(i, id), listenPort, '127.0.0.1');
}
function pump(): void {
  while (pending.size < WINDOW && nextName < TOTAL) send(nextName++);
  if (answered === TOTAL) fillDone();
}
const t0 = performance.now();
pump();
const resend = setInterval(() => {
  const now = performance.now();
  for (const [id, p] of pending) {
    if (now - p.sentMs < 1000) continue;
    pending.delete(id);
    resent++;
    send(p.i);
  }
}, 250);
await filled;
clearInterval(resend);
const fillS = (performance.now() - t0) / 1000;
const loaded = rssParts();
const st0 = await status();
console.log(
  `bench-rest: ${ENTRIES} protected names (registry entries) + ${CACHE} unprotected, TTL ${TTL} s, ${WINDOW} in flight; daemon ${cmd[0] === DIST ? DIST : 'bun src/main.ts'}${taskset ? ', pinned (bench on CPU 0, daemon on CPU 1)' : ''}`,
);
console.log(`idle before the fill: RSS ${idle}`);
console.log(`filled in ${fillS.toFixed(1)} s (${resent} sent again): RSS ${loaded}; registry entries ${st0?.entries?.total ?? '-'}, cache entries ${st0?.cache?.entries ?? '-'}`);
console.log('  at rest s   RSS');
let last = '';
for (let t = EVERY; t <= SECONDS; t += EVERY) {
  await Bun.sleep(EVERY * 1000);
  last = rssParts();
  console.log(`${String(t).padStart(11)}   ${last}`);
}
const st = await status();
console.log(`at rest after ${SECONDS} s: RSS ${last}; peak (VmHWM) ${statusMb(daemon.pid, 'VmHWM').toFixed(1)} MB; registry entries ${st?.entries?.total ?? '-'}, cache entries ${st?.cache?.entries ?? '-'}`);
console.log(`machine: load average ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')} on ${navigator.hardwareConcurrency} CPUs`);
client.close();
upstream.close();
cleanup();
await daemon.exited;
