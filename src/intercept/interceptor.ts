/**
 * The intercept step of the pipeline, between register (S105) and respond (S106): allocate an
 * intercept address for every address the answer gives the client, then rewrite the answer.
 * Throws (pool_exhausted, map_full, WireError…) → the pipeline answers SERVFAIL; nothing here
 * ever lets a real protected address through to the client.
 */
import type { AnswerScan } from '../dns/answer-scan.ts';
import { DnssealError } from '../util/errors.ts';
import type { Logger } from '../util/log.ts';
import { isMapped, parseAddr } from './address.ts';
import type { InterceptPool } from './pool.ts';
import { rewriteAnswer } from '../dns/answer-rewrite.ts';

/** TTL cap of rewritten records (seconds) unless configured. */
export const DEFAULT_TTL_CAP_S = 60;

export interface InterceptorOptions {
  pool: InterceptPool;
  /** TTL cap of rewritten records, seconds (default 60). */
  ttlCapS?: number;
  log?: Logger;
  /** Called when an answer is refused because the pool is exhausted (metrics). */
  onExhausted?: () => void;
}

export interface Intercepted {
  /** The rewritten answer (whole message, upstream OPT still in place: re-scan before relayAnswer). */
  bytes: Uint8Array;
  /** real → intercept */
  map: Map<string, string>;
}

export class Interceptor {
  constructor(private readonly opts: InterceptorOptions) {}

  /**
   * `answer` is the upstream's bytes, `scan` its scanAnswer result, `group` the decision's client
   * group. Addresses of a family without a pool, and IPv4-mapped ones, get no intercept address
   * and are therefore removed from the answer by the rewrite.
   */
  apply(group: number, answer: Uint8Array, scan: AnswerScan): Intercepted {
    const cap = this.opts.ttlCapS ?? DEFAULT_TTL_CAP_S;
    const reals: string[] = [];
    for (const text of scan.addrs) {
      const a = parseAddr(text);
      if (isMapped(a) || !this.opts.pool.hasFamily(a.family)) continue;
      reals.push(a.text);
    }
    const served = Math.min(scan.minTtl, cap);
    let map: Map<string, string>;
    try {
      map = this.opts.pool.allocate(group, reals, served, scan.chain);
    } catch (err) {
      if (err instanceof DnssealError && err.code === 'pool_exhausted') this.opts.onExhausted?.();
      throw err;
    }
    const r = rewriteAnswer(answer, { map, ttlCapS: cap });
    if (r.removed && this.opts.log?.enabled('debug')) this.opts.log.debug('intercept: records removed from the answer', { removed: r.removed });
    return { bytes: r.bytes, map };
  }
}
