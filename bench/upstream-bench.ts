/**
 * `make bench-upstreams`: the upstream transports against one unbound on loopback (answers from
 * a local-zone, so unbound does no forwarding), interleaved: plain UDP, TCP (a connection per
 * query, as the TC retry does), DNS over TLS (one kept, pipelined connection) and DNS over
 * HTTPS (HTTP/2, kept connections); and UDP behind an `UpstreamSet` of one server (`udp-set`:
 * what the set's bookkeeping costs). Prints per transport, medians over the passes:
 *
 * - latency of one query at a time (p50, p99, µs) on a warm connection;
 * - the first query of a fresh upstream (TCP + TLS handshake included), µs;
 * - queries/s with `BENCH_UP_CONCURRENCY` queries kept in flight (one DoT connection), and
 *   the client's CPU time per query (process.cpuUsage: every thread, fetch's included).
 *
 * unbound is pinned to CPU 0; run the bench itself on CPU 1 (the make target does). Env:
 * BENCH_UP_REPS (3), BENCH_UP_SECONDS (3), BENCH_UP_SEQ (2000), BENCH_UP_CONCURRENCY (64),
 * BENCH_UP_KINDS (comma list, default all).
 */
import dnsPacket from 'dns-packet';
import { parseQuery } from '../src/dns/query.ts';
import { newProxyCounters } from '../src/proxy/proxy-counters.ts';
import { DohUpstream } from '../src/proxy/upstream-doh.ts';
import { DotUpstream } from '../src/proxy/upstream-dot.ts';
import { TcpUpstream } from '../src/proxy/upstream-tcp.ts';
import { UdpUpstream } from '../src/proxy/upstream-udp.ts';
import type { Upstream } from '../src/proxy/upstream.ts';
import { UpstreamSet } from '../src/proxy/upstream-set.ts';
import { realClock } from '../src/util/clock.ts';
import { silentLogger } from '../src/util/log.ts';
import { startUnbound } from '../test/integration/unbound-server.ts';
import { makeCerts } from '../test/proxy/tls-certs.ts';

const REPS = Number(process.env.BENCH_UP_REPS ?? 3);
const SECONDS = Number(process.env.BENCH_UP_SECONDS ?? 3);
const SEQ = Number(process.env.BENCH_UP_SEQ ?? 2000);
const CONC = Number(process.env.BENCH_UP_CONCURRENCY ?? 64);
const ALL = ['udp', 'udp-set', 'tcp', 'tls', 'https'] as const;
type Kind = (typeof ALL)[number];
const KINDS = (process.env.BENCH_UP_KINDS?.split(',') ?? [...ALL]).filter((k): k is Kind => (ALL as readonly string[]).includes(k));

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))] ?? NaN;

const certs = makeCerts(['dns.test']);
const unbound = await startUnbound({ certPath: certs.certPath, keyPath: certs.keyPath, cpu: 0 });
const counters = newProxyCounters();
const query = (() => {
  const wire = dnsPacket.encode({ type: 'query', id: 1, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type: 'A', name: 'www.local.example' }] });
  const r = parseQuery(new Uint8Array(wire));
  if (r.kind !== 'ok') throw new Error('bench query does not parse');
  return r.query;
})();

async function open(kind: Kind): Promise<Upstream> {
  const common = { name: 'default', address: '127.0.0.1', timeoutMs: 3000, counters };
  switch (kind) {
    case 'udp':
      return UdpUpstream.open({ ...common, port: unbound.port, clock: realClock, log: silentLogger });
    case 'udp-set': {
      // The same UDP upstream behind an UpstreamSet of one server: what the set costs per query.
      const primary = await UdpUpstream.open({ ...common, port: unbound.port, clock: realClock, log: silentLogger });
      return new UpstreamSet({ name: 'default', servers: [{ label: 'udp', primary }], clock: realClock, log: silentLogger }).pair().udp;
    }
    case 'tcp':
      return new TcpUpstream({ ...common, port: unbound.port });
    case 'tls':
      return new DotUpstream({ ...common, port: unbound.tlsPort, serverName: 'dns.test', ca: certs.ca, clock: realClock, log: silentLogger, maxInFlight: Math.max(128, CONC) });
    case 'https':
      return new DohUpstream({ ...common, port: unbound.httpsPort, path: '/dns-query', serverName: 'dns.test', ca: certs.ca, log: silentLogger });
  }
}

interface Pass {
  p50: number;
  p99: number;
  cold: number;
  qps: number;
  cpuUs: number;
}

async function pass(kind: Kind): Promise<Pass> {
  // Cold: a fresh upstream's first query (handshakes included).
  const colds: number[] = [];
  for (let i = 0; i < 5; i++) {
    const up = await open(kind);
    const t0 = Bun.nanoseconds();
    await up.exchange(query);
    colds.push((Bun.nanoseconds() - t0) / 1000);
    up.close();
  }
  const up = await open(kind);
  await up.exchange(query);
  const lat: number[] = [];
  for (let i = 0; i < SEQ; i++) {
    const t0 = Bun.nanoseconds();
    await up.exchange(query);
    lat.push((Bun.nanoseconds() - t0) / 1000);
  }
  let done = 0;
  let failed = 0;
  const end = Bun.nanoseconds() + SECONDS * 1e9;
  const cpu0 = process.cpuUsage();
  const t0 = Bun.nanoseconds();
  const worker = async () => {
    while (Bun.nanoseconds() < end) {
      try {
        await up.exchange(query);
        done++;
      } catch {
        failed++;
      }
    }
  };
  await Promise.all(Array.from({ length: CONC }, worker));
  const secs = (Bun.nanoseconds() - t0) / 1e9;
  const cpu = process.cpuUsage(cpu0);
  up.close();
  if (failed > done / 100) console.log(`  ${kind}: ${failed} of ${done + failed} queries failed`);
  return { p50: pct(lat, 0.5), p99: pct(lat, 0.99), cold: median(colds), qps: done / secs, cpuUs: (cpu.user + cpu.system) / Math.max(1, done) };
}

const results = new Map<Kind, Pass[]>(KINDS.map((k) => [k, []]));
try {
  for (let r = 0; r < REPS; r++) for (const k of KINDS) results.get(k)!.push(await pass(k));
} finally {
  await unbound.stop();
  certs.cleanup();
}

console.log(`upstream transports against unbound on loopback; ${REPS} interleaved passes, medians; ${CONC} in flight for qps`);
console.log('transport   p50 µs   p99 µs   cold µs      qps   client CPU µs/query');
const m = (k: Kind, f: keyof Pass) => median(results.get(k)!.map((p) => p[f]));
for (const k of KINDS) {
  console.log(
    `${k.padEnd(9)} ${m(k, 'p50').toFixed(0).padStart(8)} ${m(k, 'p99').toFixed(0).padStart(8)} ${m(k, 'cold').toFixed(0).padStart(9)} ${m(k, 'qps').toFixed(0).padStart(8)} ${m(k, 'cpuUs').toFixed(1).padStart(10)}`,
  );
}
for (const k of (['tls', 'https'] as const).filter((x) => KINDS.includes(x) && KINDS.includes('udp'))) {
  console.log(`${k} vs udp: p50 ×${(m(k, 'p50') / m('udp', 'p50')).toFixed(2)}, qps ×${(m(k, 'qps') / m('udp', 'qps')).toFixed(2)}`);
}
