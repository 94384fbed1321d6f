/**
 * DNS over TLS upstream (RFC 7858, with RFC 7766 stream handling): one kept TLS connection,
 * queries pipelined on it (up to `maxInFlight` at once, each with its own random ID, answers
 * matched by ID in any order), 2-byte framing, padded queries (RFC 8467).
 *
 * - The certificate must chain to the system CA store (or `ca`) and be issued for
 *   `serverName` (RFC 7858 §4.2, the strict profile): a handshake that fails verification
 *   ends the connection before a byte of DNS is written — there is no fallback to clear DNS.
 *   Queries are written only from the `handshake` callback after it reports success (Bun calls
 *   `open` earlier, before the certificate is checked).
 * - The connection is opened on demand, closed after `idleMs` without queries in flight, and
 *   reopened on the next query. After a failed attempt (refused, TLS failure, closed before any
 *   answer) the next attempt waits a backoff (doubling, jittered, up to `backoffMaxMs`); queries
 *   arriving meanwhile wait for it within their own timeout.
 * - A connection that closes under queries in flight (a server idle-closing as we write)
 *   sends them once more on a fresh connection, with the same signed bytes.
 */
import type { Socket, TCPSocketConnectOptions } from 'bun';
import { questionMatches } from '../dns/answer-scan.ts';
import type { ParsedQuery } from '../dns/query.ts';
import { buildUpstreamQuery } from '../dns/response.ts';
import { FLAG_QR } from '../dns/wire.ts';
import type { Clock } from '../util/clock.ts';
import { errorMessage } from '../util/errors.ts';
import type { Logger } from '../util/log.ts';
import { padQuery } from './edns-padding.ts';
import type { ProxyCounters } from './proxy-counters.ts';
import { SSL_OP_NO_TLSV1, SSL_OP_NO_TLSV1_1 } from '../tls/tls-options.ts';
import { FrameReader, frame } from './tcp-framing.ts';
import { RandomIds, UpstreamError, errnoOf, formatAddress, type ExchangeHooks, type Upstream } from './upstream.ts';

export interface DotUpstreamOptions {
  name: string;
  address: string;
  /** 853 unless configured. */
  port: number;
  /** The name the certificate must be issued for (SNI too). */
  serverName: string;
  /** Trusted CA certificates (PEM text); unset: the system store. */
  ca?: string;
  timeoutMs: number;
  clock: Clock;
  log: Logger;
  counters: ProxyCounters;
  /** Local address to connect from (`upstream_source`). */
  source?: string;
  /** Close the connection after this long with nothing in flight (default 20 s). */
  idleMs?: number;
  /** Queries in flight on the connection at most; more wait their turn (default 128). */
  maxInFlight?: number;
  /** Queries waiting or in flight at most; more are refused with `send_failed` (default 4096). */
  maxPending?: number;
  /** First wait after a failed connection attempt (default 250 ms); doubles up to `backoffMaxMs` (default 30 s). */
  backoffMinMs?: number;
  backoffMaxMs?: number;
}

/** bun-types does not declare `localAddress` for Bun.connect (see upstream-tcp.ts). */
type ConnectWithSource = TCPSocketConnectOptions<Conn> & { localAddress?: string };

interface Pending {
  id: number;
  wire: Uint8Array;
  question: Uint8Array;
  hooks?: ExchangeHooks;
  deadline: number;
  /** The connection's answer count when it was written (no answer since: the connection is stuck). */
  answersAtSend: number;
  /** The connection it was written to; null while waiting. */
  conn: Conn | null;
  resent: boolean;
  resolve: (answer: Uint8Array) => void;
  reject: (err: Error) => void;
}

interface Conn {
  sock: Socket<Conn> | null;
  ready: boolean;
  done: boolean;
  reader: FrameReader;
  inFlight: number;
  answers: number;
  /** monoMs of the connection attempt. */
  openedAt: number;
  /** Bytes the socket did not take yet (written on drain). */
  out: Uint8Array | null;
  idle: ReturnType<typeof setTimeout> | null;
}

export interface DotStats {
  state: 'idle' | 'connecting' | 'ready' | 'backoff';
  /** Connections that completed their handshake since start. */
  connections: number;
  inFlight: number;
  waiting: number;
}

export class DotUpstream implements Upstream {
  readonly transport = 'tls' as const;
  readonly name: string;
  readonly address: string;
  private readonly ids = new RandomIds();
  /** Every query not yet answered: waiting and in flight, by ID (IDs are unique across both). */
  private readonly pending = new Map<number, Pending>();
  private readonly waiting: Pending[] = [];
  private conn: Conn | null = null;
  private connections = 0;
  private backoffMs = 0;
  private nextAttemptMs = 0;
  private retryTimer: ReturnType<typeof setTimeout> | null = null;
  private sweeper: ReturnType<typeof setInterval> | null = null;
  private closed = false;

  constructor(private readonly opts: DotUpstreamOptions) {
    this.name = opts.name;
    this.address = `tls://${formatAddress(opts.address, opts.port)}#${opts.serverName}`;
  }

  exchange(query: ParsedQuery, hooks?: ExchangeHooks): Promise<Uint8Array> {
    if (this.closed) return Promise.reject(new UpstreamError('closed', `${this.address}: upstream closed`));
    if (this.pending.size >= (this.opts.maxPending ?? 4096)) {
      this.opts.counters.upstreamSendFailed++;
      return Promise.reject(new UpstreamError('send_failed', `${this.address}: too many queries waiting`));
    }
    let id = this.ids.id();
    while (this.pending.has(id)) id = this.ids.id();
    const plain = padQuery(buildUpstreamQuery(id, query, 65535));
    const wire = frame(hooks ? hooks.sign(plain) : plain);
    return new Promise<Uint8Array>((resolve, reject) => {
      const p: Pending = { id, wire, question: query.question, hooks, deadline: this.opts.clock.monoMs() + this.opts.timeoutMs, answersAtSend: 0, conn: null, resent: false, resolve, reject };
      this.pending.set(id, p);
      this.waiting.push(p);
      this.startSweeper();
      this.pump();
    });
  }

  close(): void {
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    if (this.sweeper) clearInterval(this.sweeper);
    this.sweeper = null;
    this.failAll(new UpstreamError('closed', `${this.address}: upstream closed`));
    if (this.conn) this.endConn(this.conn);
  }

  stats(): DotStats {
    const c = this.conn;
    const state = c ? (c.ready ? 'ready' : 'connecting') : this.retryTimer ? 'backoff' : 'idle';
    return { state, connections: this.connections, inFlight: c?.inFlight ?? 0, waiting: this.waiting.length };
  }

  /** Writes waiting queries to a ready connection (in one write), or gets a connection going. */
  private pump(): void {
    if (this.closed || this.waiting.length === 0) return;
    const c = this.conn;
    if (!c) return this.connect();
    if (!c.ready) return;
    const max = this.opts.maxInFlight ?? 128;
    const batch: Uint8Array[] = [];
    let bytes = 0;
    while (this.waiting.length > 0 && c.inFlight < max) {
      const p = this.waiting.shift()!;
      if (this.pending.get(p.id) !== p) continue; // expired while waiting
      p.conn = c;
      p.answersAtSend = c.answers;
      c.inFlight++;
      batch.push(p.wire);
      bytes += p.wire.length;
    }
    if (batch.length === 0) return;
    if (c.idle) {
      clearTimeout(c.idle);
      c.idle = null;
    }
    const buf = batch.length === 1 ? batch[0]! : concat(batch, bytes);
    this.write(c, buf);
  }

  private write(c: Conn, buf: Uint8Array): void {
    if (!c.sock || c.done) return;
    if (c.out) {
      c.out = concat([c.out, buf], c.out.length + buf.length);
      return;
    }
    const n = c.sock.write(buf);
    if (n < buf.length) c.out = buf.subarray(Math.max(0, n));
  }

  private connect(): void {
    if (this.conn || this.retryTimer || this.closed) return;
    const wait = this.nextAttemptMs - this.opts.clock.monoMs();
    if (wait > 0) {
      this.retryTimer = setTimeout(() => {
        this.retryTimer = null;
        this.pump();
      }, wait);
      return;
    }
    const now = this.opts.clock.monoMs();
    const c: Conn = { sock: null, ready: false, done: false, reader: new FrameReader(), inFlight: 0, answers: 0, openedAt: now, out: null, idle: null };
    this.conn = c;
    const connectOpts: ConnectWithSource = {
      hostname: this.opts.address,
      port: this.opts.port,
      ...(this.opts.source !== undefined ? { localAddress: this.opts.source } : {}),
      // TLS 1.2 or 1.3 (RFC 8310 §9, RFC 8996): 1.0 and 1.1 are switched off.
      tls: { serverName: this.opts.serverName, rejectUnauthorized: true, secureOptions: SSL_OP_NO_TLSV1 | SSL_OP_NO_TLSV1_1, ...(this.opts.ca !== undefined ? { ca: this.opts.ca } : {}) },
      data: c,
      socket: {
        open: (s) => {
          c.sock = s;
          if (c.done) return void s.terminate();
          // Without it the first query waits for the ACK of our TLS Finished (Nagle against the
          // server's delayed ACK): about 40 ms on every new connection.
          s.setNoDelay(true);
        },
        handshake: (s, success, authError) => {
          c.sock = s;
          if (c.done) return;
          if (!success || authError) {
            const errno = errnoOf(authError) ?? 'TLS_HANDSHAKE';
            return this.lost(c, new UpstreamError('tls', `${this.address}: certificate refused: ${authError ? errorMessage(authError) : 'handshake failed'}`, { cause: authError, errno }));
          }
          c.ready = true;
          this.connections++;
          this.backoffMs = 0;
          this.opts.log.debug('upstream: TLS connection up', { upstream: this.name, server: this.address });
          this.pump();
        },
        data: (_s, chunk) => this.onData(c, chunk),
        drain: (s) => {
          const out = c.out;
          if (!out) return;
          c.out = null;
          const n = s.write(out);
          if (n < out.length) c.out = out.subarray(Math.max(0, n));
        },
        end: () => this.lost(c, new UpstreamError('closed', `${this.address}: server closed the connection`)),
        close: (_s, err) => this.lost(c, new UpstreamError('closed', `${this.address}: connection closed${err ? `: ${errorMessage(err)}` : ''}`, { cause: err })),
        error: (_s, err) => this.lost(c, new UpstreamError(isTlsError(err) ? 'tls' : 'closed', `${this.address}: ${errorMessage(err)}`, { cause: err })),
        connectError: (_s, err) => this.lost(c, connectFailure(this.address, err)),
      },
    };
    Bun.connect<Conn>(connectOpts).catch((err: unknown) => this.lost(c, connectFailure(this.address, err)));
  }

  private onData(c: Conn, chunk: Uint8Array): void {
    if (c.done) return;
    const r = c.reader.push(chunk);
    if (r.kind === 'bad') return this.lost(c, new UpstreamError('malformed', `${this.address}: server sent garbage (a frame shorter than a DNS header)`));
    for (const msg of r.frames) this.onAnswer(c, msg);
  }

  private onAnswer(c: Conn, msg: Uint8Array): void {
    const counters = this.opts.counters;
    const p = this.pending.get((msg[0]! << 8) | msg[1]!);
    if (!p || p.conn !== c || !(msg[2]! & (FLAG_QR >>> 8))) {
      counters.upstreamIgnored.id++;
      return;
    }
    if (!questionMatches(msg, p.question)) {
      counters.upstreamIgnored.question++;
      return;
    }
    c.answers++;
    this.finish(p);
    // Inside TLS nobody but the server writes: an answer that fails TSIG is the server's.
    if (p.hooks && !p.hooks.accept(msg)) {
      counters.upstreamIgnored.tsig++;
      p.reject(new UpstreamError('unverified', `${this.address}: answer failed TSIG verification`));
    } else p.resolve(msg);
  }

  private finish(p: Pending): void {
    this.pending.delete(p.id);
    const c = p.conn;
    if (!c) return;
    p.conn = null;
    c.inFlight--;
    if (this.waiting.length > 0) this.pump();
    else if (c.inFlight === 0 && !c.done && !c.idle) {
      c.idle = setTimeout(() => {
        c.idle = null;
        if (c.inFlight === 0 && this.conn === c) this.endConn(c);
      }, this.opts.idleMs ?? 20_000);
      c.idle.unref?.();
    }
  }

  /**
   * The connection is gone (or refused). Its queries in flight go back to the head of the queue
   * once — when it had answered before (a server closing an idle connection as we wrote) — and
   * fail otherwise; a connection that never answered counts as a failed attempt (backoff).
   */
  private lost(c: Conn, err: UpstreamError): void {
    if (c.done) return;
    c.done = true;
    if (c.idle) clearTimeout(c.idle);
    if (c.sock) c.sock.terminate();
    if (this.conn === c) this.conn = null;
    const healthy = c.ready && c.answers > 0;
    const again: Pending[] = [];
    for (const p of this.pending.values()) {
      if (p.conn !== c) continue;
      p.conn = null;
      if (healthy && !p.resent) {
        p.resent = true;
        again.push(p);
      } else {
        this.pending.delete(p.id);
        p.reject(err);
      }
    }
    if (!healthy) {
      this.backoffMs = Math.min(this.opts.backoffMaxMs ?? 30_000, this.backoffMs === 0 ? (this.opts.backoffMinMs ?? 250) : this.backoffMs * 2);
      this.nextAttemptMs = this.opts.clock.monoMs() + this.backoffMs * (0.75 + Math.random() / 2);
      // Queries waiting for this connection fail with it: the server is not answering now.
      for (const p of this.waiting) {
        if (this.pending.get(p.id) !== p) continue;
        this.pending.delete(p.id);
        p.reject(err);
      }
      this.waiting.length = 0;
      this.opts.log.debug('upstream: TLS connection failed', { upstream: this.name, server: this.address, errno: err.errno ?? null, err: err.message });
    }
    this.waiting.unshift(...again);
    this.pump();
  }

  private endConn(c: Conn): void {
    if (c.done) return;
    c.done = true;
    if (c.idle) clearTimeout(c.idle);
    if (this.conn === c) this.conn = null;
    c.sock?.end();
  }

  private failAll(err: UpstreamError): void {
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
    this.waiting.length = 0;
  }

  private startSweeper(): void {
    if (this.sweeper) return;
    const every = Math.max(10, Math.min(100, Math.floor(this.opts.timeoutMs / 4)));
    this.sweeper = setInterval(() => this.sweep(), every);
    this.sweeper.unref?.();
  }

  private sweep(): void {
    if (this.pending.size === 0) {
      if (this.sweeper) clearInterval(this.sweeper);
      this.sweeper = null;
      return;
    }
    const now = this.opts.clock.monoMs();
    let stuck: Conn | null = null;
    for (const p of [...this.pending.values()]) {
      if (p.deadline > now) continue;
      // Nothing came back on its connection since it was written: the connection is dead.
      if (p.conn && p.conn.answers === p.answersAtSend) stuck = p.conn;
      this.finish(p);
      this.opts.counters.upstreamTimeouts++;
      p.reject(new UpstreamError('timeout', `${this.address}: no answer within ${this.opts.timeoutMs} ms`));
    }
    // A connection that answers nothing any more (a path gone silent, a server hung) or whose
    // handshake never ends is dropped, so the next query (or probe) opens a fresh one.
    const c = this.conn;
    if (c && !c.ready && now - c.openedAt >= this.opts.timeoutMs) stuck = c;
    if (stuck && !stuck.done) this.lost(stuck, new UpstreamError('timeout', `${this.address}: ${stuck.ready ? 'connection stopped answering' : 'TLS connection not established'} within ${this.opts.timeoutMs} ms`));
  }
}

/** Certificate and handshake errors (Bun/BoringSSL codes), as opposed to transport ones. */
export function isTlsError(err: unknown): boolean {
  const code = errnoOf(err) ?? '';
  return /^ERR_TLS|^ERR_SSL|CERT|SSL|TLS|VERIFY|SELF_SIGNED|UNABLE_TO_GET_ISSUER|HANDSHAKE/.test(code);
}

function connectFailure(address: string, err: unknown): UpstreamError {
  const errno = errnoOf(err);
  const reason = errno === 'ECONNREFUSED' ? 'refused' : isTlsError(err) ? 'tls' : 'connect_failed';
  return new UpstreamError(reason, `${address}: connect failed: ${errorMessage(err)}`, { cause: err, errno });
}

function concat(parts: Uint8Array[], total: number): Uint8Array {
  const out = new Uint8Array(total);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
