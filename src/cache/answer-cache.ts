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
import type { AnswerScan, OptLocation } from '../dns/answer-scan.ts';
import type { ParsedQuery } from '../dns/query.ts';
import type { Forwarded } from '../proxy/forwarder.ts';
import type { Clock } from '../util/clock.ts';
import { EDNS_DO } from '../dns/wire.ts';
import { agedCopy, prepare, relayAged } from './answer-ttl.ts';
import { keyHash, questionBits, sameQuestion } from './cache-key.ts';
import { CACHE_DEFAULTS, costOf, type CacheLimits } from './cache-limits.ts';
import { newCacheCounters, type CacheCounters, type EvictionReason } from './cache-metrics.ts';
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

/**
 * A hit as the cache hands it out. It is its own scan (`scan` returns the hit): the entry's
 * chain and addresses, `minTtl` aged by the whole seconds spent in the cache, the rest read from
 * the entry when read (the CNAME hops' `chainTtls` aged then, the header fields from the stored
 * answer). Nothing aged is kept in the entry, and the hit is one small object (12 fields) that
 * touches nothing beyond the entry and its stored answer until read.
 * Its `bytes` (the aged copy) are made only when something reads them (confine with stray
 * records, intercept, the query log); the usual client copy is made by `relay` straight from the
 * stored answer, one copy per hit instead of two.
 */
export class CachedHit implements CachedAnswer, AnswerScan {
  readonly via: 'udp' | 'tcp';
  readonly cache: 'hit' | 'stale';
  readonly remainingS: number;
  readonly lifetimeS: number;
  refresh?: true;
  readonly chain: string[];
  readonly addrs: string[];
  readonly minTtl: number;
  private readonly entry: Entry;
  private readonly elapsedS: number;
  private readonly staleTtlS: number | null;
  private readonly question: Uint8Array;
  private aged: Uint8Array | null = null;

  constructor(e: Entry, question: Uint8Array, elapsedS: number, staleTtlS: number | null, remainingS: number, lifetimeS: number) {
    this.via = e.flags & VIA_TCP ? 'tcp' : 'udp';
    this.cache = staleTtlS !== null ? 'stale' : 'hit';
    this.remainingS = remainingS;
    this.lifetimeS = lifetimeS;
    this.chain = e.chain;
    this.addrs = e.addrs;
    // The kept minTtl is 0 without addresses; a stale one is staleTtlS only with addresses.
    this.minTtl = staleTtlS === null ? agedTtl(e.minTtl, elapsedS) : e.addrs.length === 0 ? 0 : staleTtlS;
    this.entry = e;
    this.elapsedS = elapsedS;
    this.staleTtlS = staleTtlS;
    this.question = question;
  }

  /** The hit itself (a getter, not a field: no cycle for whoever walks the object). */
  get scan(): AnswerScan {
    return this;
  }

  /** The answer with the TTLs lowered by the time spent in the cache and the asker's question. */
  get bytes(): Uint8Array {
    return (this.aged ??= agedCopy(this.entry.stored, this.end, this.elapsedS, this.staleTtlS, this.question));
  }

  /** The client's copy (`relayAnswer` of `bytes`), made from the stored answer in one copy. */
  relay(query: ParsedQuery, limit: number | null): Uint8Array {
    return relayAged(this.entry.stored, this, this.elapsedS, this.staleTtlS, query, limit);
  }

  /** Per-hop CNAME TTLs, aged (entry 0 is not a TTL: a chain without CNAMEs keeps its array). */
  get chainTtls(): number[] {
    const ct = this.entry.chainTtls;
    if (ct.length === 1) return ct;
    const elapsedS = this.elapsedS;
    const stale = this.staleTtlS;
    return ct.map((t, i) => (i === 0 ? t : stale !== null ? stale : agedTtl(t, elapsedS)));
  }

  get strays(): number {
    return this.entry.strays;
  }

  get opt(): OptLocation | null {
    return this.entry.opt;
  }

  get flags(): number {
    const s = this.entry.stored;
    return (s[2]! << 8) | s[3]!;
  }

  get rcode(): number {
    return this.entry.stored[3]! & 0xf;
  }

  /** Never: a truncated answer is not kept (`prepare`). */
  get truncated(): boolean {
    return false;
  }

  get ancount(): number {
    const s = this.entry.stored;
    return (s[6]! << 8) | s[7]!;
  }

  get nscount(): number {
    const s = this.entry.stored;
    return (s[8]! << 8) | s[9]!;
  }

  get arcount(): number {
    const s = this.entry.stored;
    return (s[10]! << 8) | s[11]!;
  }

  /** The wire part of the stored answer: what follows it is one TTL offset per record but the OPT. */
  get end(): number {
    const s = this.entry.stored;
    const records = ((s[6]! << 8) | s[7]!) + ((s[8]! << 8) | s[9]!) + ((s[10]! << 8) | s[11]!);
    return s.length - 2 * (records - (this.entry.opt ? 1 : 0));
  }
}

/** A TTL `elapsedS` seconds later, never below 0. */
function agedTtl(ttl: number, elapsedS: number): number {
  return ttl > elapsedS ? ttl - elapsedS : 0;
}

/** True for an answer that came from the cache. */
export function isCached(f: Forwarded): f is CachedAnswer {
  return (f as Partial<CachedAnswer>).cache !== undefined;
}

/** `Entry.flags` bits. */
const VIA_TCP = 1;
const REFRESHING = 2;

/** `Entry.chainTtls` of every entry whose chain is the query name alone (most). Never written. */
const NO_CNAMES: number[] = Object.freeze([0]) as number[];
/** `Entry.addrs` of every entry without addresses (negative answers, NODATA). Never written. */
const NO_ADDRS: string[] = Object.freeze([]) as unknown as string[];
/** At most this many OPT locations are shared (`AnswerCache.sharedOpt`); past it, entries keep their own. */
const MAX_SHARED_OPTS = 1024;

/**
 * Kept lean: every field is paid for by each of the (default 10,000) entries. What a hit needs
 * of the answer's scan is kept in the entry itself (no scan object, no aged copy of one); the
 * header fields are read from `stored`.
 */
interface Entry extends SieveNode {
  /** The next entry in the same table slot. */
  sameSlot: Entry | null;
  hash: number;
  upstream: string;
  bits: number;
  /** `prepare`'s: the answer (TTLs clamped, the first asker's question), then its TTL offsets. */
  stored: Uint8Array;
  /** The scan's own arrays (strings flattened); `chain` is also the identity of that scan. */
  chain: string[];
  addrs: string[];
  /** The scan's TTLs, capped at `maxTtlS` as `prepare` capped the bytes (`minTtl` 0 without addresses). */
  chainTtls: number[];
  minTtl: number;
  strays: number;
  opt: OptLocation | null;
  storedMs: number;
  expiresMs: number;
  /** Serve-stale: until then an expired entry answers at once. */
  recheckMs: number;
  /** VIA_TCP, REFRESHING. */
  flags: number;
}

export interface AnswerCacheOptions extends Partial<CacheLimits> {
  clock: Clock;
  counters?: CacheCounters;
}

export class AnswerCache {
  readonly counters: CacheCounters;
  private limits: CacheLimits;
  private readonly clock: Clock;
  /**
   * Open hashing: a power-of-two array of slots (at least 1.5 per allowed entry), entries of one
   * slot chained through `sameSlot`. Cheaper than a Map per lookup and per entry.
   */
  private slots: Array<Entry | null> = [];
  private mask = 0;
  private readonly sieve = new Sieve<Entry>();
  private readonly upstreams: string[] = [];
  /** OPT locations kept once for every entry with the same (`sharedOpt`). */
  private readonly opts = new Map<number, OptLocation>();
  private bytesUsed = 0;

  constructor(opts: AnswerCacheOptions) {
    const { clock, counters, ...limits } = opts;
    this.clock = clock;
    this.counters = counters ?? newCacheCounters();
    this.limits = { ...CACHE_DEFAULTS, ...limits };
    this.sizeTable();
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
    this.sizeTable();
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
    // The same answer, shared by several queries in flight, is kept once (the entry keeps its
    // scan's chain array: one per scan).
    if (existing && existing.chain === forwarded.scan.chain) return false;
    const prep = prepare(forwarded.bytes, forwarded.scan, query.question.length, query.qtype, this.limits);
    if (!prep.ok) {
      this.counters.notCached[prep.reason]++;
      return false;
    }
    if (costOf(prep.stored, forwarded.scan) > this.limits.maxBytes) {
      this.counters.notCached.too_big++;
      return false;
    }
    if (existing) this.unlink(existing);
    const scan = forwarded.scan;
    flatten(scan.chain);
    flatten(scan.addrs);
    const maxTtlS = this.limits.maxTtlS;
    const now = this.clock.monoMs();
    const e: Entry = {
      newer: null,
      older: null,
      visited: false,
      sameSlot: null,
      hash: keyHash(query.question, bits, this.upstreamNumber(upstream)),
      upstream,
      bits,
      stored: prep.stored,
      chain: scan.chain,
      // An exact-size copy (a pushed array keeps spare room), one empty array for all negatives.
      addrs: scan.addrs.length === 0 ? NO_ADDRS : scan.addrs.slice(),
      chainTtls: scan.chainTtls.length === 1 ? NO_CNAMES : scan.chainTtls.map((t) => Math.min(t, maxTtlS)),
      minTtl: Math.min(scan.minTtl, maxTtlS),
      strays: scan.strays,
      opt: this.sharedOpt(scan.opt),
      storedMs: now,
      expiresMs: now + prep.lifetimeS * 1000,
      recheckMs: 0,
      flags: forwarded.via === 'tcp' ? VIA_TCP : 0,
    };
    this.link(e);
    this.sieve.insert(e);
    // A refreshed answer (prefetch, a newer upstream answer) keeps the popularity of the old one.
    if (existing?.visited) e.visited = true;
    this.bytesUsed += costOf(e.stored, e);
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
      this.slots.fill(null);
      this.sieve.clear();
      this.opts.clear();
      this.bytesUsed = 0;
      return n;
    }
    let n = 0;
    for (const e of this.sieve.entries()) {
      if (match(e.chain[0]!)) {
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
    const hash = keyHash(q, bits, this.upstreamNumber(upstream));
    for (let e = this.slots[hash & this.mask] ?? null; e; e = e.sameSlot) {
      // A question of another length differs at its root label at the latest (cache-key.ts).
      if (e.hash === hash && e.bits === bits && e.upstream === upstream && sameQuestion(e.stored, q)) return e;
    }
    return null;
  }

  private answer(e: Entry, query: ParsedQuery, now: number, stale: boolean): CachedAnswer {
    const elapsedS = Math.floor((now - e.storedMs) / 1000);
    const lifetimeS = (e.expiresMs - e.storedMs) / 1000;
    const staleTtl = stale ? this.limits.staleTtlS : null;
    const remainingS = stale ? this.limits.staleTtlS : lifetimeS - elapsedS;
    const out = new CachedHit(e, query.question, elapsedS, staleTtl, remainingS, lifetimeS);
    if (!stale && this.limits.prefetch && !(e.flags & REFRESHING) && remainingS * 10 < lifetimeS) {
      e.flags |= REFRESHING;
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

  private link(e: Entry): void {
    const i = e.hash & this.mask;
    e.sameSlot = this.slots[i] ?? null;
    this.slots[i] = e;
  }

  private unlink(e: Entry): void {
    const i = e.hash & this.mask;
    const head = this.slots[i] ?? null;
    if (head === e) this.slots[i] = e.sameSlot;
    else {
      for (let p = head; p; p = p.sameSlot) {
        if (p.sameSlot === e) {
          p.sameSlot = e.sameSlot;
          break;
        }
      }
    }
    e.sameSlot = null;
    this.sieve.remove(e);
    this.bytesUsed -= costOf(e.stored, e);
  }

  /** Slots for 1.5× the allowed entries, a power of two; rehashes when the size changes. */
  private sizeTable(): void {
    const want = Math.max(16, 2 ** Math.ceil(Math.log2(Math.max(1, this.limits.maxEntries) * 1.5)));
    if (want === this.slots.length) return;
    this.slots = new Array<Entry | null>(want).fill(null);
    this.mask = want - 1;
    for (const e of this.sieve.entries()) this.link(e);
  }

  /**
   * An OPT location equal to `opt` that other entries keep already, else `opt` (kept for the
   * next one while there are fewer than MAX_SHARED_OPTS). Nothing writes into an OptLocation,
   * and answers of one length with one OPT layout share the same: one object (about 64 heap
   * bytes) for all of them instead of one per entry.
   */
  private sharedOpt(opt: OptLocation | null): OptLocation | null {
    if (opt === null) return null;
    // off, rdLen, index (each below 2^16) and the DO bit: exact in a double.
    const key = opt.off + 0x10000 * (opt.rdLen + 0x10000 * (opt.index + 0x10000 * (opt.ttl === EDNS_DO ? 1 : 0)));
    const known = this.opts.get(key);
    if (known) return known.ttl === opt.ttl && known.rdOff === opt.rdOff && known.end === opt.end ? known : opt;
    if (this.opts.size < MAX_SHARED_OPTS) this.opts.set(key, opt);
    return opt;
  }

  /** A small number per upstream name (the configured few), mixed into the key hash. */
  private upstreamNumber(name: string): number {
    const list = this.upstreams;
    for (let i = 0; i < list.length; i++) if (list[i] === name) return i;
    list.push(name);
    return list.length - 1;
  }
}

/**
 * Replaces each string of `list` with a flat copy of the same value. A string built a
 * character at a time (the query name in `parseQuery`, names in `readName`) is a JSC rope —
 * about 650 bytes for a 20-character name — until something reads it whole; an entry keeps
 * its strings for minutes. Done in place: the values do not change (they are lower-case, so
 * `toLowerCase` copies), and whoever else holds the array (queries in flight, the registry's
 * names) lets go of the rope too.
 */
function flatten(list: string[]): void {
  for (let i = 0; i < list.length; i++) list[i] = list[i]!.toLowerCase();
}
