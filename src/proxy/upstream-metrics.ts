/**
 * Upstream server health for Prometheus and `status`. Labels: `upstream` (a configured name)
 * and `server` (the server's index in that name's list) — both bounded by the config; the
 * address itself is only in `status`, never in a label.
 *
 *   dnsseal_upstream_server_up{upstream,server}                  1 up, 0 skipped (down)
 *   dnsseal_upstream_server_latency_seconds{upstream,server}     answer latency, EWMA
 *   dnsseal_upstream_server_answers_total{upstream,server}
 *   dnsseal_upstream_server_failures_total{upstream,server,reason}
 *   dnsseal_upstream_failovers_total{upstream}                   queries moved to the next server
 *
 * `sets` is read at each scrape, so a reload that replaces the sets is followed.
 */
import type { Labels, Metrics } from '../ops/metrics.ts';
import type { ServerHealth } from './upstream-health.ts';
import type { UpstreamSet } from './upstream-set.ts';

export function exportUpstreamHealth(sets: () => Iterable<UpstreamSet>, metrics: Metrics): void {
  const up = metrics.gauge('dnsseal_upstream_server_up', 'Upstream servers: 1 up, 0 skipped after a failure until a probe answers');
  const latency = metrics.gauge('dnsseal_upstream_server_latency_seconds', 'Upstream server answer latency, exponentially weighted average');
  const seen = new Set<string>();
  metrics.onCollect(() => {
    const now = new Set<string>();
    for (const set of sets()) {
      for (const h of set.healthOf()) {
        const labels = { upstream: set.name, server: String(h.index) };
        const key = JSON.stringify(labels);
        now.add(key);
        up.set(h.state === 'up' ? 1 : 0, labels);
        if (h.latencyMs !== null) latency.set(h.latencyMs / 1000, labels);
      }
    }
    // A server removed by a reload reads 0 rather than its last state.
    for (const key of seen) if (!now.has(key)) up.set(0, JSON.parse(key) as Labels);
    for (const key of now) seen.add(key);
  });
  metrics.counterFrom('dnsseal_upstream_server_answers_total', 'Answers per upstream server (probes included)', () => rows(sets, (h, l) => [[l, h.answers]]));
  metrics.counterFrom('dnsseal_upstream_server_failures_total', 'Failed exchanges per upstream server by reason (probes included)', () =>
    rows(sets, (h, l) => Object.entries(h.failures).map(([reason, n]) => [{ ...l, reason }, n ?? 0])),
  );
  metrics.counterFrom('dnsseal_upstream_failovers_total', 'Queries moved on to the next server of their upstream after a failure', () =>
    [...sets()].map((s): [Labels, number] => [{ upstream: s.name }, s.failoverCount]),
  );
}

function rows(sets: () => Iterable<UpstreamSet>, f: (h: ServerHealth, labels: Labels) => Array<[Labels, number]>): Array<[Labels, number]> {
  const out: Array<[Labels, number]> = [];
  for (const set of sets()) for (const h of set.healthOf()) out.push(...f(h, { upstream: set.name, server: String(h.index) }));
  return out;
}

/** The `upstreams` field of `status`: per name, each server's state, times in ISO form. */
export function upstreamStatus(sets: Iterable<UpstreamSet>): Record<string, Array<Record<string, unknown>>> {
  const out: Record<string, Array<Record<string, unknown>>> = {};
  for (const set of sets) {
    out[set.name] = set.healthOf().map((h) => ({
      server: h.server,
      state: h.state,
      since: new Date(h.sinceMs).toISOString(),
      ...(h.lastError !== null ? { lastError: h.lastError } : {}),
      ...(h.errno !== null ? { errno: h.errno } : {}),
      ...(h.latencyMs !== null ? { latencyMs: h.latencyMs } : {}),
      answers: h.answers,
      failures: h.failures,
    }));
  }
  return out;
}
