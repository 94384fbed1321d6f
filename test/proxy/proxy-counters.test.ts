import { describe, expect, test } from 'bun:test';
import { Metrics } from '../../src/ops/metrics.ts';
import { splitHostPort } from '../../src/proxy/handler.ts';
import { exportProxyCounters, newProxyCounters } from '../../src/proxy/proxy-counters.ts';

describe('proxy/proxy-counters', () => {
  test('publishes hot-path counters with bounded labels when scraped twice', () => {
    const c = newProxyCounters();
    const m = new Metrics();
    exportProxyCounters(c, m);
    c.queries.answer += 3;
    c.upstreamIgnored.question++;
    expect(m.expose()).toContain('dnsseal_proxy_queries_total{outcome="answer"} 3');
    c.queries.answer += 2;
    const text = m.expose();
    expect(text).toContain('dnsseal_proxy_queries_total{outcome="answer"} 5');
    expect(text).toContain('dnsseal_upstream_ignored_answers_total{reason="question"} 1');
    expect(text).not.toMatch(/\.test|127\.0\.0\.1/); // never a name or an address
  });
});

describe('proxy/handler', () => {
  test.each([
    ['127.0.0.1:5353', { hostname: '127.0.0.1', port: 5353 }],
    ['[::1]:53', { hostname: '::1', port: 53 }],
    ['[::1]', { hostname: '::1', port: 53 }],
    ['127.0.0.53', { hostname: '127.0.0.53', port: 53 }],
    ['::1', { hostname: '::1', port: 53 }],
  ])('splits %s when given as a listen address', (spec, want) => {
    expect(splitHostPort(spec)).toEqual(want);
  });
});
