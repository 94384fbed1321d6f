/**
 * The cache in front of the forwarder (S103): a `Forwarder`-shaped stage the pipeline calls as
 * it calls the forwarder, so a hit enters the pipeline exactly where a fresh upstream answer
 * does — decide → register → respond run for every hit, with the client's own group and the
 * remaining TTL, before anything is released. The pipeline cannot tell a hit from an upstream
 * answer except by asking (`isCached`, for counters and the query log); it cannot skip a step
 * for one.
 *
 * - hit: the aged copy (`AnswerCache.lookup`); the upstream is not asked (unless the entry is
 *   due for a prefetch, which runs in the background and only refreshes the cache).
 * - miss: the forwarder (which shares identical questions in flight: the shared answer is kept
 *   once), then the answer is kept if it may be.
 * - the upstream failed (timeout, error) or answered SERVFAIL: a stale entry, if serve-stale is
 *   on and one is young enough; else the failure goes on as before.
 * - a signed exchange (policy server, #5) passes straight through: never answered from the
 *   cache, never kept (its verdict belongs to that one query).
 */
import type { ParsedQuery } from '../dns/query.ts';
import { RCODE_SERVFAIL } from '../dns/wire.ts';
import type { Forwarded, Forwarder, HooksFactory } from '../proxy/forwarder.ts';
import type { AnswerCache } from './answer-cache.ts';

export type ForwardApi = Pick<Forwarder, 'forward'>;

export class CachingForwarder implements ForwardApi {
  constructor(
    private readonly inner: ForwardApi,
    private readonly cache: AnswerCache,
  ) {}

  forward(query: ParsedQuery, upstreamName: string | null, hooks?: HooksFactory): Promise<Forwarded> {
    const r = this.resolveNow(query, upstreamName, hooks);
    return r instanceof Promise ? r : Promise.resolve(r);
  }

  /**
   * `forward`, with a hit returned as it is rather than in a promise: the pipeline goes on with
   * it in the same turn (decide → register → respond all the same; see pipeline.ts).
   */
  resolveNow(query: ParsedQuery, upstreamName: string | null, hooks?: HooksFactory): Forwarded | Promise<Forwarded> {
    if (hooks || !this.cache.enabled) return this.inner.forward(query, upstreamName, hooks);
    // The forwarder's own default: the key must name the upstream that really answers.
    const upstream = upstreamName ?? 'default';
    const hit = this.cache.lookup(query, upstream);
    if (hit) {
      if (hit.refresh) this.prefetch(query, upstreamName, upstream);
      return hit;
    }
    return this.inner.forward(query, upstreamName).then(
      (answer) => this.answered(query, upstream, answer),
      (err: unknown) => {
        const stale = this.cache.stale(query, upstream);
        if (stale) return stale;
        throw err;
      },
    );
  }

  private answered(query: ParsedQuery, upstream: string, answer: Forwarded): Forwarded {
    if (answer.scan.rcode === RCODE_SERVFAIL) {
      const stale = this.cache.stale(query, upstream);
      if (stale) return stale;
    }
    this.cache.insert(query, upstream, answer);
    return answer;
  }

  /** Asks the upstream again before the entry runs out; the answer only goes into the cache. */
  private prefetch(query: ParsedQuery, upstreamName: string | null, upstream: string): void {
    this.inner.forward(query, upstreamName).then(
      (answer) => {
        if (answer.scan.rcode !== RCODE_SERVFAIL) this.cache.insert(query, upstream, answer);
      },
      () => {
        /* the entry runs out as it would have; the next query asks again */
      },
    );
  }
}
