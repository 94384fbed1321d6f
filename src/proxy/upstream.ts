/**
 * One upstream DNS server reached over one transport (blocky/dnsproxy style: an interface,
 * one file per transport). An upstream sends the query it is given with a fresh random ID,
 * accepts only an answer that matches source, ID and question, and resolves with the
 * answer's bytes — or rejects with a typed `UpstreamError`; it never hangs past its timeout.
 */
import type { ParsedQuery } from '../dns/query.ts';
import { DnssealError } from '../util/errors.ts';

export type UpstreamTransport = 'udp' | 'tcp';

export interface Upstream {
  readonly name: string;
  readonly transport: UpstreamTransport;
  /** `ADDR:PORT` for logs. */
  readonly address: string;
  /**
   * Sends `query`'s question (its ID is replaced by a fresh random one). Resolves with the
   * matching answer; its ID is ours, the caller patches in the client's.
   */
  exchange(query: ParsedQuery): Promise<Uint8Array>;
  close(): void;
}

export type UpstreamFailure = 'timeout' | 'send_failed' | 'connect_failed' | 'closed' | 'malformed';

export class UpstreamError extends DnssealError {
  readonly reason: UpstreamFailure;
  constructor(reason: UpstreamFailure, message: string, options?: { cause?: unknown }) {
    super('upstream', `upstream_${reason}`, message, options);
    this.name = 'UpstreamError';
    this.reason = reason;
  }
}

/** A source of 16-bit query IDs drawn from the CSPRNG in batches (RFC 5452 §9.2). */
export class RandomIds {
  private pool = new Uint16Array(4096);
  private next = this.pool.length;

  id(): number {
    if (this.next >= this.pool.length) {
      crypto.getRandomValues(this.pool);
      this.next = 0;
    }
    return this.pool[this.next++]!;
  }
}

export function formatAddress(address: string, port: number): string {
  return address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
}
