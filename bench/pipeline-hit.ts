/**
 * The cache-hit path through the real pipeline, alone (issue 12 perf work): 2,000 names as
 * `make bench-dns`'s cached targets ask them (one A record each, one name in five protected and
 * registered in a real registry over the `none` data path), every query a hit. No sockets: what
 * is left is parse → lookup → decide → register → relay and the promise hops between them.
 * Prints ns per query (on-CPU and wall), median of ROUNDS; run it under `--cpu-prof-md` to see
 * where the time goes. PROTECT_ALL=1: every name protected.
 *   node_modules/.bin/bun bench/pipeline-hit.ts [rounds]
 */
import dnsPacket from 'dns-packet';
import { AnswerCache } from '../src/cache/answer-cache.ts';
import { CachingForwarder } from '../src/cache/caching-forwarder.ts';
import { NoneDatapath } from '../src/datapath/none.ts';
import { scanAnswer } from '../src/dns/answer-scan.ts';
import { parseQuery, type ParsedQuery } from '../src/dns/query.ts';
import { Metrics } from '../src/ops/metrics.ts';
import type { ChannelSpec, Decision } from '../src/policy/types.ts';
import type { ClientInfo } from '../src/proxy/handler.ts';
import { Pipeline, type PolicyApi } from '../src/proxy/pipeline.ts';
import { newProxyCounters } from '../src/proxy/proxy-counters.ts';
import { Registry } from '../src/registry/registry.ts';
import { realClock } from '../src/util/clock.ts';
import { silentLogger } from '../src/util/log.ts';
import { since, stamp, type Stamp } from './cpu-clock.ts';

const ROUNDS = Number(process.argv[2] ?? 7);
const NAMES = 2000;
const PER_ROUND = 200_000;
const HUB: ChannelSpec = { name: 'hub', id: 1, mark: 0x5e510001, protocol: 'ipsec', kind: 'tunnel', gateway: '192.0.2.1', identity: 'hub', esp: 'aes256gcm16' };
const MISS: Decision = { table: 'default', group: 0, rule: null, channel: null, upstream: null };
const HIT: Decision = { ...MISS, channel: HUB };
const ALL = process.env.PROTECT_ALL === '1';
const policy: PolicyApi = { decide: (_c, names) => (ALL || names[0]!.includes('.p.') ? HIT : MISS), preDecide: () => MISS };

const nameOf = (i: number) => (i % 5 === 0 ? `c${i}.p.wild.test` : `c${i}.wild.test`);
function queryBytes(name: string, id: number): Uint8Array {
  const parts: number[] = [id >> 8, id & 0xff, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 1];
  for (const l of name.split('.')) parts.push(l.length, ...Buffer.from(l));
  parts.push(0, 0, 1, 0, 1, 0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0);
  return Uint8Array.from(parts);
}
const ip4 = (i: number) => `10.0.${(i >>> 8) & 255}.${i & 255}`;
function answer(q: ParsedQuery, i: number) {
  const bytes = dnsPacket.encode({
    type: 'response', id: 0x1234, flags: dnsPacket.RECURSION_DESIRED | dnsPacket.RECURSION_AVAILABLE,
    questions: [{ type: 'A', name: nameOf(i), class: 'IN' }],
    answers: [{ type: 'A', name: nameOf(i), ttl: 3600, data: ip4(i) }],
    additionals: [{ type: 'OPT', name: '.', udpPayloadSize: 1232, extendedRcode: 0, ednsVersion: 0, flags: 0, options: [] } as unknown as dnsPacket.Answer],
  });
  return { bytes, scan: scanAnswer(bytes, q.question.length, q.qname), via: 'udp' as const };
}
const wires = Array.from({ length: NAMES }, (_, i) => queryBytes(nameOf(i), i));
const cache = new AnswerCache({ clock: realClock });
for (let i = 0; i < NAMES; i++) {
  const p = parseQuery(wires[i]!);
  if (p.kind !== 'ok') throw new Error('bench: bad query');
  cache.insert(p.query, 'default', answer(p.query, i));
}
const upstream = { forward: () => Promise.reject(new Error('bench: a miss')) };
const registry = new Registry({ datapath: new NoneDatapath(), clock: realClock, log: silentLogger, metrics: new Metrics(), minHoldMs: 60_000, idleMs: 300_000, channels: [HUB] });
const pipeline = new Pipeline({ policy, registry, forwarder: new CachingForwarder(upstream, cache), upstreamNames: ['default'], counters: newProxyCounters(), log: silentLogger, canary: 'nxdomain' });
const client: ClientInfo = { address: '127.0.0.1', port: 40000, transport: 'udp' };
const order = Array.from({ length: PER_ROUND }, (_, i) => (i * 7919) % NAMES);

async function round(): Promise<Stamp> {
  const t = stamp();
  let bytes = 0;
  for (let b = 0; b < PER_ROUND; b += 100) {
    const batch: Array<Uint8Array | null | Promise<Uint8Array | null>> = [];
    for (let i = b; i < b + 100; i++) batch.push(pipeline.handle(wires[order[i]!]!, client));
    for (const a of await Promise.all(batch)) bytes += a ? a.length : 0;
  }
  if (bytes === 0) throw new Error('bench: no answers');
  return since(t, PER_ROUND);
}
await round();
const s: Stamp[] = [];
for (let r = 0; r < ROUNDS; r++) s.push(await round());
const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)]!;
console.log(`pipeline cache hit (${NAMES} names, ${ALL ? 'all' : '1 in 5'} protected, none data path): ${med(s.map((x) => x.cpu)).toFixed(0)} ns on-CPU per query (wall ${med(s.map((x) => x.wall)).toFixed(0)}), median of ${ROUNDS}; hits ${cache.counters.hits}, misses ${cache.counters.misses}`);
console.log(`machine: load average ${(await Bun.file('/proc/loadavg').text()).split(' ').slice(0, 3).join(' ')}`);
