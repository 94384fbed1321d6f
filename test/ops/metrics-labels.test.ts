import { describe, expect, test } from 'bun:test';
import { Metrics } from '../../src/ops/metrics.ts';

describe('ops/metrics labels', () => {
  test('a frozen labels object used over and over counts under its own labels, beside others', () => {
    const m = new Metrics();
    const c = m.counter('dnsseal_test_total', 'test');
    const OK = Object.freeze({ outcome: 'ok' });
    c.inc(OK);
    c.inc({ outcome: 'map_full' });
    c.inc(OK);
    c.inc(OK, 3);
    expect(c.get(OK)).toBe(5);
    expect(c.get({ outcome: 'map_full' })).toBe(1);
    expect(m.expose()).toContain('dnsseal_test_total{outcome="ok"} 5');
  });

  test('an object changed between two uses counts under its labels of the moment', () => {
    const m = new Metrics();
    const c = m.counter('dnsseal_test_total', 'test');
    const labels: Record<string, string> = { outcome: 'ok' };
    c.inc(labels);
    labels.outcome = 'conflict';
    c.inc(labels);
    expect(c.get({ outcome: 'ok' })).toBe(1);
    expect(c.get({ outcome: 'conflict' })).toBe(1);
  });
});
