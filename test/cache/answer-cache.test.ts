import { describe, expect, test } from 'bun:test';
import { AnswerCache, type AnswerCacheOptions } from '../../src/cache/answer-cache.ts';
import { ENTRY_OVERHEAD_BYTES, STRING_OVERHEAD_BYTES } from '../../src/cache/cache-limits.ts';
import { exportCacheMetrics } from '../../src/cache/cache-metrics.ts';
import { Metrics } from '../../src/ops/metrics.ts';
import { FakeClock } from '../../src/util/clock.ts';
import { a, aaaa, answer, cname, hex, query, soa, type QueryOptions } from './answers.ts';

function setup(opts: Partial<AnswerCacheOptions> = {}) {
  const clock = new FakeClock();
  const cache = new AnswerCache({ clock, ...opts });
  return { clock, cache };
}

/** Keeps a positive answer for `name` (A or AAAA as asked, TTL `ttl`) under `upstream`. */
function keep(cache: AnswerCache, name: string, ttl = 300, o: QueryOptions = {}, upstream = 'default'): boolean {
  const q = query(name, o);
  const rec = o.type === 28 ? aaaa(name, ttl, '2001:db8::1') : a(name, ttl, '192.0.2.1');
  return cache.insert(q, upstream, answer(q, { answers: [rec] }));
}

/** TTL fields of every record of `bytes` but the OPT, in order. */
function ttls(bytes: Uint8Array): number[] {
  const b = Buffer.from(bytes);
  const out: number[] = [];
  let p = 12;
  while (b[p] !== 0) p += (b[p]! & 0xc0) === 0xc0 ? 1 : b[p]! + 1;
  p += 5;
  const count = b.readUInt16BE(6) + b.readUInt16BE(8) + b.readUInt16BE(10);
  for (let i = 0; i < count; i++) {
    while (b[p] !== 0 && (b[p]! & 0xc0) !== 0xc0) p += b[p]! + 1;
    p += b[p] === 0 ? 1 : 2;
    const type = b.readUInt16BE(p);
    if (type !== 41) out.push(b.readUInt32BE(p + 4));
    p += 10 + b.readUInt16BE(p + 8);
  }
  return out;
}

describe('cache/answer-cache', () => {
  describe('expiry', () => {
    test('answers until the smallest TTL runs out and misses from then on when time passes', () => {
      const { clock, cache } = setup();
      const q = query('www.test');
      cache.insert(q, 'default', answer(q, { answers: [a('www.test', 300, '192.0.2.1'), a('www.test', 20, '192.0.2.2')] }));
      clock.advance(19_999);
      expect(cache.lookup(q, 'default')?.scan.minTtl).toBe(1);
      clock.advance(1);
      expect(cache.lookup(q, 'default')).toBeNull();
      expect(cache.counters).toMatchObject({ hits: 1, misses: 1, evictions: { expired: 1, size: 0 } });
      expect(cache.size).toBe(0);
    });

    test('ages the scan of every hit by the whole seconds spent in the cache (CNAME hops too) and never the kept one', () => {
      const { clock, cache } = setup();
      const q = query('www.test');
      cache.insert(q, 'default', answer(q, { answers: [cname('www.test', 120, 'edge.test'), a('edge.test', 60, '192.0.2.1')] }));
      clock.advance(2_000);
      const first = cache.lookup(q, 'default')!.scan;
      expect(first).toMatchObject({ minTtl: 58, chainTtls: [0, 118] });
      clock.advance(500);
      expect(cache.lookup(q, 'default')!.scan).toMatchObject({ minTtl: 58, chainTtls: [0, 118] });
      clock.advance(500);
      expect(cache.lookup(q, 'default')!.scan).toMatchObject({ minTtl: 57, chainTtls: [0, 117] });
      // an earlier hit keeps its own figures; the kept ones are never aged in place
      expect(first).toMatchObject({ minTtl: 58, chainTtls: [0, 118] });
      clock.advance(1_000);
      expect(cache.lookup(q, 'default')!.scan).toMatchObject({ minTtl: 56, chainTtls: [0, 116] });
    });

    test('caps every TTL at maxTtlS when the upstream gives a longer one', () => {
      const { clock, cache } = setup({ maxTtlS: 100 });
      const q = query('www.test');
      cache.insert(q, 'default', answer(q, { answers: [a('www.test', 604800, '192.0.2.1')], additionals: [a('ns.test', 50, '192.0.2.53')] }));
      clock.advance(10_000);
      expect(ttls(cache.lookup(q, 'default')!.bytes)).toEqual([90, 40]);
      clock.advance(40_000);
      expect(cache.lookup(q, 'default')).toBeNull();
    });
  });

  describe('negative caching (RFC 2308)', () => {
    test('keeps NXDOMAIN for min(SOA TTL, SOA MINIMUM) when the authority has an SOA', () => {
      const { clock, cache } = setup();
      const q = query('nx.test');
      expect(cache.insert(q, 'default', answer(q, { rcode: 'NXDOMAIN', authorities: [soa('test', 3600, 60)] }))).toBe(true);
      clock.advance(10_000);
      const hit = cache.lookup(q, 'default')!;
      expect(hit.scan.rcode).toBe(3);
      expect(hit.scan.addrs).toEqual([]);
      expect(ttls(hit.bytes)).toEqual([50]);
      clock.advance(50_000);
      expect(cache.lookup(q, 'default')).toBeNull();
    });

    test('keeps NODATA (NOERROR, no record of the type) by the SOA when the name has other types', () => {
      const { clock, cache } = setup();
      const q = query('v4only.test', { type: 28 });
      expect(cache.insert(q, 'default', answer(q, { authorities: [soa('test', 30, 300)] }))).toBe(true);
      clock.advance(29_000);
      expect(ttls(cache.lookup(q, 'default')!.bytes)).toEqual([1]);
      clock.advance(1_000);
      expect(cache.lookup(q, 'default')).toBeNull();
    });

    test('keeps NODATA after a CNAME by the smaller of the CNAME and the SOA when the target lacks the type', () => {
      const { cache } = setup();
      const q = query('alias.test', { type: 28 });
      cache.insert(q, 'default', answer(q, { answers: [cname('alias.test', 300, 'www.test')], authorities: [soa('test', 300, 120)] }));
      const hit = cache.lookup(q, 'default')!;
      expect(hit.lifetimeS).toBe(120);
      expect(hit.scan.chain).toEqual(['alias.test', 'www.test']);
    });

    test('caps a negative TTL at maxNegTtlS when the SOA allows longer', () => {
      const { cache } = setup({ maxNegTtlS: 600 });
      const q = query('nx.test');
      cache.insert(q, 'default', answer(q, { rcode: 'NXDOMAIN', authorities: [soa('test', 86400, 86400)] }));
      expect(ttls(cache.lookup(q, 'default')!.bytes)).toEqual([600]);
    });

    test.each([
      ['NXDOMAIN without an SOA', 'no_soa', { rcode: 'NXDOMAIN' as const }],
      ['NODATA without an SOA', 'no_soa', {}],
    ])('keeps no %s', (_w, reason, o) => {
      const { cache } = setup();
      const q = query('nx.test');
      expect(cache.insert(q, 'default', answer(q, o))).toBe(false);
      expect(cache.counters.notCached[reason as 'no_soa']).toBe(1);
      expect(cache.lookup(q, 'default')).toBeNull();
    });
  });

  describe('what is never kept', () => {
    test.each([
      ['SERVFAIL', 'servfail', { rcode: 'SERVFAIL' as const }],
      ['REFUSED', 'rcode', { rcode: 'REFUSED' as const }],
      ['a truncated answer', 'truncated', { tc: true, answers: [a('www.test', 300, '192.0.2.1')] }],
      ['a TTL of 0', 'ttl_zero', { answers: [a('www.test', 300, '192.0.2.1'), a('www.test', 0, '192.0.2.2')] }],
      ['a TTL with the top bit set (RFC 2181 §8: read as 0)', 'ttl_zero', { answers: [a('www.test', 0x80000000, '192.0.2.1')] }],
      [
        'an answer carrying TSIG (a policy server\'s)',
        'tsig',
        { answers: [a('www.test', 300, '192.0.2.1')], additionals: [{ type: 'TSIG', name: 'key.', ttl: 0, data: Buffer.alloc(20) } as never] },
      ],
    ])('keeps no %s', (_w, reason, o) => {
      const { cache } = setup();
      const q = query('www.test');
      expect(cache.insert(q, 'default', answer(q, o))).toBe(false);
      expect(cache.counters.notCached[reason as 'tsig']).toBe(1);
      expect(cache.lookup(q, 'default')).toBeNull();
      expect(cache.size).toBe(0);
    });

    test('keeps no answer of a signed exchange when the forwarded answer has hooks', () => {
      const { cache } = setup();
      const q = query('www.test');
      const f = { ...answer(q, { answers: [a('www.test', 300, '192.0.2.1')] }), hooks: { sign: (w: Uint8Array) => w, accept: () => true } };
      expect(cache.insert(q, 'default', f)).toBe(false);
      expect(cache.counters.notCached.signed).toBe(1);
    });
  });

  describe('keying', () => {
    test('hits whatever the case of the name and gives the client its own question when cases differ', () => {
      const { cache } = setup();
      keep(cache, 'www.test');
      const hit = cache.lookup(query('WwW.TeSt', { id: 7 }), 'default')!;
      expect(hex(hit.bytes.subarray(12, 22))).toBe(hex(query('WwW.TeSt').question.subarray(0, 10)));
      expect(hit.scan.chain[0]).toBe('www.test');
    });

    test.each([
      ['DO', { dnssec: true }],
      ['CD', { cd: true }],
      ['AD', { ad: true }],
      ['RD clear', { rd: false }],
      ['another type', { type: 28 }],
    ] as Array<[string, QueryOptions]>)('keeps a separate entry when the query has %s', (_w, o) => {
      const { cache } = setup();
      keep(cache, 'www.test');
      expect(cache.lookup(query('www.test', o), 'default')).toBeNull();
      keep(cache, 'www.test', 300, o);
      expect(cache.size).toBe(2);
      expect(cache.lookup(query('www.test', o), 'default')).not.toBeNull();
      expect(cache.lookup(query('www.test'), 'default')).not.toBeNull();
    });

    test('keeps one entry per upstream when split DNS sends the name to two', () => {
      const { cache } = setup();
      const q = query('www.test');
      cache.insert(q, 'default', answer(q, { answers: [a('www.test', 300, '192.0.2.1')] }));
      expect(cache.lookup(q, 'corp')).toBeNull();
      cache.insert(q, 'corp', answer(q, { answers: [a('www.test', 300, '10.0.0.1')] }));
      expect(cache.lookup(q, 'default')!.scan.addrs).toEqual(['192.0.2.1']);
      expect(cache.lookup(q, 'corp')!.scan.addrs).toEqual(['10.0.0.1']);
    });

    test('tells names apart that differ only in a non-letter 0x20 apart when they collide in folding', () => {
      const { cache } = setup();
      keep(cache, 'a@b.test');
      expect(cache.lookup(query('a`b.test'), 'default')).toBeNull();
      expect(cache.lookup(query('A@B.test'), 'default')).not.toBeNull();
    });

    test('replaces the entry when a newer answer for the same key comes', () => {
      const { cache } = setup();
      const q = query('www.test');
      cache.insert(q, 'default', answer(q, { answers: [a('www.test', 300, '192.0.2.1')] }));
      cache.insert(q, 'default', answer(q, { answers: [a('www.test', 300, '192.0.2.9')] }));
      expect(cache.size).toBe(1);
      expect(cache.lookup(q, 'default')!.scan.addrs).toEqual(['192.0.2.9']);
    });

    test('keeps one shared answer once when several queries in flight bring the same one', () => {
      const { cache } = setup();
      const q = query('www.test');
      const f = answer(q, { answers: [a('www.test', 300, '192.0.2.1')] });
      expect(cache.insert(q, 'default', f)).toBe(true);
      expect(cache.insert(query('www.test', { id: 9 }), 'default', f)).toBe(false);
      expect(cache.counters.inserts).toBe(1);
    });
  });

  describe('bounds and eviction', () => {
    test('holds at most maxEntries and counts each eviction when more are inserted', () => {
      const { cache } = setup({ maxEntries: 3 });
      for (let i = 0; i < 5; i++) keep(cache, `n${i}.test`);
      expect(cache.size).toBe(3);
      expect(cache.counters.evictions).toEqual({ size: 2, expired: 0 });
    });

    test('holds at most maxBytes (wire bytes, TTL offsets, the estimated rest) when answers are big', () => {
      const q = query('n0.test');
      // Wire bytes, 2 bytes for the one TTL offset kept, the fixed overhead, two strings (name, address).
      const one = answer(q, { answers: [a('n0.test', 300, '192.0.2.1')] }).bytes.length + 2 + ENTRY_OVERHEAD_BYTES + 2 * STRING_OVERHEAD_BYTES;
      const { cache } = setup({ maxBytes: 2 * one + 10 });
      for (let i = 0; i < 4; i++) keep(cache, `n${i}.test`);
      expect(cache.size).toBe(2);
      expect(cache.bytes).toBe(2 * one);
      expect(cache.bytes).toBeLessThanOrEqual(2 * one + 10);
      expect(cache.counters.evictions.size).toBe(2);
    });

    test('keeps no answer bigger than the byte bound when one comes', () => {
      const { cache } = setup({ maxBytes: 1000 });
      const q = query('many.test');
      const many = Array.from({ length: 30 }, (_, i) => a('many.test', 300, `198.51.100.${i + 1}`));
      expect(cache.insert(q, 'default', answer(q, { answers: many }))).toBe(false);
      expect(cache.counters.notCached.too_big).toBe(1);
    });

    test('evicts an entry not hit since it came before one that was hit (SIEVE) when full', () => {
      const { cache } = setup({ maxEntries: 3 });
      keep(cache, 'a.test');
      keep(cache, 'b.test');
      keep(cache, 'c.test');
      cache.lookup(query('a.test'), 'default');
      keep(cache, 'd.test');
      expect(cache.lookup(query('a.test'), 'default')).not.toBeNull();
      expect(cache.lookup(query('b.test'), 'default')).toBeNull();
      expect(cache.lookup(query('c.test'), 'default')).not.toBeNull();
    });

    test('evicts an expired entry first, counted as expired, when one was hit before it ran out', () => {
      const { clock, cache } = setup({ maxEntries: 2 });
      keep(cache, 'short.test', 10);
      keep(cache, 'long.test', 300);
      cache.lookup(query('short.test'), 'default');
      clock.advance(20_000);
      keep(cache, 'new.test', 300);
      expect(cache.counters.evictions).toEqual({ size: 0, expired: 1 });
      expect(cache.lookup(query('long.test'), 'default')).not.toBeNull();
    });

    test('evicts at once down to new limits when the limits shrink', () => {
      const { cache } = setup();
      for (let i = 0; i < 10; i++) keep(cache, `n${i}.test`);
      cache.setLimits({ maxEntries: 4 });
      expect(cache.size).toBe(4);
      expect(cache.counters.evictions.size).toBe(6);
    });
  });

  describe('off', () => {
    test('keeps and answers nothing and counts nothing when maxEntries is 0', () => {
      const { cache } = setup({ maxEntries: 0 });
      expect(cache.enabled).toBe(false);
      expect(keep(cache, 'www.test')).toBe(false);
      expect(cache.lookup(query('www.test'), 'default')).toBeNull();
      expect(cache.size).toBe(0);
      expect(cache.counters).toMatchObject({ hits: 0, misses: 0, inserts: 0 });
    });

    test('empties the cache when a reload sets maxEntries to 0', () => {
      const { cache } = setup();
      keep(cache, 'www.test');
      cache.setLimits({ maxEntries: 0 });
      expect(cache.size).toBe(0);
      expect(cache.bytes).toBe(0);
      expect(cache.lookup(query('www.test'), 'default')).toBeNull();
    });
  });

  describe('serve-stale (RFC 8767)', () => {
    test('serves an expired entry with TTL 30 only within staleMaxS when the upstream failed', () => {
      const { clock, cache } = setup({ staleMaxS: 100 });
      const q = query('www.test');
      cache.insert(q, 'default', answer(q, { answers: [a('www.test', 60, '192.0.2.1')], authorities: [aaaa('ns.test', 600, '2001:db8::53')] }));
      clock.advance(60_000);
      expect(cache.lookup(q, 'default')).toBeNull();
      clock.advance(99_000);
      const stale = cache.stale(q, 'default')!;
      expect(stale.cache).toBe('stale');
      expect(ttls(stale.bytes)).toEqual([30, 30]);
      expect(stale.scan.minTtl).toBe(30);
      expect(cache.counters.stale).toBe(1);
    });

    test('answers stale from lookup for the recheck window and asks the upstream again after it', () => {
      const { clock, cache } = setup({ staleMaxS: 3600, staleRecheckS: 30 });
      const q = query('www.test');
      keep(cache, 'www.test', 60);
      clock.advance(70_000);
      expect(cache.lookup(q, 'default')).toBeNull();
      expect(cache.stale(q, 'default')).not.toBeNull();
      clock.advance(29_000);
      expect(cache.lookup(q, 'default')?.cache).toBe('stale');
      clock.advance(1_000);
      expect(cache.lookup(q, 'default')).toBeNull();
      expect(cache.counters.stale).toBe(2);
    });

    test('serves nothing and drops the entry when it expired more than staleMaxS ago', () => {
      const { clock, cache } = setup({ staleMaxS: 100 });
      const q = query('www.test');
      keep(cache, 'www.test', 60);
      clock.advance(160_000);
      expect(cache.stale(q, 'default')).toBeNull();
      expect(cache.lookup(q, 'default')).toBeNull();
      expect(cache.size).toBe(0);
    });

    test('serves nothing stale when serve-stale is off (the default)', () => {
      const { clock, cache } = setup();
      const q = query('www.test');
      keep(cache, 'www.test', 60);
      clock.advance(61_000);
      expect(cache.stale(q, 'default')).toBeNull();
    });
  });

  describe('clear (flush --cache)', () => {
    test('removes every entry when called without a name', () => {
      const { cache } = setup();
      for (let i = 0; i < 5; i++) keep(cache, `n${i}.test`);
      expect(cache.clear()).toBe(5);
      expect(cache.size).toBe(0);
      expect(cache.bytes).toBe(0);
      expect(cache.lookup(query('n1.test'), 'default')).toBeNull();
    });

    test('removes every type, bit and upstream of one name and nothing else when a name is given', () => {
      const { cache } = setup();
      keep(cache, 'www.test');
      keep(cache, 'www.test', 300, { type: 28 });
      keep(cache, 'www.test', 300, { dnssec: true }, 'corp');
      keep(cache, 'other.test');
      expect(cache.clearName('WWW.Test.')).toBe(3);
      expect(cache.size).toBe(1);
      expect(cache.lookup(query('other.test'), 'default')).not.toBeNull();
    });
  });

  describe('prefetch', () => {
    test('marks one hit in the last tenth of the lifetime for a refresh when prefetch is on', () => {
      const { clock, cache } = setup({ prefetch: true });
      const q = query('www.test');
      keep(cache, 'www.test', 100);
      expect(cache.lookup(q, 'default')!.refresh).toBeUndefined();
      clock.advance(91_000);
      expect(cache.lookup(q, 'default')!.refresh).toBe(true);
      expect(cache.lookup(q, 'default')!.refresh).toBeUndefined();
      expect(cache.counters.prefetches).toBe(1);
    });

    test('never marks a hit for a refresh when prefetch is off (the default)', () => {
      const { clock, cache } = setup();
      keep(cache, 'www.test', 100);
      clock.advance(95_000);
      expect(cache.lookup(query('www.test'), 'default')!.refresh).toBeUndefined();
    });
  });

  test('publishes hits, misses, evictions, stale answers, entries and bytes as dnsseal_cache_* when scraped', () => {
    const { clock, cache } = setup({ maxEntries: 1, staleMaxS: 60 });
    const metrics = new Metrics();
    exportCacheMetrics(cache, metrics);
    keep(cache, 'a.test', 10);
    cache.lookup(query('a.test'), 'default');
    cache.lookup(query('b.test'), 'default');
    clock.advance(11_000);
    cache.stale(query('a.test'), 'default');
    keep(cache, 'b.test');
    const text = metrics.expose();
    expect(text).toContain('dnsseal_cache_hits_total 1');
    expect(text).toContain('dnsseal_cache_misses_total 1');
    expect(text).toContain('dnsseal_cache_stale_answers_total 1');
    expect(text).toContain('dnsseal_cache_inserts_total 2');
    expect(text).toContain('dnsseal_cache_evictions_total{reason="size"} 1');
    expect(text).toContain('dnsseal_cache_entries 1');
    expect(text).toMatch(new RegExp(`dnsseal_cache_bytes ${cache.bytes}\\b`));
    expect(text).toContain('dnsseal_cache_not_cached_total{reason="servfail"} 0');
  });
});

describe('cache/answer-cache buffers', () => {
  test('never writes into the upstream\'s bytes nor shares them when they come as a Node Buffer', () => {
    const clock = new FakeClock();
    const cache = new AnswerCache({ clock, maxTtlS: 100 });
    const q = query('www.test');
    const f = answer(q, { answers: [a('www.test', 604800, '192.0.2.1')] });
    // Bun's sockets hand out Buffers, whose slice() is a view.
    const buf = Buffer.concat([Buffer.from(f.bytes), Buffer.alloc(64)]).subarray(0, f.bytes.length);
    const before = hex(buf);
    cache.insert(q, 'default', { ...f, bytes: buf });
    expect(hex(buf)).toBe(before);
    const hit = cache.lookup(q, 'default')!;
    expect(ttls(hit.bytes)).toEqual([100]);
    buf.fill(0);
    hit.bytes.fill(0);
    expect(ttls(cache.lookup(q, 'default')!.bytes)).toEqual([100]);
  });
});
