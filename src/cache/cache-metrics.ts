/**
 * The cache's metrics, declared in one place: hot-path numbers (`CacheCounters`) read at
 * scrape time (`Metrics.counterFrom`), entries and bytes as gauges. Labels are bounded:
 * `reason` takes the fixed sets of `EvictionReason` and `NotCachedReason`.
 */
import type { Labels, Metrics } from '../ops/metrics.ts';
import type { AnswerCache } from './answer-cache.ts';
import { NOT_CACHED_REASONS, type NotCachedReason } from './answer-ttl.ts';

export type EvictionReason = 'size' | 'expired';

/** Hot-path counters as plain numbers; `exportCacheMetrics` publishes them. */
export interface CacheCounters {
  hits: number;
  misses: number;
  stale: number;
  inserts: number;
  prefetches: number;
  evictions: Record<EvictionReason, number>;
  notCached: Record<NotCachedReason, number>;
}

export function newCacheCounters(): CacheCounters {
  return {
    hits: 0,
    misses: 0,
    stale: 0,
    inserts: 0,
    prefetches: 0,
    evictions: { size: 0, expired: 0 },
    notCached: Object.fromEntries(NOT_CACHED_REASONS.map((r) => [r, 0])) as Record<NotCachedReason, number>,
  };
}

export function exportCacheMetrics(cache: AnswerCache, metrics: Metrics): void {
  const c = cache.counters;
  const one = (v: () => number) => (): Array<[Labels | undefined, number]> => [[undefined, v()]];
  const byReason = (r: Record<string, number>): Array<[Labels, number]> => Object.entries(r).map(([reason, v]) => [{ reason }, v]);
  metrics.counterFrom('dnsseal_cache_hits_total', 'Queries answered from a live cache entry (each registered as a fresh answer is)', one(() => c.hits));
  metrics.counterFrom('dnsseal_cache_misses_total', 'Queries the cache had no live entry for', one(() => c.misses));
  metrics.counterFrom('dnsseal_cache_stale_answers_total', 'Expired entries served because the upstream failed (serve-stale, RFC 8767)', one(() => c.stale));
  metrics.counterFrom('dnsseal_cache_inserts_total', 'Upstream answers kept', one(() => c.inserts));
  metrics.counterFrom('dnsseal_cache_prefetches_total', 'Entries asked again from the upstream before they ran out (prefetch)', one(() => c.prefetches));
  metrics.counterFrom('dnsseal_cache_evictions_total', 'Entries evicted, by reason (size: a bound was reached; expired: ran out)', () => byReason(c.evictions));
  metrics.counterFrom('dnsseal_cache_not_cached_total', 'Upstream answers not kept, by reason', () => byReason(c.notCached));
  const entries = metrics.gauge('dnsseal_cache_entries', 'Answers in the cache');
  const bytes = metrics.gauge('dnsseal_cache_bytes', 'Bytes counted against the cache byte bound (estimated heap use of the entries)');
  metrics.onCollect(() => {
    entries.set(cache.size);
    bytes.set(cache.bytes);
  });
}
