/**
 * Forwarding (patent step S103): picks the upstream by name, shares one upstream query among
 * identical questions in flight, retries a truncated UDP answer over TCP, and reads the
 * answer once (`scanAnswer`) for every client waiting on it.
 *
 * "Identical" means: same upstream, same question bytes (name with its case, type, class),
 * and the same RD/CD/AD/DO bits — everything our upstream query is built from.
 */
import { scanAnswer, type AnswerScan } from '../dns/answer-scan.ts';
import type { ParsedQuery } from '../dns/query.ts';
import { FLAG_AD, FLAG_CD, FLAG_RD } from '../dns/wire.ts';
import { DnssealError } from '../util/errors.ts';
import type { ProxyCounters } from './proxy-counters.ts';
import { UpstreamError, type Upstream } from './upstream.ts';

export interface Forwarded {
  /** The upstream answer as received (our ID in it). */
  bytes: Uint8Array;
  scan: AnswerScan;
  /** Which transport produced `bytes`. */
  via: 'udp' | 'tcp';
}

export interface UpstreamPair {
  udp: Upstream;
  tcp: Upstream;
}

export class Forwarder {
  private readonly inflight = new Map<string, Promise<Forwarded>>();

  constructor(
    private readonly upstreams: Map<string, UpstreamPair>,
    private readonly counters: ProxyCounters,
  ) {
    if (!upstreams.has('default')) throw new DnssealError('proxy', 'no_default_upstream', 'no upstream named "default"');
  }

  /** Names of the configured upstreams. */
  names(): string[] {
    return [...this.upstreams.keys()];
  }

  forward(query: ParsedQuery, upstreamName: string | null): Promise<Forwarded> {
    const name = upstreamName ?? 'default';
    const pair = this.upstreams.get(name);
    if (!pair) return Promise.reject(new UpstreamError('closed', `no upstream named "${name}"`));
    const key = `${name}\u0000${query.qnameExact}\u0000${query.qtype}\u0000${query.qclass}\u0000${query.flags & (FLAG_RD | FLAG_CD | FLAG_AD)}\u0000${query.edns?.dnssecOk ? 1 : 0}`;
    const shared = this.inflight.get(key);
    if (shared) {
      this.counters.upstreamShared++;
      return shared;
    }
    // One promise per upstream query: the key is cleared in the same callbacks that read
    // the answer (no extra promise hop per query on the hot path).
    const done = () => this.inflight.delete(key);
    const p = pair.udp.exchange(query).then(
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
    this.inflight.set(key, p);
    return p;
  }

  close(): void {
    for (const pair of this.upstreams.values()) {
      pair.udp.close();
      pair.tcp.close();
    }
  }

  private async retryOverTcp(pair: UpstreamPair, query: ParsedQuery): Promise<Forwarded> {
    this.counters.upstreamTcpRetries++;
    const bytes = await pair.tcp.exchange(query);
    return { bytes, scan: read(bytes, query), via: 'tcp' };
  }
}

function read(bytes: Uint8Array, query: ParsedQuery): AnswerScan {
  try {
    return scanAnswer(bytes, query.question.length, query.qname);
  } catch (err) {
    throw new UpstreamError('malformed', `malformed answer for ${query.qname}: ${(err as Error).message}`, { cause: err });
  }
}
