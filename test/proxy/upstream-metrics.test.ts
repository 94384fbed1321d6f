import { afterEach, describe, expect, test } from 'bun:test';
import { Metrics } from '../../src/ops/metrics.ts';
import { exportUpstreamHealth, upstreamStatus } from '../../src/proxy/upstream-metrics.ts';
import { UpstreamSet } from '../../src/proxy/upstream-set.ts';
import { UpstreamError } from '../../src/proxy/upstream.ts';
import { FakeClock, realClock } from '../../src/util/clock.ts';
import { silentLogger } from '../../src/util/log.ts';
import type { Script } from './fake-upstream.ts';
import { MemoryUpstream } from './memory-upstream.ts';
import { q } from './upstream-contract.ts';

const answer: Script = (query, t) => t.answerFor(query);
const refused: Script = () => {
  throw new UpstreamError('refused', 'port unreachable (ECONNREFUSED)', { errno: 'ECONNREFUSED' });
};

let sets: UpstreamSet[] = [];
afterEach(() => {
  for (const s of sets) s.close();
  sets = [];
});

function set(name: string, scripts: Script[], clock = realClock): UpstreamSet {
  const s = new UpstreamSet({
    name,
    servers: scripts.map((sc, i) => ({ label: `192.0.2.${i + 1}:53`, primary: new MemoryUpstream(`192.0.2.${i + 1}:53`, sc) })),
    clock,
    log: silentLogger,
    probeMinMs: 60_000,
  });
  sets.push(s);
  return s;
}

describe('proxy/upstream-metrics', () => {
  test('exposes state, answers, failures by reason and failovers labelled by upstream and server index', async () => {
    const def = set('default', [refused, answer]);
    const lan = set('lan', [answer]);
    await def.exchange(q('a.test'));
    await def.exchange(q('b.test'));
    await lan.exchange(q('router.lan'));
    const m = new Metrics();
    exportUpstreamHealth(() => sets, m);
    const text = m.expose();
    expect(text).toContain('dnsseal_upstream_server_up{server="0",upstream="default"} 0');
    expect(text).toContain('dnsseal_upstream_server_up{server="1",upstream="default"} 1');
    expect(text).toContain('dnsseal_upstream_server_up{server="0",upstream="lan"} 1');
    expect(text).toContain('dnsseal_upstream_server_answers_total{server="1",upstream="default"} 2');
    expect(text).toContain('dnsseal_upstream_server_failures_total{reason="refused",server="0",upstream="default"} 1');
    expect(text).toContain('dnsseal_upstream_failovers_total{upstream="default"} 1');
    expect(text).toMatch(/dnsseal_upstream_server_latency_seconds\{server="1",upstream="default"\} [0-9.e-]+/);
    // No address in any label.
    expect(text).not.toMatch(/\{[^}]*192\.0\.2/);
  });

  test('reads 0 for a server a reload removed when the sets are replaced', async () => {
    let current = [set('default', [answer, answer])];
    const m = new Metrics();
    exportUpstreamHealth(() => current, m);
    expect(m.expose()).toContain('dnsseal_upstream_server_up{server="1",upstream="default"} 1');
    current = [set('default', [answer])];
    expect(m.expose()).toContain('dnsseal_upstream_server_up{server="1",upstream="default"} 0');
  });

  test('reports each server with its state, since, errno and last error in status', async () => {
    const clock = new FakeClock(Date.parse('2026-01-02T03:04:05Z'));
    const def = set('default', [refused, answer], clock);
    await def.exchange(q('a.test'));
    const st = upstreamStatus(sets);
    expect(st.default![0]).toMatchObject({
      server: '192.0.2.1:53',
      state: 'down',
      since: '2026-01-02T03:04:05.000Z',
      errno: 'ECONNREFUSED',
      lastError: 'upstream: port unreachable (ECONNREFUSED)',
      answers: 0,
      failures: { refused: 1 },
    });
    expect(st.default![1]).toMatchObject({ server: '192.0.2.2:53', state: 'up', answers: 1 });
    expect(typeof st.default![1]!.latencyMs).toBe('number');
  });
});
