/**
 * The connecting side: one intercepted local TCP connection → one new mutual TLS 1.3
 * connection to the peer (kind `peer`: the original destination's address at the channel's
 * TLS port) or to the hub (kind `tunnel`), a CONNECT naming the original destination, then
 * raw bytes both ways (splice.ts).
 *
 * Fail closed: the local connection stays paused until the peer has proven the expected name;
 * anything else — no identity, no TCP, a failed or slow handshake, a certificate without the
 * exact DNS SAN, a refused CONNECT, a reply not in time — resets the local connection (RST, so
 * the application cannot take a cut-off stream for a complete one), and none of its bytes go
 * anywhere. A peer that fails its check is refused inside the handshake, before our client
 * certificate is sent. No retry: each flow is one attempt (the application reconnects).
 */
import type { Socket } from 'bun';
import type { Logger } from '../util/log.ts';
import { BunEndpoint, endpointHandler, type Endpoint, type SockData } from './endpoint.ts';
import { authority, encodeConnectRequest, parseReply } from './preamble.ts';
import { certDnsNames, identityMatches } from './san.ts';
import { Splice } from './splice.ts';
import { clientTls, sessionProblem } from './tls-options.ts';
import type { TlsMetrics } from './tls-metrics.ts';
import { NAME_IDENTITY, type Flow, type HandshakeFailure, type RelayOutcome } from './types.ts';

export interface RelayOptions {
  log: Logger;
  metrics: TlsMetrics;
  /** TCP connect + TLS handshake + identity check, ms (default 10 s). */
  handshakeTimeoutMs?: number;
  /** CONNECT sent → reply head received, ms (default 10 s; the hub's own connect is inside it). */
  replyTimeoutMs?: number;
  /** Milliseconds with a fraction, for durations (default performance.now). */
  now?: () => number;
}

export interface RelayResult {
  outcome: RelayOutcome;
  /** Handshake failure reason, or the refusal reason the accepting side gave. */
  reason?: string;
  bytes: { upstream: number; downstream: number };
}

export class TlsRelay {
  private readonly handler = endpointHandler((s: Socket<SockData>) => s.data.ep.attach(s));
  private readonly now: () => number;
  private readonly handshakeTimeoutMs: number;
  private readonly replyTimeoutMs: number;
  /** Flows in progress (for `abortAll`). */
  readonly flows = new Set<{ abort(): void }>();

  constructor(private readonly opts: RelayOptions) {
    this.now = opts.now ?? (() => performance.now());
    this.handshakeTimeoutMs = opts.handshakeTimeoutMs ?? 10_000;
    this.replyTimeoutMs = opts.replyTimeoutMs ?? 10_000;
  }

  /** Relays one local connection (`local` paused, as accepted); resolves when the flow is over. */
  relay(local: Endpoint, flow: Flow): Promise<RelayResult> {
    return new Promise<RelayResult>((resolve) => new RelayFlow(this, local, flow, resolve).start());
  }

  /** Resets every flow in progress, both sides (a stopping daemon: never a clean end). */
  abortAll(): void {
    for (const f of [...this.flows]) f.abort();
  }

  /** @internal */ get parts() {
    return { ...this.opts, handler: this.handler, now: this.now, handshakeTimeoutMs: this.handshakeTimeoutMs, replyTimeoutMs: this.replyTimeoutMs };
  }
}

/** The state of one relayed flow, from accept to close. */
class RelayFlow {
  private readonly tls = new BunEndpoint();
  private timer: ReturnType<typeof setTimeout> | undefined;
  private splice: Splice | undefined;
  private established = false;
  private finished = false;
  private readonly early: Uint8Array[] = [];
  private reply = new Uint8Array(0);
  private readonly started: number;
  private readonly log: Logger;
  private readonly bytes = { upstream: 0, downstream: 0 };
  private identity = '';

  constructor(
    private readonly relay: TlsRelay,
    private readonly local: Endpoint,
    private readonly flow: Flow,
    private readonly resolve: (r: RelayResult) => void,
  ) {
    const p = relay.parts;
    this.started = p.now();
    this.log = p.log.child({ side: 'relay', channel: flow.channel.name, dst: authority(flow.dst), name: flow.name });
  }

  start(): void {
    const p = this.relay.parts;
    const ch = this.flow.channel;
    p.metrics.active.relay++;
    this.relay.flows.add(this);
    this.local.pause();
    this.local.bind({
      data: (d) => void this.early.push(d), // arrived despite pause; sent after the CONNECT (each data event has its own buffer)
      drain() {},
      end() {},
      close: (err) => this.fail('reset', err ? 'local reset' : 'local closed'),
    });
    const identity = ch.identity === NAME_IDENTITY ? (ch.kind === 'peer' ? this.flow.name : undefined) : ch.identity;
    if (!identity) return this.fail('no_identity', `channel identity ${ch.identity} needs the name ${authority(this.flow.dst)} was resolved from, and none is known`);
    this.identity = identity;
    const host = ch.kind === 'peer' ? this.flow.dst.addr : ch.gateway;
    if (!host) return this.fail('no_route', 'tunnel channel without gateway');
    this.timer = setTimeout(() => this.handshakeFailed('timeout', `no verified TLS session within ${p.handshakeTimeoutMs} ms`), p.handshakeTimeoutMs);
    this.tls.bind({
      data() {},
      drain() {},
      end() {},
      close: (err) =>
        this.tls.sock
          ? this.handshakeFailed('closed', err?.message ?? 'closed during the handshake')
          : this.fail('connect_failed', `TCP to ${host}:${ch.port}: ${err?.message ?? 'failed'}`),
    });
    this.tls.onHandshake = (ok, err) => this.onHandshake(ok, err);
    Bun.connect<SockData>({
      hostname: host,
      port: ch.port,
      allowHalfOpen: true,
      tls: clientTls(ch.credentials, identity),
      data: { ep: this.tls },
      socket: p.handler,
    }).catch((err: Error) => this.fail('connect_failed', `TCP to ${host}:${ch.port}: ${err.message}`));
  }

  /** Resets both sides now, whatever the phase. */
  abort(): void {
    if (this.finished) return;
    if (this.established && this.splice) this.splice.abort();
    else this.fail('reset', 'the relay is stopping');
  }

  private onHandshake(ok: boolean, err: Error | null): void {
    if (this.finished) return;
    const sock = this.tls.sock!;
    const problem = sessionProblem(sock, ok, err);
    if (problem) return this.handshakeFailed(problem, err?.message ?? problem);
    const der = sock.getPeerX509Certificate()?.raw;
    const names = der ? certDnsNames(new Uint8Array(der)) : null;
    if (!names || !identityMatches(this.identity, names)) {
      return this.handshakeFailed('identity', `peer certificate names ${names?.join(', ') || 'nothing'}, not ${this.identity}`);
    }
    const p = this.relay.parts;
    p.metrics.handshakeDone('relay', (p.now() - this.started) / 1000);
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.fail('timeout', `no CONNECT reply within ${p.replyTimeoutMs} ms`), p.replyTimeoutMs);
    if (this.tls.write(encodeConnectRequest({ dst: this.flow.dst, name: this.flow.name })) < 0) return this.fail('handshake_failed', 'closed');
    // From here local bytes are pipelined behind the CONNECT; the reply is parsed before
    // anything flows back.
    this.splice = new Splice(this.local, this.tls, {
      held: { data: (d) => this.onReply(d), end: () => this.closedBeforeReply() },
      onBytes: (dir, n) => {
        const d = dir === 'ab' ? 'upstream' : 'downstream';
        this.bytes[d] += n;
        p.metrics.relayCount('relay', d, n);
      },
      onDone: (result) => this.done(result),
    });
    for (const c of this.early.splice(0)) this.splice.pushA(c);
  }

  private onReply(chunk: Uint8Array): void {
    if (this.finished) return;
    const joined = new Uint8Array(this.reply.length + chunk.length);
    joined.set(this.reply);
    joined.set(chunk, this.reply.length);
    this.reply = joined;
    const r = parseReply(joined);
    if (r.kind === 'more') return;
    if (r.kind === 'error') return this.fail('refused', `bad reply: ${r.detail}`, 'bad_reply');
    if (r.value.status !== 200) {
      return this.fail('refused', `the accepting side answered ${r.value.status} (${r.value.reason})`, r.value.reason);
    }
    clearTimeout(this.timer);
    this.established = true;
    this.log.debug('tls relay established', { identity: this.identity, ms: Math.round(this.relay.parts.now() - this.started) });
    this.splice!.release(joined.subarray(r.consumed));
  }

  private done(result: 'ok' | 'reset'): void {
    if (this.finished) return;
    if (!this.established) return this.closedBeforeReply();
    this.finish(result === 'ok' ? 'ok' : 'reset');
  }

  /**
   * The accepting side went away between handshake and reply. With TLS 1.3 the client's
   * handshake ends before the server has checked the client certificate, so this is how a
   * refused certificate shows here: counted as a handshake failure, reason `closed`.
   */
  private closedBeforeReply(): void {
    this.handshakeFailed('closed', 'closed before the CONNECT reply (our certificate refused?)');
  }

  private handshakeFailed(reason: HandshakeFailure, detail: string): void {
    if (this.finished) return;
    this.relay.parts.metrics.handshakeFailed('relay', reason);
    this.fail(reason === 'timeout' ? 'timeout' : 'handshake_failed', detail, reason);
  }

  /** Ends the flow before it was established: both sides reset, nothing relayed. */
  private fail(outcome: RelayOutcome, detail: string, reason?: string): void {
    if (this.finished) return;
    this.finished = true; // before abort(): its onDone must not end the flow a second time
    this.splice?.abort();
    this.tls.reset();
    this.local.reset();
    this.log.warn('tls relay failed', { outcome, reason, detail, identity: this.identity || undefined });
    this.finish(outcome, reason);
  }

  private finish(outcome: RelayOutcome, reason?: string): void {
    this.finished = true;
    this.relay.flows.delete(this);
    clearTimeout(this.timer);
    const p = this.relay.parts;
    p.metrics.active.relay--;
    p.metrics.relayFlow(this.flow.channel.name, outcome);
    if (outcome === 'ok' || outcome === 'reset') {
      this.log.info('tls relay closed', { outcome, up: this.bytes.upstream, down: this.bytes.downstream, ms: Math.round(p.now() - this.started) });
    }
    this.resolve({ outcome, reason, bytes: { ...this.bytes } });
  }
}
