import { describe, expect, test } from 'bun:test';
import { AnswerCache, isCached, type AnswerCacheOptions } from '../../src/cache/answer-cache.ts';
import { CachingForwarder } from '../../src/cache/caching-forwarder.ts';
import type { ParsedQuery } from '../../src/dns/query.ts';
import type { Forwarded, HooksFactory } from '../../src/proxy/forwarder.ts';
import { UpstreamError } from '../../src/proxy/upstream.ts';
import { FakeClock } from '../../src/util/clock.ts';
import { a, answer, query } from './answers.ts';

/** An upstream double: answers A 192.0.2.<n> (n = call number) or fails as told; records calls. */
class Upstream {
  calls: Array<{ name: string; upstream: string | null; signed: boolean }> = [];
  fail: Error | null = null;
  rcode: 'NOERROR' | 'SERVFAIL' = 'NOERROR';
  ttl = 300;
  /** When set, answers wait for release(). */
  held: Array<() => void> | null = null;

  async forward(q: ParsedQuery, upstream: string | null, hooks?: HooksFactory): Promise<Forwarded> {
    this.calls.push({ name: q.qname, upstream, signed: hooks !== undefined });
    const n = this.calls.length;
    if (this.held) await new Promise<void>((resolve) => this.held!.push(resolve));
    if (this.fail) throw this.fail;
    return answer(q, this.rcode === 'SERVFAIL' ? { rcode: 'SERVFAIL' } : { answers: [a(q.qname, this.ttl, `192.0.2.${n}`)] });
  }
}

function setup(opts: Partial<AnswerCacheOptions> = {}) {
  const clock = new FakeClock();
  const cache = new AnswerCache({ clock, ...opts });
  const up = new Upstream();
  return { clock, cache, up, fwd: new CachingForwarder(up, cache) };
}

/** Waits (bounded) until `cond` holds; fails naming what was awaited. */
async function until(what: string, cond: () => boolean): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(1);
  }
}

describe('cache/caching-forwarder', () => {
  test('asks the upstream once and answers the second query from the cache when it repeats', async () => {
    const { fwd, up, clock } = setup();
    const first = await fwd.forward(query('www.test'), null);
    expect(isCached(first)).toBe(false);
    clock.advance(10_000);
    const second = await fwd.forward(query('www.test', { id: 2 }), null);
    expect(up.calls).toHaveLength(1);
    expect(isCached(second)).toBe(true);
    expect(second.scan.addrs).toEqual(['192.0.2.1']);
    expect(second.scan.minTtl).toBe(290);
  });

  test('keys a null upstream as "default" when the pipeline names none', async () => {
    const { fwd, up } = setup();
    await fwd.forward(query('www.test'), null);
    await fwd.forward(query('www.test'), 'default');
    await fwd.forward(query('www.test'), 'corp');
    expect(up.calls.map((c) => c.upstream)).toEqual([null, 'corp']);
  });

  test('never answers from nor fills the cache when the exchange is signed (policy server)', async () => {
    const { fwd, up, cache } = setup();
    const hooks = () => ({ sign: (w: Uint8Array) => w, accept: () => true });
    await fwd.forward(query('www.test'), null);
    const signed = await fwd.forward(query('www.test'), null, hooks);
    expect(isCached(signed)).toBe(false);
    expect(up.calls.map((c) => c.signed)).toEqual([false, true]);
    expect(cache.counters.hits).toBe(0);
  });

  test('keeps the answer shared by identical queries in flight once when they all resolve', async () => {
    const { cache } = setup();
    const shared = answer(query('www.test'), { answers: [a('www.test', 300, '192.0.2.1')] });
    const fwd = new CachingForwarder({ forward: () => Promise.resolve(shared) }, cache);
    await Promise.all([fwd.forward(query('www.test', { id: 1 }), null), fwd.forward(query('www.test', { id: 2 }), null)]);
    expect(cache.counters.inserts).toBe(1);
    expect(cache.size).toBe(1);
  });

  test.each([
    ['times out', new UpstreamError('timeout', 'upstream: timeout'), 'NOERROR'],
    ['answers SERVFAIL', null, 'SERVFAIL'],
  ] as const)('serves the stale entry when the upstream %s after the entry expired', async (_w, fail, rcode) => {
    const { fwd, up, clock } = setup({ staleMaxS: 3600 });
    await fwd.forward(query('www.test'), null);
    clock.advance(301_000);
    up.fail = fail;
    up.rcode = rcode;
    const out = (await fwd.forward(query('www.test'), null)) as Forwarded & { cache?: string };
    expect(out.cache).toBe('stale');
    expect(out.scan.minTtl).toBe(30);
    expect(out.scan.addrs).toEqual(['192.0.2.1']);
    // Within the recheck window the upstream is not asked again.
    await fwd.forward(query('www.test'), null);
    expect(up.calls).toHaveLength(2);
  });

  test('passes the failure on when serve-stale is off and the upstream fails', async () => {
    const { fwd, up, clock } = setup();
    await fwd.forward(query('www.test'), null);
    clock.advance(301_000);
    up.fail = new UpstreamError('timeout', 'upstream: timeout');
    await expect(fwd.forward(query('www.test'), null)).rejects.toThrow('timeout');
  });

  test('refreshes the entry in the background once when a hit comes in the last tenth of its lifetime', async () => {
    const { fwd, up, clock, cache } = setup({ prefetch: true });
    await fwd.forward(query('www.test'), null);
    clock.advance(280_000);
    up.held = [];
    const hit = await fwd.forward(query('www.test'), null);
    expect(isCached(hit)).toBe(true);
    await fwd.forward(query('www.test'), null);
    expect(up.calls).toHaveLength(2);
    for (const release of up.held.splice(0)) release();
    await until('the prefetched answer in the cache', () => cache.counters.inserts === 2);
    clock.advance(100_000);
    const after = await fwd.forward(query('www.test'), null);
    expect(after.scan.addrs).toEqual(['192.0.2.2']);
    expect(up.calls).toHaveLength(2);
  });

  test('goes straight to the upstream when the cache is off', async () => {
    const { fwd, up, cache } = setup({ maxEntries: 0 });
    await fwd.forward(query('www.test'), null);
    await fwd.forward(query('www.test'), null);
    expect(up.calls).toHaveLength(2);
    expect(cache.counters.misses).toBe(0);
  });
});
