/**
 * One upstream DNS server reached over one transport (blocky/dnsproxy style: an interface,
 * one file per transport). An upstream sends the query it is given with a fresh random ID,
 * accepts only an answer that matches source, ID and question, and resolves with the
 * answer's bytes — or rejects with a typed `UpstreamError`; it never hangs past its timeout.
 */
import type { ParsedQuery } from '../dns/query.ts';
import { DnssealError } from '../util/errors.ts';

/** `tls`: DNS over TLS (RFC 7858, upstream-dot.ts); `https`: DNS over HTTPS (RFC 8484, upstream-doh.ts). */
export type UpstreamTransport = 'udp' | 'tcp' | 'tls' | 'https';

/**
 * Per-exchange hooks for a policy-server upstream (#5, src/policy-server/proxy-side.ts
 * `PolicyExchange`): `sign` the exact bytes about to be sent (ID already set); `accept` each
 * answer that matched ID and question — false means "not the server's", UDP keeps waiting
 * (like a wrong ID), TCP fails the exchange with `unverified`.
 */
export interface ExchangeHooks {
  sign(wire: Uint8Array): Uint8Array;
  accept(answer: Uint8Array): boolean;
}

export interface Upstream {
  readonly name: string;
  readonly transport: UpstreamTransport;
  /** `ADDR:PORT` for logs. */
  readonly address: string;
  /**
   * Sends `query`'s question (its ID is replaced by a fresh random one). Resolves with the
   * matching answer; its ID is ours, the caller patches in the client's.
   */
  exchange(query: ParsedQuery, hooks?: ExchangeHooks): Promise<Uint8Array>;
  close(): void;
}

/**
 * `refused`: the server's host said nothing listens there (ICMP port unreachable on a connected
 * UDP socket, RST on connect: ECONNREFUSED). `tls`: the TLS handshake failed — certificate not
 * trusted or not for the configured name; nothing was sent. `http`: a DoH answer that is not a
 * 200 with a DNS message.
 */
export type UpstreamFailure = 'timeout' | 'send_failed' | 'connect_failed' | 'refused' | 'tls' | 'http' | 'closed' | 'malformed' | 'unverified';

export class UpstreamError extends DnssealError {
  readonly reason: UpstreamFailure;
  /** The system or library error code behind it (`ECONNREFUSED`, `ERR_TLS_CERT_ALTNAME_INVALID`), when known. */
  readonly errno?: string;
  constructor(reason: UpstreamFailure, message: string, options?: { cause?: unknown; errno?: string }) {
    super('upstream', `upstream_${reason}`, message, options);
    this.name = 'UpstreamError';
    this.reason = reason;
    const errno = options?.errno ?? errnoOf(options?.cause);
    if (errno !== undefined) this.errno = errno;
  }
}

/** The `code` of a system or Bun error (`ECONNREFUSED`, `ERR_TLS_CERT_ALTNAME_INVALID`), if it has one. */
export function errnoOf(err: unknown): string | undefined {
  if (err instanceof UpstreamError) return err.errno;
  const code = (err as { code?: unknown } | null | undefined)?.code;
  return typeof code === 'string' && code !== '' ? code : undefined;
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
