/**
 * bench-query-log: what the query log and allow_clients cost the pipeline per query (issue 12:
 * the query log off must cost ~nothing). The pipeline runs whole (receive → … → respond) with
 * an upstream double that answers at once and a registry that records nothing, so the figure
 * is the pipeline's own work per query, in on-CPU nanoseconds:
 *
 *   base       no query log, no access list (the pipeline as it was)
 *   log off    a query log that is off
 *   log on     a query log that is on, writing its lines nowhere (formatting included)
 *   acl        an access list (loopback and a LAN prefix) the sender passes
 *
 * Interleaved rounds; the median per variant and its difference to `base`. Prints figures,
 * asserts nothing.
 *
 *   node_modules/.bin/bun bench/query-log.ts
 */
import dnsPacket from 'dns-packet';
import { scanAnswer } from '../src/dns/answer-scan.ts';
import { parseQuery } from '../src/dns/query.ts';
import type { Forwarded } from '../src/proxy/forwarder.ts';
import type { ClientInfo } from '../src/proxy/handler.ts';
import { Pipeline, type PipelineDeps } from '../src/proxy/pipeline.ts';
import { newProxyCounters } from '../src/proxy/proxy-counters.ts';
import { ClientAcl } from '../src/proxy/client-acl.ts';
import { QueryLog } from '../src/proxy/query-log.ts';
import { createLogger, silentLogger } from '../src/util/log.ts';
import { since, stamp } from './cpu-clock.ts';

const QUERIES = 200_000;
const ROUNDS = 11;

const names = Array.from({ length: 64 }, (_, i) => `host${i}.example`);
const queries = names.map((name, i) => new Uint8Array(dnsPacket.encode({ type: 'query', id: i, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type: 'A', name }] })));
// one answer per name, scanned once: the double hands it out as an upstream would
const answers = new Map<string, Forwarded>(
  names.map((name, i) => {
    const bytes = new Uint8Array(dnsPacket.encode({ type: 'response', id: i, flags: dnsPacket.RECURSION_DESIRED | dnsPacket.RECURSION_AVAILABLE, questions: [{ type: 'A', name }], answers: [{ type: 'A', name, ttl: 60, data: '198.51.100.7' }] }));
    const q = parseQuery(queries[i]!);
    if (q.kind !== 'ok') throw new Error('bench: query did not parse');
    return [name, { bytes, scan: scanAnswer(bytes, q.query.question.length, name), via: 'udp' as const }];
  }),
);
const miss = { table: 'default', group: 0, rule: null, channel: null, upstream: null };

function pipeline(extra: Partial<PipelineDeps>): Pipeline {
  return new Pipeline({
    policy: { decide: () => miss, preDecide: () => miss },
    registry: { register: async () => {}, list: () => [] },
    forwarder: { forward: async (q) => answers.get(q.qname)! },
    upstreamNames: ['default'],
    counters: newProxyCounters(),
    log: silentLogger,
    canary: 'nxdomain',
    ...extra,
  });
}

const nowhere = createLogger({ write: () => {} });
const variants: Record<string, Pipeline> = {
  base: pipeline({}),
  'log off': pipeline({ queryLog: new QueryLog(nowhere, false) }),
  'log on': pipeline({ queryLog: new QueryLog(nowhere, true) }),
  acl: pipeline({ acl: new ClientAcl(['127.0.0.0/8', '::1/128', '10.1.0.0/24']) }),
};
const client: ClientInfo = { address: '127.0.0.1', port: 5353, transport: 'udp' };

async function round(p: Pipeline): Promise<number> {
  const t = stamp();
  for (let i = 0; i < QUERIES; i++) await p.handle(queries[i & 63]!, client);
  return since(t, QUERIES).cpu;
}

for (const p of Object.values(variants)) await round(p); // warm-up
const samples: Record<string, number[]> = Object.fromEntries(Object.keys(variants).map((k) => [k, []]));
for (let r = 0; r < ROUNDS; r++) for (const [k, p] of Object.entries(variants)) samples[k]!.push(await round(p));
const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
const base = med(samples.base!);
for (const [k, xs] of Object.entries(samples)) {
  const m = med(xs);
  console.log(`${k.padEnd(8)} ${m.toFixed(0).padStart(6)} ns on-CPU per query${k === 'base' ? '' : ` (${m - base >= 0 ? '+' : ''}${(m - base).toFixed(0)} ns)`}, median of ${ROUNDS} rounds of ${QUERIES}`);
}
console.log(`machine: load average ${(await Bun.file('/proc/loadavg').text()).split(' ').slice(0, 3).join(' ')} on ${navigator.hardwareConcurrency} CPUs`);
