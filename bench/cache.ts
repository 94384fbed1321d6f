/**
 * bench-cache: what the answer cache (src/cache) costs in JavaScript, at its default size.
 *
 * - heap bytes per entry with the default number of entries full of a typical mix of answers
 *   (A; CNAME → 2×A; AAAA; NXDOMAIN with SOA), beside their wire bytes and the bytes the byte
 *   bound counts; then again after one hit on every entry two seconds later (what a hit leaves
 *   behind in the entry, as a daemon whose entries are asked again has it); and the heap per
 *   entry for answers of 1 to 30 A records against what the byte bound counts (`costOf`);
 * - ns per lookup that hits (the hit, its own aged scan, included: over all entries at random,
 *   which the CPU caches cannot hold, and over 100 popular names), per lookup that misses, per
 *   insert into free room and per insert that evicts (SIEVE), on-CPU and wall;
 * - ns per query through the real pipeline: a cache hit (unprotected; protected, registered in
 *   a real registry over the `none` data path) against the same query answered by an upstream
 *   double that reads the answer as the forwarder does (no cache; sockets are not in it);
 * - hit ratio of SIEVE against LRU at the default size on Zipf traces (why SIEVE).
 *
 * Prints figures; asserts nothing.   node_modules/.bin/bun bench/cache.ts
 * BENCH_CACHE_PARTS=memory (a comma-separated list of memory, ops, pipeline, ratio): only those
 * parts; `memory` alone takes a few seconds and its figures do not depend on CPU load.
 *
 * 2026-12-03, main at 82a39e4 (A) against the lean entry (B: no scan object, no aged copy, a hit
 * is its own scan), A and B alternated in one session, this same file run against each tree:
 * - memory (not load-sensitive): 878 → 624 B per entry, and 1,051 → 626 B once every entry was
 *   hit (A kept an aged copy of the scan per entry hit); the bound now counts stored bytes + 340
 *   + 50 per name/address: 13% over the heap for 1 A record, 1–5% over for 2 to 30, 8% under for
 *   the mix.
 * - hit ns (load 1–3, wall; on-CPU readings here come in steps of ~100 ns): lookup hit at random
 *   A 412–433, B 435–438; 100 popular A 166–182, B 175–184 (within noise, B at most ~10 ns
 *   more); through the pipeline, unprotected A 1266–1474, B 1271–1395; protected A 2933–3485,
 *   B 2784–3113. bench/pipeline-hit.ts (on-CPU ns per hit, 4 runs each): A 897–973, B 787–824;
 *   PROTECT_ALL=1 A 1288–1313, B 1154–1172.
 */
import { heapStats } from 'bun:jsc';
import dnsPacket from 'dns-packet';
import { AnswerCache } from '../src/cache/answer-cache.ts';
import { CACHE_DEFAULTS, ENTRY_OVERHEAD_BYTES, STRING_OVERHEAD_BYTES } from '../src/cache/cache-limits.ts';
import { CachingForwarder } from '../src/cache/caching-forwarder.ts';
import { Sieve, type SieveNode } from '../src/cache/sieve.ts';
import { NoneDatapath } from '../src/datapath/none.ts';
import { scanAnswer } from '../src/dns/answer-scan.ts';
import { parseQuery, type ParsedQuery } from '../src/dns/query.ts';
import { Metrics } from '../src/ops/metrics.ts';
import type { ChannelSpec, Decision } from '../src/policy/types.ts';
import type { Forwarded } from '../src/proxy/forwarder.ts';
import type { ClientInfo } from '../src/proxy/handler.ts';
import { Pipeline, type PolicyApi } from '../src/proxy/pipeline.ts';
import { newProxyCounters } from '../src/proxy/proxy-counters.ts';
import { Registry } from '../src/registry/registry.ts';
import { FakeClock, realClock } from '../src/util/clock.ts';
import { silentLogger } from '../src/util/log.ts';
import { since, stamp, type Stamp } from './cpu-clock.ts';

const N = CACHE_DEFAULTS.maxEntries;
const ROUNDS = 7;
const PARTS = new Set((process.env.BENCH_CACHE_PARTS ?? 'memory,ops,pipeline,ratio').split(','));

function queryBytes(name: string, type: number, id = 0x4242): Uint8Array {
  const parts: number[] = [id >> 8, id & 0xff, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 1];
  for (const l of name.split('.')) parts.push(l.length, ...Buffer.from(l));
  parts.push(0, type >> 8, type & 0xff, 0, 1);
  parts.push(0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0);
  return Uint8Array.from(parts);
}

function parsed(bytes: Uint8Array): ParsedQuery {
  const p = parseQuery(bytes);
  if (p.kind !== 'ok') throw new Error('bench: bad query');
  return p.query;
}

/** The i-th name of a set and its answer kind: half A, a fifth CNAME → 2×A, a fifth AAAA, a tenth NXDOMAIN. */
function nameOf(set: string, i: number): { name: string; type: number; kind: 'a' | 'cname' | 'aaaa' | 'nx' } {
  const r = i % 10;
  const kind = r < 5 ? 'a' : r < 7 ? 'cname' : r < 9 ? 'aaaa' : 'nx';
  return { name: `h${i}.${set}.example.net`, type: kind === 'aaaa' ? 28 : 1, kind };
}

const ip4 = (i: number) => `10.${(i >>> 16) & 255}.${(i >>> 8) & 255}.${i & 255}`;

/** The upstream's answer as it comes off the wire (compressed, with an OPT). */
function answerBytes(set: string, i: number): Uint8Array {
  const { name, type, kind } = nameOf(set, i);
  const answers: dnsPacket.Answer[] = [];
  const authorities: dnsPacket.Answer[] = [];
  if (kind === 'a') answers.push({ type: 'A', name, ttl: 300, data: ip4(i) });
  if (kind === 'aaaa') answers.push({ type: 'AAAA', name, ttl: 300, data: `2001:db8::${i.toString(16)}` });
  if (kind === 'cname') {
    const target = `edge${i % 97}.cdn.example.org`;
    answers.push({ type: 'CNAME', name, ttl: 3600, data: target }, { type: 'A', name: target, ttl: 60, data: ip4(i) }, { type: 'A', name: target, ttl: 60, data: ip4(i + 1) });
  }
  if (kind === 'nx') {
    authorities.push({ type: 'SOA', name: 'example.net', ttl: 900, data: { mname: 'ns1.example.net', rname: 'hostmaster.example.net', serial: 1, refresh: 3600, retry: 600, expire: 86400, minimum: 900 } });
  }
  return dnsPacket.encode({
    type: 'response',
    id: 0x1234,
    flags: dnsPacket.RECURSION_DESIRED | dnsPacket.RECURSION_AVAILABLE | (kind === 'nx' ? 3 : 0),
    questions: [{ type: type === 28 ? 'AAAA' : 'A', name, class: 'IN' }],
    answers,
    authorities,
    additionals: [{ type: 'OPT', name: '.', udpPayloadSize: 1232, extendedRcode: 0, ednsVersion: 0, flags: 0, options: [] } as unknown as dnsPacket.Answer],
  });
}

function forwarded(q: ParsedQuery, bytes: Uint8Array): Forwarded {
  return { bytes, scan: scanAnswer(bytes, q.question.length, q.qname), via: 'udp' };
}

interface Item {
  q: ParsedQuery;
  f: Forwarded;
}
function items(set: string, n: number): Item[] {
  return Array.from({ length: n }, (_, i) => {
    const { name, type } = nameOf(set, i);
    const q = parsed(queryBytes(name, type));
    return { q, f: forwarded(q, answerBytes(set, i)) };
  });
}

const heap = () => {
  Bun.gc(true);
  return heapStats().heapSize;
};
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)]!;
const fmt = (s: Stamp[]) => `${median(s.map((x) => x.cpu)).toFixed(0).padStart(6)} ns on-CPU  (wall ${median(s.map((x) => x.wall)).toFixed(0)})`;

// 1. Memory: the default number of entries, answers made and dropped one by one; then one hit
// on each two seconds later (the queries made before, so only what the hits leave is counted).
if (PARTS.has('memory')) {
  const clock = new FakeClock();
  const memCache = new AnswerCache({ clock });
  let wire = 0;
  const h0 = heap();
  for (let i = 0; i < N; i++) {
    const { name, type } = nameOf('mem', i);
    const q = parsed(queryBytes(name, type));
    const b = answerBytes('mem', i);
    wire += scanAnswer(b, q.question.length, q.qname).end;
    memCache.insert(q, 'default', forwarded(q, b));
  }
  const h1 = heap();
  const perEntry = (h1 - h0) / memCache.size;
  const again = Array.from({ length: N }, (_, i) => parsed(queryBytes(nameOf('mem', i).name, nameOf('mem', i).type)));
  const h2 = heap();
  clock.advance(2_000);
  let hit = 0;
  for (const q of again) if (memCache.lookup(q, 'default')) hit++;
  const h3 = heap();
  if (hit !== N || again.length !== N) throw new Error(`bench: ${hit} hits of ${N}`);
  console.log(`cache: default ${N} entries, ${CACHE_DEFAULTS.maxBytes / 1048576} MiB bound (counted per entry: stored bytes + ${ENTRY_OVERHEAD_BYTES} + ${STRING_OVERHEAD_BYTES} per name/address)`);
  console.log(
    `memory: ${memCache.size} entries: heap +${((h1 - h0) / 1048576).toFixed(2)} MiB = ${perEntry.toFixed(0)} B/entry ` +
      `(wire ${(wire / N).toFixed(0)} B/entry; the byte bound counts ${(memCache.bytes / memCache.size).toFixed(0)} B/entry, ` +
      `${(memCache.bytes / 1048576).toFixed(2)} MiB in all)`,
  );
  console.log(`memory: after one hit on every entry 2 s later: +${((h3 - h2) / N).toFixed(0)} B/entry, ${(perEntry + (h3 - h2) / N).toFixed(0)} B/entry in all`);
  memCache.clear();
  // The byte bound's estimate (costOf, cache-limits.ts) against the heap, by answer size.
  const fit: string[] = [];
  for (const [round, n] of [1, 1, 2, 5, 10, 30].entries()) {
    const c = new AnswerCache({ clock, maxEntries: 3000, maxBytes: 1 << 30 });
    const g0 = heap();
    for (let i = 0; i < 3000; i++) {
      const name = `n${i}.fit.example.net`;
      const q = parsed(queryBytes(name, 1));
      const answers = Array.from({ length: n }, (_, j) => ({ type: 'A' as const, name, ttl: 300, data: `10.${j}.${(i >>> 8) & 255}.${i & 255}` }));
      const b = dnsPacket.encode({ type: 'response', id: 1, flags: 0x8180, questions: [{ type: 'A', name, class: 'IN' }], answers });
      c.insert(q, 'default', forwarded(q, b));
    }
    const used = (heap() - g0) / 3000;
    // round 0 warms up (code and shapes made once)
    if (round > 0) fit.push(`${n} A ${used.toFixed(0)} B, counted ${(c.bytes / 3000).toFixed(0)} (${((100 * c.bytes) / 3000 / used - 100).toFixed(0)}%)`);
  }
  console.log(`memory: heap per entry against what the byte bound counts: ${fit.join('; ')}`);
}

// 2. Lookups and inserts at the default size.
const M = PARTS.has('ops') || PARTS.has('pipeline') ? N : 0;
const hot = items('hot', M);
const cold = items('cold', M);
const spare = items('spare', M);
const order = Array.from({ length: N }, (_, i) => i).sort(() => Math.random() - 0.5);
const cache = new AnswerCache({ clock: realClock });
for (const it of hot) cache.insert(it.q, 'default', it.f);

function hits(): Stamp {
  const t = stamp();
  let n = 0;
  for (let r = 0; r < 20; r++) for (const i of order) if (cache.lookup(hot[i]!.q, 'default')) n++;
  if (n !== 20 * N) throw new Error(`bench: ${n} hits of ${20 * N}`);
  return since(t, 20 * N);
}
/** The same over 100 names (popular names: their entries stay in the CPU caches). */
const hotOrder = order.slice(0, 100);
function hitsHot(): Stamp {
  const t = stamp();
  for (let r = 0; r < 2000; r++) for (const i of hotOrder) cache.lookup(hot[i]!.q, 'default');
  return since(t, 2000 * 100);
}
function misses(): Stamp {
  const t = stamp();
  for (let r = 0; r < 20; r++) for (const i of order) cache.lookup(cold[i]!.q, 'default');
  return since(t, 20 * N);
}
function insertsFree(): Stamp {
  const c = new AnswerCache({ clock: realClock, maxEntries: 2 * N, maxBytes: 1 << 30 });
  const t = stamp();
  for (const it of spare) c.insert(it.q, 'default', it.f);
  return since(t, N);
}
let flip = false;
/** Into the full cache: every insert evicts one (hot and spare take turns filling it). */
function insertsEvicting(): Stamp {
  const set = (flip = !flip) ? spare : hot;
  const t = stamp();
  for (const it of set) cache.insert(it.q, 'default', it.f);
  return since(t, N);
}
// Refill with hot for the hit round after an evicting round.
function refill(): void {
  if (flip) insertsEvicting();
}

const cases: Array<[string, () => Stamp]> = [
  ['lookup, hit, 10k names at random', hits],
  ['lookup, hit, 100 popular names', hitsHot],
  ['lookup, miss', misses],
  ['insert, free room', insertsFree],
  ['insert, full: evicts one (SIEVE)', insertsEvicting],
];
if (PARTS.has('ops')) {
  for (let i = 0; i < 2; i++) for (const [, f] of cases) (f(), refill());
  const samples = cases.map(() => [] as Stamp[]);
  for (let r = 0; r < ROUNDS; r++)
    cases.forEach(([, f], i) => {
      samples[i]!.push(f());
      refill();
    });
  console.log(`\nper operation at ${N} entries, median of ${ROUNDS} rounds:`);
  cases.forEach(([label], i) => console.log(`  ${label.padEnd(36)} ${fmt(samples[i]!)}`));
  console.log(`  evictions so far: ${cache.counters.evictions.size} size, ${cache.counters.evictions.expired} expired`);
}

// 3. Through the pipeline.
const HUB: ChannelSpec = { name: 'hub', id: 1, mark: 0x5e510001, protocol: 'ipsec', kind: 'tunnel', gateway: '192.0.2.1', identity: 'hub', esp: 'aes256gcm16' };
class AllPolicy implements PolicyApi {
  constructor(private readonly protect: boolean) {}
  decide(): Decision {
    return { table: 'default', group: 0, rule: null, channel: this.protect ? HUB : null, upstream: null };
  }
  preDecide(): Decision {
    return { table: 'default', group: 0, rule: null, channel: null, upstream: null };
  }
}
const byName = new Map(hot.map((it) => [it.q.qname, it.f.bytes]));
/** The forwarder without sockets: the answer is read (scanAnswer) as the forwarder reads it. */
const upstreamDouble = { forward: (q: ParsedQuery) => Promise.resolve(forwarded(q, byName.get(q.qname)!)) };
function pipeline(withCache: boolean, protect: boolean): Pipeline {
  const registry = new Registry({ datapath: new NoneDatapath(), clock: realClock, log: silentLogger, metrics: new Metrics(), minHoldMs: 60_000, idleMs: 300_000, channels: [HUB] });
  return new Pipeline({
    policy: new AllPolicy(protect),
    registry,
    forwarder: withCache ? new CachingForwarder(upstreamDouble, cache) : upstreamDouble,
    upstreamNames: ['default'],
    counters: newProxyCounters(),
    log: silentLogger,
    canary: 'nxdomain',
  });
}
const wires = hot.map((_, i) => queryBytes(nameOf('hot', i).name, nameOf('hot', i).type, i & 0xffff));
const client: ClientInfo = { address: '192.168.1.10', port: 40000, transport: 'udp' };
async function through(p: Pipeline): Promise<Stamp> {
  const t = stamp();
  for (let r = 0; r < 4; r++) {
    for (let b = 0; b < N; b += 100) {
      const batch: Array<Uint8Array | null | Promise<Uint8Array | null>> = [];
      for (let i = b; i < b + 100; i++) batch.push(p.handle(wires[order[i]!]!, client));
      await Promise.all(batch);
    }
  }
  return since(t, 4 * N);
}
for (const it of hot) cache.insert(it.q, 'default', it.f);
const pcases: Array<[string, Pipeline]> = [
  ['no cache, upstream double, unprotected', pipeline(false, false)],
  ['cache hit, unprotected', pipeline(true, false)],
  ['no cache, upstream double, protected', pipeline(false, true)],
  ['cache hit, protected (registry, none)', pipeline(true, true)],
];
if (PARTS.has('pipeline')) {
  for (const [, p] of pcases) await through(p);
  const psamples = pcases.map(() => [] as Stamp[]);
  for (let r = 0; r < ROUNDS; r++) for (let i = 0; i < pcases.length; i++) psamples[i]!.push(await through(pcases[i]![1]));
  console.log(`\npipeline.handle per query (parse, decide, register, relay; no sockets), median of ${ROUNDS} rounds:`);
  pcases.forEach(([label], i) => console.log(`  ${label.padEnd(40)} ${fmt(psamples[i]!)}`));
  console.log(`  cache: ${cache.counters.hits} hits, ${cache.counters.misses} misses`);
}

// 4. SIEVE against LRU: hit ratio at the default size on Zipf traces over 1M names.
interface KeyNode extends SieveNode {
  key: number;
}
function zipfTrace(alpha: number, names: number, length: number): Int32Array {
  const cdf = new Float64Array(names);
  let sum = 0;
  for (let i = 0; i < names; i++) cdf[i] = sum += 1 / Math.pow(i + 1, alpha);
  const out = new Int32Array(length);
  for (let j = 0; j < length; j++) {
    const u = Math.random() * sum;
    let lo = 0;
    let hi = names - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (cdf[mid]! < u) lo = mid + 1;
      else hi = mid;
    }
    // Ranks scattered over the key space, so no key order helps.
    out[j] = Math.imul(lo + 1, 0x9e3779b1);
  }
  return out;
}
function sieveRatio(trace: Int32Array, size: number): number {
  const s = new Sieve<KeyNode>();
  const m = new Map<number, KeyNode>();
  let hit = 0;
  for (const k of trace) {
    const n = m.get(k);
    if (n) {
      n.visited = true;
      hit++;
      continue;
    }
    if (m.size >= size) {
      const v = s.victim(() => false)!;
      s.remove(v);
      m.delete(v.key);
    }
    const node: KeyNode = { key: k, newer: null, older: null, visited: false };
    s.insert(node);
    m.set(k, node);
  }
  return hit / trace.length;
}
function lruRatio(trace: Int32Array, size: number): number {
  const m = new Map<number, true>();
  let hit = 0;
  for (const k of trace) {
    if (m.delete(k)) {
      m.set(k, true);
      hit++;
      continue;
    }
    if (m.size >= size) m.delete(m.keys().next().value!);
    m.set(k, true);
  }
  return hit / trace.length;
}
if (PARTS.has('ratio')) {
  console.log(`\nhit ratio at ${N} entries, Zipf over 1M names, 3M queries:`);
  for (const alpha of [0.7, 0.9, 1.1]) {
    const trace = zipfTrace(alpha, 1_000_000, 3_000_000);
    console.log(`  alpha ${alpha}: SIEVE ${(100 * sieveRatio(trace, N)).toFixed(2)}%  LRU ${(100 * lruRatio(trace, N)).toFixed(2)}%`);
  }
}
console.log(`\nmachine: load average ${(await Bun.file('/proc/loadavg').text()).split(' ').slice(0, 3).join(' ')} on ${navigator.hardwareConcurrency} CPUs`);
