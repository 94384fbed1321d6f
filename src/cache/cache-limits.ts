/**
 * The cache's settings (`CacheLimits`, defaults in `CACHE_DEFAULTS`; constructor options of
 * `AnswerCache`, later config keys) and how an entry is counted against the byte bound.
 */
import type { AnswerScan } from '../dns/answer-scan.ts';

export interface CacheLimits {
  /** Most entries; 0 turns the cache off (config `cache_size`). */
  maxEntries: number;
  /** Most bytes, counted per entry as its heap use is estimated (`costOf`). */
  maxBytes: number;
  /** Cap of every TTL kept (seconds). */
  maxTtlS: number;
  /** Cap of a negative answer's TTL (seconds, RFC 2308 §5). */
  maxNegTtlS: number;
  /** Serve-stale: how long past expiry an entry may still answer a failed upstream; 0: off. */
  staleMaxS: number;
  /** TTL of every record of a stale answer (RFC 8767 §4 suggests 30). */
  staleTtlS: number;
  /** After a stale answer, how long the entry answers stale without asking the upstream. */
  staleRecheckS: number;
  /**
   * Prefetch: a hit in the last tenth of an entry's lifetime asks the upstream again in the
   * background (once per entry), so a name in use never drops out of the cache.
   */
  prefetch: boolean;
}

/**
 * Defaults: 10,000 entries and 10 MiB, which 10,000 typical answers fit under (about 6 MiB
 * of heap; bench/cache.ts prints the figures), so the entry count binds for typical answers
 * and the byte bound for big ones. TTL caps as unbound's (`cache-max-ttl` 1 day,
 * `cache-max-negative-ttl` 1 hour). Serve-stale and prefetch off, as in dnsmasq and unbound.
 */
export const CACHE_DEFAULTS: Readonly<CacheLimits> = {
  maxEntries: 10_000,
  maxBytes: 10 * 1024 * 1024,
  maxTtlS: 86_400,
  maxNegTtlS: 3_600,
  staleMaxS: 0,
  staleTtlS: 30,
  staleRecheckS: 30,
  prefetch: false,
};

/**
 * What an entry costs beside its stored bytes, as the byte bound counts it: a fixed part (the
 * entry, the typed array, the chain and address arrays) and a part per string of the scan (each
 * name of the chain, each address). Fitted to the heap growth bench/cache.ts measures for
 * answers from one A record to thirty (13% over for one, 1–5% over from two on); its typical
 * mix counts about 8% under (2026-12-03).
 */
export const ENTRY_OVERHEAD_BYTES = 340;
export const STRING_OVERHEAD_BYTES = 50;

/** What an entry counts against the byte bound: its stored bytes and the estimated rest. */
export function costOf(stored: Uint8Array, scan: Pick<AnswerScan, 'chain' | 'addrs'>): number {
  return stored.length + ENTRY_OVERHEAD_BYTES + STRING_OVERHEAD_BYTES * (scan.chain.length + scan.addrs.length);
}
