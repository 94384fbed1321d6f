/**
 * Forwarding (patent step S103): picks the upstream by name, shares one upstream query among
 * identical questions in flight, retries a truncated UDP answer over TCP, and reads the
 * answer once (`scanAnswer`) for every client waiting on it.
 *
 * "Identical" means: same upstream, same question bytes (name with its case, type, class),
 * and the same RD/CD/AD/DO bits — everything our upstream query is built from (the cache's
 * key uses the same bits: `questionBits`, src/cache/cache-key.ts).
 *
 * Each upstream name is an `UpstreamSet` (its servers with failover), seen here through its
 * UDP/TCP pair view (`pairsOf`). A reload swaps the pairs (`setUpstreams`); queries in flight
 * finish on the old ones, and new queries do not join them.
 */
import { scanAnswer, type AnswerScan } from '../dns/answer-scan.ts';
import type { ParsedQuery } from '../dns/query.ts';
import { questionBits } from '../cache/cache-key.ts';
import { DnssealError } from '../util/errors.ts';
import type { ProxyCounters } from './proxy-counters.ts';
import type { UpstreamSet } from './upstream-set.ts';
import { UpstreamError, type ExchangeHooks, type Upstream } from './upstream.ts';

export interface Forwarded {
  /** The upstream answer as received (our ID in it). */
  bytes: Uint8Array;
  scan: AnswerScan;
  /** Which transport produced `bytes`. */
  via: 'udp' | 'tcp';
  /** The hooks of the exchange that produced `bytes` (a policy-server upstream, #5). */
  hooks?: ExchangeHooks;
}

/** Makes fresh hooks for each transport attempt (UDP, then TCP on TC): each is signed anew. */
export type HooksFactory = () => ExchangeHooks;

export interface UpstreamPair {
  udp: Upstream;
  tcp: Upstream;
}

/** Each set's pair view (`UpstreamSet.pair()`), by name. */
export function pairsOf(sets: ReadonlyMap<string, UpstreamSet>): Map<string, UpstreamPair> {
  return new Map([...sets].map(([name, set]) => [name, set.pair()]));
}

/** One upstream query in flight; several identical client queries may wait on it. */
interface InFlight {
  upstream: string;
  question: Uint8Array;
  /** RD/CD/AD bits and DO (0x8000 — outside the header bits used). */
  bits: number;
  promise: Promise<Forwarded>;
}

export class Forwarder {
  /**
   * Keyed by a hash of the question bytes; the identity itself is compared in the (nearly
   * always one-element) list, so no key string is built and hashed per query.
   */
  private inflight = new Map<number, InFlight[]>();

  constructor(
    private upstreams: Map<string, UpstreamPair>,
    private readonly counters: ProxyCounters,
  ) {
    if (!upstreams.has('default')) throw new DnssealError('proxy', 'no_default_upstream', 'no upstream named "default"');
  }

  /**
   * From the next query on, `upstreams` answer (a reload). Queries in flight finish on the old
   * pairs, which the caller closes once they are done; new queries do not join them.
   */
  setUpstreams(upstreams: Map<string, UpstreamPair>): void {
    if (!upstreams.has('default')) throw new DnssealError('proxy', 'no_default_upstream', 'no upstream named "default"');
    this.upstreams = upstreams;
    this.inflight = new Map();
  }

  /** Names of the configured upstreams. */
  names(): string[] {
    return [...this.upstreams.keys()];
  }

  forward(query: ParsedQuery, upstreamName: string | null, hooks?: HooksFactory): Promise<Forwarded> {
    const name = upstreamName ?? 'default';
    const pair = this.upstreams.get(name);
    if (!pair) return Promise.reject(new UpstreamError('closed', `no upstream named "${name}"`));
    // A signed exchange is never shared: its verdict belongs to this query alone.
    if (hooks) return this.signedExchange(pair, query, hooks);
    const bits = questionBits(query);
    const key = query.questionHash;
    const inflight = this.inflight;
    let list = inflight.get(key);
    if (list) {
      for (const f of list) {
        if (f.upstream === name && f.bits === bits && sameBytes(f.question, query.question)) {
          this.counters.upstreamShared++;
          return f.promise;
        }
      }
    } else {
      list = [];
      inflight.set(key, list);
    }
    const entry: InFlight = { upstream: name, question: query.question, bits, promise: null as unknown as Promise<Forwarded> };
    const waiting = list;
    // The entry is removed in the same callbacks that read the answer (no extra promise hop).
    const done = () => {
      const i = waiting.indexOf(entry);
      if (i >= 0) waiting.splice(i, 1);
      if (waiting.length === 0 && inflight.get(key) === waiting) inflight.delete(key);
    };
    entry.promise = pair.udp.exchange(query).then(
      (bytes) => {
        done();
        const scan = read(bytes, query);
        // A truncated answer may lack addresses that need protecting: get the whole of it.
        return scan.truncated ? this.retryOverTcp(pair, query) : { bytes, scan, via: 'udp' as const };
      },
      (err: unknown) => {
        done();
        throw err;
      },
    );
    list.push(entry);
    return entry.promise;
  }

  close(): void {
    for (const pair of this.upstreams.values()) {
      pair.udp.close();
      pair.tcp.close();
    }
  }

  private async signedExchange(pair: UpstreamPair, query: ParsedQuery, makeHooks: HooksFactory): Promise<Forwarded> {
    let hooks = makeHooks();
    let bytes = await pair.udp.exchange(query, hooks);
    let via: 'udp' | 'tcp' = 'udp';
    let scan = read(bytes, query);
    if (scan.truncated) {
      this.counters.upstreamTcpRetries++;
      hooks = makeHooks();
      bytes = await pair.tcp.exchange(query, hooks);
      via = 'tcp';
      scan = read(bytes, query);
    }
    return { bytes, scan, via, hooks };
  }

  private async retryOverTcp(pair: UpstreamPair, query: ParsedQuery): Promise<Forwarded> {
    this.counters.upstreamTcpRetries++;
    const bytes = await pair.tcp.exchange(query);
    return { bytes, scan: read(bytes, query), via: 'tcp' };
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function read(bytes: Uint8Array, query: ParsedQuery): AnswerScan {
  try {
    return scanAnswer(bytes, query.question.length, query.qname);
  } catch (err) {
    throw new UpstreamError('malformed', `malformed answer for ${query.qname}: ${(err as Error).message}`, { cause: err });
  }
}
