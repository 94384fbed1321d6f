/**
 * The accepting side (`dnsseal tls-accept`, or a `tls_accept:` section of `run`): mutual TLS
 * 1.3 with client certificates from one CA, a CONNECT per connection, a TCP connection onward
 * only to what the client's allow-list permits, then raw bytes both ways.
 *
 * Every refusal after the handshake is an HTTP reply with a reason (`Dnsseal-Reason`) and a
 * clean close; before it (garbage, no certificate, a slow handshake) the TLS stack's alert or
 * a plain close. Limits keep one bad client from starving the others:
 * - unauthenticated connections (TCP up, handshake not done) are at most `maxPending`; a new
 *   one evicts the oldest, so a flood of idle connections only pushes itself out, and each is
 *   closed after `handshakeTimeoutMs` anyway;
 * - an authenticated client has `requestTimeoutMs` to send its CONNECT head and at most
 *   `maxPerClient` connections (429 beyond);
 * - all connections together are at most `maxConnections` (a new one evicts the oldest
 *   unauthenticated one, or is closed when there is none).
 */
import type { Socket, TCPSocketListener } from 'bun';
import type { Logger } from '../util/log.ts';
import { systemResolver, type AcceptPolicy, type ClientPolicy, type NameResolver } from './accept-policy.ts';
import { BunEndpoint, endpointHandler, type SockData } from './endpoint.ts';
import { MAX_HEAD_BYTES, authority, encodeReply, parseConnectRequest, type ConnectRequest, type Refusal } from './preamble.ts';
import { certDnsNames } from './san.ts';
import { Splice } from './splice.ts';
import { serverTls, sessionProblem } from './tls-options.ts';
import type { TlsMetrics } from './tls-metrics.ts';
import type { AcceptOutcome, HandshakeFailure, TlsCredentials } from './types.ts';

export interface AcceptLimits {
  /** TCP accept → verified client certificate (default 10 s). */
  handshakeTimeoutMs: number;
  /** Verified session → complete CONNECT head (default 10 s). */
  requestTimeoutMs: number;
  /** TCP connect to the destination (default 10 s). */
  connectTimeoutMs: number;
  maxConnections: number;
  maxPending: number;
  maxPerClient: number;
}

export const DEFAULT_ACCEPT_LIMITS: AcceptLimits = {
  handshakeTimeoutMs: 10_000,
  requestTimeoutMs: 10_000,
  connectTimeoutMs: 10_000,
  maxConnections: 8192,
  maxPending: 1024,
  maxPerClient: 512,
};

export interface AcceptorOptions {
  /** One address or several (one listener each; limits and counts are shared). */
  listen: { host: string; port: number } | Array<{ host: string; port: number }>;
  credentials: TlsCredentials;
  policy: AcceptPolicy;
  limits?: Partial<AcceptLimits>;
  log: Logger;
  metrics: TlsMetrics;
  /** Resolves names for `names` allow entries (default: the system resolver). */
  resolve?: NameResolver;
  now?: () => number;
}

type State = 'handshake' | 'request' | 'connecting' | 'relaying' | 'done';

export class TlsAcceptor {
  readonly limits: AcceptLimits;
  private listeners: TCPSocketListener<SockData>[] = [];
  /** Every open connection (for `stop(true)`). */
  readonly conns = new Set<AcceptConn>();
  /** Unauthenticated connections, oldest first. */
  readonly pending = new Set<AcceptConn>();
  readonly perClient = new Map<string, number>();
  total = 0;
  readonly now: () => number;
  readonly resolve: NameResolver;
  readonly upstreamHandler = endpointHandler((s: Socket<SockData>) => s.data.ep.attach(s));

  constructor(readonly opts: AcceptorOptions) {
    this.limits = { ...DEFAULT_ACCEPT_LIMITS, ...opts.limits };
    this.now = opts.now ?? (() => performance.now());
    this.resolve = opts.resolve ?? systemResolver;
  }

  /** Listens on every address; throws (having closed what it opened) when one cannot be bound. */
  start(): void {
    const tls = serverTls(this.opts.credentials);
    const handler = endpointHandler((s) => this.accepted(s));
    try {
      for (const l of Array.isArray(this.opts.listen) ? this.opts.listen : [this.opts.listen]) {
        const listener = Bun.listen<SockData>({ hostname: l.host, port: l.port, allowHalfOpen: true, tls, socket: handler });
        this.listeners.push(listener);
        this.opts.log.info('tls acceptor listening', { addr: hostPort(l.host, listener.port) });
      }
    } catch (err) {
      this.stop();
      throw err;
    }
  }

  /** The first listener's port (0 before start). */
  get port(): number {
    return this.listeners[0]?.port ?? 0;
  }

  /** Every bound address, `ADDR:PORT`. */
  get addresses(): string[] {
    return this.listeners.map((l) => hostPort(l.hostname, l.port));
  }

  /** Stops listening; open connections are reset (both sides of a flow) when `closeActive`. */
  stop(closeActive = false): void {
    if (closeActive) for (const c of [...this.conns]) c.abort();
    for (const l of this.listeners) l.stop(closeActive);
    this.listeners = [];
  }

  private accepted(sock: Socket<SockData>): void {
    const ep = new BunEndpoint();
    sock.data = { ep };
    ep.attach(sock);
    const conn = new AcceptConn(this, ep, `${sock.remoteAddress}:${sock.remotePort}`);
    if (this.pending.size >= this.limits.maxPending || this.total >= this.limits.maxConnections) {
      const oldest = this.pending.values().next().value;
      if (oldest) oldest.evict();
      else return conn.reject();
    }
    conn.start();
  }
}

function hostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/** One accepted connection, from TCP accept to close. */
class AcceptConn {
  state: State = 'handshake';
  private timer: ReturnType<typeof setTimeout> | undefined;
  private head = new Uint8Array(0);
  private clientKey: string | null = null;
  private readonly started: number;
  private log: Logger;
  private readonly bytes = { upstream: 0, downstream: 0 };
  private splice: Splice | undefined;

  constructor(
    private readonly acc: TlsAcceptor,
    private readonly ep: BunEndpoint,
    private readonly from: string,
  ) {
    this.started = acc.now();
    this.log = acc.opts.log.child({ side: 'accept', from });
  }

  start(): void {
    const a = this.acc;
    a.total++;
    a.conns.add(this);
    a.pending.add(this);
    a.opts.metrics.active.pending++;
    this.ep.bind({
      // Bun may deliver the client's first bytes before the handshake callback: keep them.
      data: (d) => this.keep(d),
      drain() {},
      end() {},
      close: () => this.handshakeFailed('closed', 'closed during the handshake'),
    });
    this.ep.onHandshake = (ok, err) => this.onHandshake(ok, err);
    this.timer = setTimeout(() => this.handshakeFailed('timeout', `no handshake within ${a.limits.handshakeTimeoutMs} ms`), a.limits.handshakeTimeoutMs);
  }

  /** Bytes before the head is parsed, bounded (the parser refuses past MAX_HEAD_BYTES). */
  private keep(chunk: Uint8Array): void {
    if (this.head.length > MAX_HEAD_BYTES) return;
    const joined = new Uint8Array(this.head.length + chunk.length);
    joined.set(this.head);
    joined.set(chunk, this.head.length);
    this.head = joined;
  }

  /** Over the limits with nothing to evict: closed at once, never counted as open. */
  reject(): void {
    this.acc.opts.metrics.acceptFlow('limit');
    this.ep.end();
  }

  /** The acceptor is stopping: reset now (a relayed flow: both sides). */
  abort(): void {
    if (this.state === 'done') return;
    if (this.state === 'relaying' && this.splice) return this.splice.abort();
    this.ep.reset();
    this.end('reset', 'the acceptor is stopping');
  }

  /** Pushed out by a newer unauthenticated connection. */
  evict(): void {
    this.acc.opts.metrics.handshakeFailed('accept', 'timeout');
    this.end('limit', 'evicted: too many connections in handshake');
  }

  private leavePending(): void {
    if (this.acc.pending.delete(this)) this.acc.opts.metrics.active.pending--;
  }

  private onHandshake(ok: boolean, err: Error | null): void {
    if (this.state !== 'handshake') return;
    const a = this.acc;
    const sock = this.ep.sock!;
    const problem = sessionProblem(sock, ok, err);
    if (problem) return this.handshakeFailed(problem, err?.message ?? problem);
    const der = sock.getPeerX509Certificate()?.raw;
    const names = der ? certDnsNames(new Uint8Array(der)) : null;
    if (!names) return this.handshakeFailed('untrusted', 'client certificate unreadable');
    clearTimeout(this.timer);
    this.leavePending();
    a.opts.metrics.handshakeDone('accept', (a.now() - this.started) / 1000);
    this.log = this.log.child({ client: names[0] ?? '?' });
    const policy = a.opts.policy.client(names);
    if (!policy) return this.refuse('forbidden', `client ${names.join(', ') || '(no DNS name)'} is not in this acceptor's clients`);
    const key = policy.identity === '*' ? (names[0] ?? '*') : policy.identity;
    const n = a.perClient.get(key) ?? 0;
    if (n >= a.limits.maxPerClient) return this.refuse('too_many', `client ${key} has ${n} connections (max_per_client)`);
    a.perClient.set(key, n + 1);
    this.clientKey = key;
    this.state = 'request';
    this.timer = setTimeout(() => this.refuse('request_timeout', `no complete CONNECT within ${a.limits.requestTimeoutMs} ms`), a.limits.requestTimeoutMs);
    this.ep.bind({
      data: (d) => this.onRequestBytes(d, policy),
      drain() {},
      end: () => this.onRequestBytes(new Uint8Array(0), policy, true),
      close: (e) => this.end(e ? 'reset' : 'bad_request', 'closed before its CONNECT'),
    });
    if (this.head.length > 0) this.onRequestBytes(new Uint8Array(0), policy);
  }

  private onRequestBytes(chunk: Uint8Array, policy: ClientPolicy, eof = false): void {
    if (this.state !== 'request') return;
    this.keep(chunk);
    const r = parseConnectRequest(this.head);
    if (r.kind === 'more') {
      if (eof) this.refuse('bad_request', 'the connection ended inside the CONNECT head');
      return;
    }
    if (r.kind === 'error') return this.refuse(r.refusal, r.detail);
    clearTimeout(this.timer);
    this.state = 'connecting';
    this.ep.pause(); // what follows the head waits here until the destination is connected
    const rest = this.head.slice(r.consumed);
    void this.authorize(r.value, rest, policy);
  }

  private async authorize(req: ConnectRequest, rest: Uint8Array, policy: ClientPolicy): Promise<void> {
    const a = this.acc;
    this.log = this.log.child({ dst: authority(req.dst), name: req.name });
    const verdict = await policy.check(req.dst, req.name, a.resolve);
    if (this.state !== 'connecting') return;
    if (!verdict.ok) return this.refuse('forbidden', verdict.detail);
    const up = new BunEndpoint();
    up.pause();
    let connected = false;
    this.timer = setTimeout(() => {
      up.reset();
      this.refuse('upstream_timeout', `no TCP connection to ${authority(req.dst)} within ${a.limits.connectTimeoutMs} ms`);
    }, a.limits.connectTimeoutMs);
    up.bind({
      data() {},
      drain() {},
      end() {},
      close: (e) => {
        if (!connected) this.refuse('upstream_failed', `TCP to ${authority(req.dst)}: ${e?.message ?? 'closed'}`);
      },
    });
    up.onHandshake = null;
    try {
      await Bun.connect<SockData>({ hostname: req.dst.addr, port: req.dst.port, allowHalfOpen: true, data: { ep: up }, socket: a.upstreamHandler });
    } catch (err) {
      return this.refuse('upstream_failed', `TCP to ${authority(req.dst)}: ${(err as Error).message}`);
    }
    if (this.state !== 'connecting') return up.reset();
    connected = true;
    clearTimeout(this.timer);
    this.state = 'relaying';
    a.opts.metrics.active.accept++;
    this.ep.write(encodeReply());
    const splice = (this.splice = new Splice(this.ep, up, {
      onBytes: (dir, n) => {
        const d = dir === 'ab' ? 'upstream' : 'downstream';
        this.bytes[d] += n;
        a.opts.metrics.relayCount('accept', d, n);
      },
      onDone: (result) => {
        a.opts.metrics.active.accept--;
        this.end(result === 'ok' ? 'ok' : 'reset', '');
      },
    }));
    if (rest.length > 0) splice.pushA(rest);
  }

  private handshakeFailed(reason: HandshakeFailure, detail: string): void {
    if (this.state !== 'handshake') return;
    this.acc.opts.metrics.handshakeFailed('accept', reason);
    this.end(reason === 'timeout' ? 'timeout' : 'handshake_failed', detail, reason);
  }

  /** A refusal with its reason in an HTTP reply, then a clean close. */
  private refuse(refusal: Refusal, detail: string): void {
    if (this.state === 'done' || this.state === 'relaying') return;
    this.ep.write(encodeReply(refusal, detail));
    const outcome: AcceptOutcome =
      refusal === 'forbidden' ? 'forbidden' : refusal === 'too_many' ? 'limit' : refusal === 'request_timeout' ? 'timeout' : refusal.startsWith('upstream') ? 'upstream_failed' : 'bad_request';
    this.end(outcome, detail, refusal);
  }

  private end(outcome: AcceptOutcome, detail: string, reason?: string): void {
    if (this.state === 'done') return;
    const wasRelaying = this.state === 'relaying';
    this.state = 'done';
    clearTimeout(this.timer);
    this.leavePending();
    const a = this.acc;
    a.total--;
    a.conns.delete(this);
    if (this.clientKey !== null) {
      const n = (a.perClient.get(this.clientKey) ?? 1) - 1;
      if (n <= 0) a.perClient.delete(this.clientKey);
      else a.perClient.set(this.clientKey, n);
    }
    a.opts.metrics.acceptFlow(outcome);
    if (!wasRelaying) this.ep.end();
    if (outcome === 'ok' || outcome === 'reset') {
      this.log.info('tls accept closed', { outcome, up: this.bytes.upstream, down: this.bytes.downstream, ms: Math.round(a.now() - this.started) });
    } else {
      // Floods of garbage or idle connections would flood the log: those are debug.
      const lvl = outcome === 'handshake_failed' || outcome === 'timeout' || outcome === 'limit' ? 'debug' : 'warn';
      this.log[lvl]('tls accept refused', { outcome, reason, detail });
    }
  }
}
