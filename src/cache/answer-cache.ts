/**
 * The answer cache: upstream answers kept by question, bits and upstream (`cache-key.ts`),
 * for as long as their TTLs allow (`answer-ttl.ts`), bounded in entries and bytes, evicted by
 * SIEVE (`sieve.ts`).
 *
 * A hit is handed out only as a `CachedAnswer`: a `Forwarded` (the forwarder's result) with a
 * fresh copy of the bytes — TTLs lowered by the time spent here, the client's question — and
 * the scan of that copy (chain, addresses, the *remaining* TTL). There is no other way to read
 * an entry, so a hit goes through the pipeline's decide → register → respond exactly as a
 * fresh answer does, per client, before anything is released (see `caching-forwarder.ts`).
 *
 * Serve-stale (RFC 8767, off unless `staleMaxS` > 0): `stale()` answers from an entry expired
 * less than `staleMaxS` ago, every TTL set to `staleTtlS`, when the upstream failed; for
 * `staleRecheckS` after that, `lookup()` answers from it at once (the failure recheck timer,
 * RFC 8767 §5), so a dead upstream does not cost every client a timeout.
 */
import type { AnswerScan } from '../dns/answer-scan.ts';
import type { ParsedQuery } from '../dns/query.ts';
import type { Forwarded } from '../proxy/forwarder.ts';
import type { Clock } from '../util/clock.ts';
import { agedCopy, agedScan, cappedScan, NOT_CACHED_REASONS, prepare, type NotCachedReason } from './answer-ttl.ts';
import { keyHash, questionBits, sameQuestion } from './cache-key.ts';
import { Sieve, type SieveNode } from './sieve.ts';

/** A cache hit: what the pipeline gets instead of an upstream answer. */
export interface CachedAnswer extends Forwarded {
  /** `hit`: a live entry; `stale`: an expired one served because the upstream failed. */
  cache: 'hit' | 'stale';
  /** Seconds the entry may still answer (stale: the stale TTL). */
  remainingS: number;
  /** Seconds the entry could answer when it was stored. */
  lifetimeS: number;
  /** Prefetch: set on the one hit that should refresh the entry from the upstream now. */
  refresh?: true;
}

/** True for an answer that came from the cache. */
export function isCached(f: Forwarded): f is CachedAnswer {
  return (f as Partial<CachedAnswer>).cache !== undefined;
}

export interface CacheLimits {
  /** Most entries; 0 turns the cache off (config `cache_size`). */
  maxEntries: number;
  /** Most bytes, counted as each answer's wire length plus `ENTRY_OVERHEAD_BYTES`. */
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
 * Defaults: 10,000 entries and 4 MiB; about 2.3 MiB of heap when full of typical answers
 * (bench/cache.ts prints the figure) — small beside the daemon's RSS.
 * TTL caps as unbound's (`cache-max-ttl` 1 day, `cache-max-negative-ttl` 1 hour).
 */
export const CACHE_DEFAULTS: Readonly<CacheLimits> = {
  maxEntries: 10_000,
  maxBytes: 4 * 1024 * 1024,
  maxTtlS: 86_400,
  maxNegTtlS: 3_600,
  staleMaxS: 0,
  staleTtlS: 30,
  staleRecheckS: 30,
  prefetch: false,
};

/**
 * Bytes counted per entry beside its wire bytes: the entry object, the TTL offsets, the scan
 * and its chain/address strings of a typical answer (measured by bench/cache.ts: heap growth
 * per entry minus wire bytes, rounded up).
 */
export const ENTRY_OVERHEAD_BYTES = 320;

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

interface Entry extends SieveNode {
  hash: number;
  /** The next entry whose key has the same hash (a collision). */
  sameHash: Entry | null;
  upstream: string;
  bits: number;
  /** Lower-case query name (for `clear`). */
  qname: string;
  qlen: number;
  /** The answer as kept: TTLs clamped, the first asker's question. */
  bytes: Uint8Array;
  ttlOffs: Uint16Array;
  /** The scan of `bytes`. */
  scan: AnswerScan;
  /** The scan object of the `Forwarded` it came from: the same answer shared in flight is kept once. */
  origin: AnswerScan;
  via: 'udp' | 'tcp';
  storedMs: number;
  lifetimeS: number;
  expiresMs: number;
  /** Serve-stale: until then an expired entry answers at once. */
  recheckMs: number;
  /** Prefetch: a refresh was asked for. */
  refreshing: boolean;
  cost: number;
}

export interface AnswerCacheOptions extends Partial<CacheLimits> {
  clock: Clock;
  counters?: CacheCounters;
}

export class AnswerCache {
  readonly counters: CacheCounters;
  private limits: CacheLimits;
  private readonly clock: Clock;
  private readonly table = new Map<number, Entry>();
  private readonly sieve = new Sieve<Entry>();
  private readonly upstreams: string[] = [];
  private bytesUsed = 0;

  constructor(opts: AnswerCacheOptions) {
    const { clock, counters, ...limits } = opts;
    this.clock = clock;
    this.counters = counters ?? newCacheCounters();
    this.limits = { ...CACHE_DEFAULTS, ...limits };
  }

  get enabled(): boolean {
    return this.limits.maxEntries > 0;
  }

  get size(): number {
    return this.sieve.size;
  }

  /** Bytes counted against `maxBytes`. */
  get bytes(): number {
    return this.bytesUsed;
  }

  get settings(): Readonly<CacheLimits> {
    return this.limits;
  }

  /** New limits (a reload): a smaller cache evicts at once; `maxEntries` 0 empties it. */
  setLimits(limits: Partial<CacheLimits>): void {
    this.limits = { ...this.limits, ...limits };
    if (this.limits.maxEntries === 0) this.clear();
    else this.fit();
  }

  /**
   * A live entry for `query` asked of `upstream`, as a `CachedAnswer` (counted as a hit), or
   * null (a miss). An expired entry inside its stale recheck window answers stale.
   */
  lookup(query: ParsedQuery, upstream: string): CachedAnswer | null {
    if (this.limits.maxEntries === 0) return null;
    const e = this.find(query, questionBits(query), upstream);
    if (e) {
      const now = this.clock.monoMs();
      if (now < e.expiresMs) {
        e.visited = true;
        this.counters.hits++;
        return this.answer(e, query, now, false);
      }
      if (now < e.recheckMs) {
        e.visited = true;
        this.counters.stale++;
        return this.answer(e, query, now, true);
      }
      if (this.dead(e, now)) this.drop(e, 'expired');
    }
    this.counters.misses++;
    return null;
  }

  /**
   * Serve-stale, after the upstream failed for `query`: an entry expired less than
   * `staleMaxS` ago answers with every TTL at `staleTtlS`, and keeps doing so from `lookup`
   * for `staleRecheckS`. Null when serve-stale is off or there is no such entry.
   */
  stale(query: ParsedQuery, upstream: string): CachedAnswer | null {
    if (this.limits.maxEntries === 0 || this.limits.staleMaxS <= 0) return null;
    const e = this.find(query, questionBits(query), upstream);
    if (!e) return null;
    const now = this.clock.monoMs();
    if (now < e.expiresMs) {
      // Stored meanwhile (another query's answer came in): a live entry.
      e.visited = true;
      this.counters.hits++;
      return this.answer(e, query, now, false);
    }
    if (this.dead(e, now)) return null;
    e.visited = true;
    e.recheckMs = now + this.limits.staleRecheckS * 1000;
    this.counters.stale++;
    return this.answer(e, query, now, true);
  }

  /**
   * Keeps `forwarded` (the upstream's answer to `query` from `upstream`) if its rcode, flags
   * and TTLs allow; replaces an older entry for the same key. Answers of signed exchanges
   * (a policy server's, `forwarded.hooks`) and answers carrying TSIG are never kept. Returns
   * whether it was kept.
   */
  insert(query: ParsedQuery, upstream: string, forwarded: Forwarded): boolean {
    if (this.limits.maxEntries === 0) return false;
    if (forwarded.hooks) {
      this.counters.notCached.signed++;
      return false;
    }
    const bits = questionBits(query);
    const existing = this.find(query, bits, upstream);
    // The same answer, shared by several queries in flight, is kept once.
    if (existing && existing.origin === forwarded.scan) return false;
    const qlen = query.question.length;
    const prep = prepare(forwarded.bytes, forwarded.scan, qlen, query.qtype, this.limits);
    if (!prep.ok) {
      this.counters.notCached[prep.reason]++;
      return false;
    }
    const cost = prep.bytes.length + ENTRY_OVERHEAD_BYTES;
    if (cost > this.limits.maxBytes) {
      this.counters.notCached.too_big++;
      return false;
    }
    if (existing) this.unlink(existing);
    const now = this.clock.monoMs();
    const e: Entry = {
      newer: null,
      older: null,
      visited: false,
      hash: keyHash(query.question, bits, this.upstreamNumber(upstream)),
      sameHash: null,
      upstream,
      bits,
      qname: query.qname,
      qlen,
      bytes: prep.bytes,
      ttlOffs: prep.ttlOffs,
      scan: cappedScan(forwarded.scan, this.limits.maxTtlS),
      origin: forwarded.scan,
      via: forwarded.via,
      storedMs: now,
      lifetimeS: prep.lifetimeS,
      expiresMs: now + prep.lifetimeS * 1000,
      recheckMs: 0,
      refreshing: false,
      cost,
    };
    const head = this.table.get(e.hash);
    e.sameHash = head ?? null;
    this.table.set(e.hash, e);
    this.sieve.insert(e);
    this.bytesUsed += cost;
    this.counters.inserts++;
    this.fit();
    return true;
  }

  /**
   * Removes every entry whose query name `match` selects (all without one); `flush --cache`.
   * Returns how many went.
   */
  clear(match?: (name: string) => boolean): number {
    if (!match) {
      const n = this.sieve.size;
      this.table.clear();
      this.sieve.clear();
      this.bytesUsed = 0;
      return n;
    }
    let n = 0;
    for (const e of this.sieve.entries()) {
      if (match(e.qname)) {
        this.unlink(e);
        n++;
      }
    }
    return n;
  }

  /** Removes every entry of one query name (any type, bits or upstream; case and a final dot ignored). */
  clearName(name: string): number {
    const want = name.toLowerCase().replace(/\.$/, '');
    return this.clear((n) => n === want);
  }

  private find(query: ParsedQuery, bits: number, upstream: string): Entry | null {
    const q = query.question;
    for (let e = this.table.get(keyHash(q, bits, this.upstreamNumber(upstream))) ?? null; e; e = e.sameHash) {
      if (e.bits === bits && e.qlen === q.length && e.upstream === upstream && sameQuestion(e.bytes, q)) return e;
    }
    return null;
  }

  private answer(e: Entry, query: ParsedQuery, now: number, stale: boolean): CachedAnswer {
    const elapsedS = Math.floor((now - e.storedMs) / 1000);
    const staleTtl = stale ? this.limits.staleTtlS : null;
    const remainingS = stale ? this.limits.staleTtlS : e.lifetimeS - elapsedS;
    const out: CachedAnswer = {
      bytes: agedCopy(e.bytes, e.ttlOffs, elapsedS, staleTtl, query.question),
      scan: agedScan(e.scan, elapsedS, staleTtl),
      via: e.via,
      cache: stale ? 'stale' : 'hit',
      remainingS,
      lifetimeS: e.lifetimeS,
    };
    if (!stale && this.limits.prefetch && !e.refreshing && remainingS * 10 < e.lifetimeS) {
      e.refreshing = true;
      this.counters.prefetches++;
      out.refresh = true;
    }
    return out;
  }

  /** Expired and past any use for serve-stale. */
  private dead(e: Entry, now: number): boolean {
    return now >= e.expiresMs + this.limits.staleMaxS * 1000 && now >= e.recheckMs;
  }

  /** Evicts until both bounds hold. */
  private fit(): void {
    if (this.sieve.size <= this.limits.maxEntries && this.bytesUsed <= this.limits.maxBytes) return;
    const now = this.clock.monoMs();
    const dead = (e: Entry) => this.dead(e, now);
    while (this.sieve.size > this.limits.maxEntries || this.bytesUsed > this.limits.maxBytes) {
      const v = this.sieve.victim(dead);
      if (!v) break;
      this.drop(v, dead(v) ? 'expired' : 'size');
    }
  }

  private drop(e: Entry, reason: EvictionReason): void {
    this.unlink(e);
    this.counters.evictions[reason]++;
  }

  private unlink(e: Entry): void {
    const head = this.table.get(e.hash);
    if (head === e) {
      if (e.sameHash) this.table.set(e.hash, e.sameHash);
      else this.table.delete(e.hash);
    } else {
      for (let p: Entry | null = head ?? null; p; p = p.sameHash) {
        if (p.sameHash === e) {
          p.sameHash = e.sameHash;
          break;
        }
      }
    }
    e.sameHash = null;
    this.sieve.remove(e);
    this.bytesUsed -= e.cost;
  }

  /** A small number per upstream name (the configured few), mixed into the key hash. */
  private upstreamNumber(name: string): number {
    const list = this.upstreams;
    for (let i = 0; i < list.length; i++) if (list[i] === name) return i;
    list.push(name);
    return list.length - 1;
  }
}
