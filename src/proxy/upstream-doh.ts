/**
 * DNS over HTTPS upstream (RFC 8484): POST of `application/dns-message` to
 * `https://ADDR:PORT/PATH`, over HTTP/2 by default, through Bun's fetch with a `FetchSession`
 * of its own (keep-alive pool, CA, SNI).
 *
 * What Bun 1.4.5's fetch does (checked against unbound 1.17 and node:http2 on loopback, see
 * README): HTTP/1.1 unless asked; `protocol: "http2"` offers only `h2` in ALPN and multiplexes
 * concurrent requests over a few kept connections; `tls.serverName` with an address in the URL
 * dials the address, sends the name as SNI and `:authority`, and checks the certificate against
 * the name (`ERR_TLS_CERT_ALTNAME_INVALID` otherwise; no request is sent). unbound's DoH
 * speaks HTTP/2 only (it resets HTTP/1.1), so HTTP/2 is the default; `http: "1.1"` exists for
 * servers without it.
 *
 * The query ID is 0 (RFC 8484 §4.1: HTTP matches answers to requests, and 0 keeps answers
 * cacheable); the answer must carry ID 0, QR and our exact question. A signed (TSIG) query is
 * signed over exactly the bytes posted, and the answer must pass `accept` or the exchange fails.
 */
import { questionMatches } from '../dns/answer-scan.ts';
import type { ParsedQuery } from '../dns/query.ts';
import { buildUpstreamQuery } from '../dns/response.ts';
import { FLAG_QR, HEADER_LEN } from '../dns/wire.ts';
import { DnssealError, errorMessage } from '../util/errors.ts';
import type { Logger } from '../util/log.ts';
import { padQuery } from './edns-padding.ts';
import type { ProxyCounters } from './proxy-counters.ts';
import { isTlsError } from './upstream-dot.ts';
import { UpstreamError, errnoOf, formatAddress, type ExchangeHooks, type Upstream } from './upstream.ts';

export interface DohUpstreamOptions {
  name: string;
  address: string;
  /** 443 unless configured. */
  port: number;
  /** URL path, `/dns-query` by default. */
  path: string;
  /** The name the certificate must be issued for; SNI and HTTP authority. */
  serverName: string;
  /** Trusted CA certificates (PEM text); unset: the system store. */
  ca?: string;
  timeoutMs: number;
  log: Logger;
  counters: ProxyCounters;
  /** `2` (default) or `1.1`. */
  http?: '2' | '1.1';
  /** Idle connections are closed after this long (default 30 s; Bun rounds up to 4 s steps). */
  idleMs?: number;
  /**
   * `upstream_source` cannot be honoured: Bun's fetch has no local-address option. Passing one
   * is refused here, so a config that needs it fails at start-up instead of leaving from
   * another address.
   */
  source?: string;
}

const MEDIA_TYPE = 'application/dns-message';

export class DohUpstream implements Upstream {
  readonly transport = 'https' as const;
  readonly name: string;
  readonly address: string;
  private readonly url: string;
  private readonly session: Bun.FetchSession;
  private readonly headers: Record<string, string>;
  private readonly inFlight = new Set<AbortController>();
  private closed = false;

  constructor(private readonly opts: DohUpstreamOptions) {
    if (opts.source !== undefined) {
      throw new DnssealError('proxy', 'upstream_source', `upstream "${opts.name}": upstream_source cannot be used with DNS over HTTPS (Bun's fetch cannot choose the local address); use tls:// instead`);
    }
    this.name = opts.name;
    const hostPort = formatAddress(opts.address, opts.port);
    this.url = `https://${hostPort}${opts.path}`;
    this.address = `https://${hostPort}${opts.path}#${opts.serverName}`;
    this.headers = {
      'content-type': MEDIA_TYPE,
      accept: MEDIA_TYPE,
      host: opts.port === 443 ? opts.serverName : `${opts.serverName}:${opts.port}`,
    };
    this.session = new Bun.FetchSession({
      tls: { serverName: opts.serverName, rejectUnauthorized: true, ...(opts.ca !== undefined ? { ca: opts.ca } : {}) },
      proxy: false,
      keepAlive: { idleTimeout: Math.max(1, Math.ceil((opts.idleMs ?? 30_000) / 1000)) },
    });
  }

  async exchange(query: ParsedQuery, hooks?: ExchangeHooks): Promise<Uint8Array> {
    if (this.closed) throw new UpstreamError('closed', `${this.address}: upstream closed`);
    const plain = padQuery(buildUpstreamQuery(0, query, 65535));
    const body = hooks ? hooks.sign(plain) : plain;
    const abort = new AbortController();
    this.inFlight.add(abort);
    const timer = setTimeout(() => abort.abort(new UpstreamError('timeout', `${this.address}: no answer within ${this.opts.timeoutMs} ms`)), this.opts.timeoutMs);
    let answer: Uint8Array;
    try {
      const res = await this.session.fetch(this.url, {
        method: 'POST',
        body,
        headers: this.headers,
        redirect: 'manual',
        signal: abort.signal,
        ...(this.opts.http === '1.1' ? { protocol: 'http1.1' as const } : { protocol: 'http2' as const }),
      });
      const type = res.headers.get('content-type') ?? '';
      if (res.status !== 200 || type.split(';')[0]!.trim().toLowerCase() !== MEDIA_TYPE) {
        await res.body?.cancel();
        throw new UpstreamError('http', `${this.address}: HTTP ${res.status} ${type ? `(${type})` : ''} instead of a DNS answer`.replace(/ +$/, ''));
      }
      answer = new Uint8Array(await res.arrayBuffer());
    } catch (err) {
      throw this.failure(err, abort);
    } finally {
      clearTimeout(timer);
      this.inFlight.delete(abort);
    }
    return this.check(answer, query, hooks);
  }

  close(): void {
    this.closed = true;
    for (const a of this.inFlight) a.abort(new UpstreamError('closed', `${this.address}: upstream closed`));
    this.inFlight.clear();
    this.session.close();
  }

  private check(answer: Uint8Array, query: ParsedQuery, hooks?: ExchangeHooks): Uint8Array {
    const c = this.opts.counters;
    if (answer.length < HEADER_LEN || answer.length > 65535 || !(answer[2]! & (FLAG_QR >>> 8))) {
      c.upstreamIgnored.malformed++;
      throw new UpstreamError('malformed', `${this.address}: the HTTP answer is not a DNS response (${answer.length} bytes)`);
    }
    if (answer[0] !== 0 || answer[1] !== 0) {
      c.upstreamIgnored.id++;
      throw new UpstreamError('malformed', `${this.address}: the answer's ID is not the query's (0)`);
    }
    if (!questionMatches(answer, query.question)) {
      c.upstreamIgnored.question++;
      throw new UpstreamError('malformed', `${this.address}: the answer is for another question`);
    }
    if (hooks && !hooks.accept(answer)) {
      c.upstreamIgnored.tsig++;
      throw new UpstreamError('unverified', `${this.address}: answer failed TSIG verification`);
    }
    return answer;
  }

  private failure(err: unknown, abort: AbortController): UpstreamError {
    if (err instanceof UpstreamError) return err;
    if (abort.signal.aborted && abort.signal.reason instanceof UpstreamError) {
      if (abort.signal.reason.reason === 'timeout') this.opts.counters.upstreamTimeouts++;
      return abort.signal.reason;
    }
    const errno = errnoOf(err);
    if (errno === 'ECONNREFUSED') return new UpstreamError('refused', `${this.address}: connection refused`, { cause: err, errno });
    if (isTlsError(err)) return new UpstreamError('tls', `${this.address}: certificate refused: ${errno}`, { cause: err, errno });
    if (errno === 'HTTP2Unsupported') return new UpstreamError('http', `${this.address}: the server does not speak HTTP/2 (set http: 1.1 for it)`, { cause: err, errno });
    return new UpstreamError('connect_failed', `${this.address}: ${errorMessage(err)}`, { cause: err, errno });
  }
}
