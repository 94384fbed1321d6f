import { describe, expect, test } from 'bun:test';
import { Metrics } from '../../src/ops/metrics.ts';
import { newProxyCounters, observeUpstream, UPSTREAM_BUCKETS, exportProxyCounters } from '../../src/proxy/proxy-counters.ts';

describe('ops/metrics histogramFrom', () => {
  test('exposes cumulative buckets, sum and count when the counts are kept outside', () => {
    const m = new Metrics();
    const state = { counts: [1, 2, 0], sum: 0.7, count: 4 };
    m.histogramFrom('dnsseal_test_query_seconds', 'test', [0.1, 0.2, 0.5], () => state);
    const text = m.expose();
    expect(text).toContain('dnsseal_test_query_seconds_bucket{le="0.1"} 1');
    expect(text).toContain('dnsseal_test_query_seconds_bucket{le="0.2"} 3');
    expect(text).toContain('dnsseal_test_query_seconds_bucket{le="0.5"} 3');
    expect(text).toContain('dnsseal_test_query_seconds_bucket{le="+Inf"} 4');
    expect(text).toContain('dnsseal_test_query_seconds_sum 0.7');
    expect(text).toContain('dnsseal_test_query_seconds_count 4');
  });

  test('puts each upstream latency in its bucket when the proxy observes it', () => {
    const c = newProxyCounters();
    observeUpstream(c, 0.0001); // first bucket
    observeUpstream(c, 0.003); // ≤ 0.005
    observeUpstream(c, 99); // above every bound: only +Inf
    expect(c.upstreamSeconds.count).toBe(3);
    expect(c.upstreamSeconds.counts[0]).toBe(1);
    expect(c.upstreamSeconds.counts[UPSTREAM_BUCKETS.indexOf(0.005)]).toBe(1);
    expect(c.upstreamSeconds.counts.reduce((a, b) => a + b, 0)).toBe(2);
    const m = new Metrics();
    exportProxyCounters(c, m);
    const text = m.expose();
    expect(text).toContain('dnsseal_upstream_query_seconds_bucket{le="0.0005"} 1');
    expect(text).toContain('dnsseal_upstream_query_seconds_bucket{le="2.5"} 2');
    expect(text).toContain('dnsseal_upstream_query_seconds_bucket{le="+Inf"} 3');
  });
});
