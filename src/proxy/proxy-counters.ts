/**
 * Hot-path counters as plain numbers (a labelled `Counter.inc` sorts label keys on every
 * call); `exportProxyCounters` publishes them as Prometheus counters at scrape time.
 */
import type { Metrics } from '../ops/metrics.ts';
import type { ClientSubnetResult } from './trusted-forwarders.ts';

export type QueryOutcome = 'answer' | 'protected' | 'servfail' | 'formerr' | 'error' | 'canary' | 'drop' | 'refused';

export interface ProxyCounters {
  queries: Record<QueryOutcome, number>;
  servfail: Record<'timeout' | 'upstream' | 'malformed_answer' | 'register' | 'unverified' | 'intercept', number>;
  upstreamIgnored: Record<'source' | 'id' | 'question' | 'malformed' | 'tsig', number>;
  upstreamSendFailed: number;
  upstreamTimeouts: number;
  upstreamTcpRetries: number;
  upstreamShared: number;
  /** How each query's client was classified when trusted forwarders are configured (issue 11 item 8). */
  clientSubnet: Record<ClientSubnetResult, number>;
  /** Records removed from protected answers because they carried unregistered addresses (issue 11 item 10). */
  strayRecordsRemoved: number;
  clientSendFailed: number;
  tcpConnections: number;
  tcpClosed: Record<'idle' | 'garbage' | 'limit', number>;
  /** Upstream answer latency (forward step, successful exchanges), fixed buckets. */
  upstreamSeconds: LatencyBuckets;
}

/** Seconds; upper bounds of the upstream latency buckets (the last is +Inf, implicit). */
export const UPSTREAM_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

export interface LatencyBuckets {
  /** counts[i]: observations ≤ UPSTREAM_BUCKETS[i] and > the previous bound (not cumulative). */
  counts: number[];
  sum: number;
  count: number;
}

/** One observation; a linear scan of 12 bounds, no allocation (hot path). */
export function observeUpstream(c: ProxyCounters, seconds: number): void {
  const h = c.upstreamSeconds;
  let i = 0;
  while (i < UPSTREAM_BUCKETS.length && seconds > UPSTREAM_BUCKETS[i]!) i++;
  if (i < UPSTREAM_BUCKETS.length) h.counts[i]!++;
  h.sum += seconds;
  h.count++;
}

export function newProxyCounters(): ProxyCounters {
  return {
    queries: { answer: 0, protected: 0, servfail: 0, formerr: 0, error: 0, canary: 0, drop: 0, refused: 0 },
    servfail: { timeout: 0, upstream: 0, malformed_answer: 0, register: 0, unverified: 0, intercept: 0 },
    upstreamIgnored: { source: 0, id: 0, question: 0, malformed: 0, tsig: 0 },
    upstreamSendFailed: 0,
    upstreamTimeouts: 0,
    upstreamTcpRetries: 0,
    upstreamShared: 0,
    clientSubnet: { used: 0, absent: 0, partial: 0, malformed: 0, untrusted: 0 },
    strayRecordsRemoved: 0,
    clientSendFailed: 0,
    tcpConnections: 0,
    tcpClosed: { idle: 0, garbage: 0, limit: 0 },
    upstreamSeconds: { counts: UPSTREAM_BUCKETS.map(() => 0), sum: 0, count: 0 },
  };
}

/** Registers counters that mirror `c` (adding only the delta since the last scrape). */
export function exportProxyCounters(c: ProxyCounters, metrics: Metrics): void {
  const families: Array<[string, string, string | null, () => Record<string, number>]> = [
    ['dnsseal_proxy_queries_total', 'Client queries by outcome', 'outcome', () => c.queries],
    ['dnsseal_proxy_servfail_total', 'SERVFAIL answers by reason', 'reason', () => c.servfail],
    ['dnsseal_upstream_ignored_answers_total', 'Upstream datagrams ignored (possible forgeries) by reason', 'reason', () => c.upstreamIgnored],
    ['dnsseal_proxy_tcp_closed_total', 'TCP client connections closed by reason', 'reason', () => c.tcpClosed],
    [
      'dnsseal_proxy_client_subnet_total',
      'Queries by how EDNS Client Subnet classified them (with trusted forwarders): used, absent, partial (not /32 or /128), malformed, untrusted (ignored)',
      'result',
      () => c.clientSubnet,
    ],
    ['dnsseal_upstream_send_failed_total', 'Upstream datagrams send() refused', null, () => ({ '': c.upstreamSendFailed })],
    ['dnsseal_upstream_timeouts_total', 'Upstream queries that timed out', null, () => ({ '': c.upstreamTimeouts })],
    ['dnsseal_upstream_tcp_retries_total', 'Truncated UDP answers retried over TCP', null, () => ({ '': c.upstreamTcpRetries })],
    ['dnsseal_upstream_shared_total', 'Client queries that joined an identical query in flight', null, () => ({ '': c.upstreamShared })],
    ['dnsseal_proxy_stray_records_removed_total', 'Records removed from protected answers: addresses off the CNAME chain or outside the answer section, never registered', null, () => ({ '': c.strayRecordsRemoved })],
    ['dnsseal_proxy_client_send_failed_total', 'Answers the client socket refused', null, () => ({ '': c.clientSendFailed })],
    ['dnsseal_proxy_tcp_connections_total', 'TCP client connections accepted', null, () => ({ '': c.tcpConnections })],
  ];
  metrics.histogramFrom('dnsseal_upstream_query_seconds', 'Upstream answer latency (successful exchanges)', UPSTREAM_BUCKETS, () => c.upstreamSeconds);
  for (const [name, help, label, read] of families) {
    const counter = metrics.counter(name, help);
    const last = new Map<string, number>();
    metrics.onCollect(() => {
      for (const [k, v] of Object.entries(read())) {
        const delta = v - (last.get(k) ?? 0);
        last.set(k, v);
        if (delta > 0) counter.inc(label ? { [label]: k } : undefined, delta);
      }
    });
  }
}
