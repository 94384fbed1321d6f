/**
 * The relay's local listener: where the kernel interception (a later task) sends TCP
 * connections to tls-channel addresses. For each accepted connection it asks
 * `OriginalDestination` where the application was going, asks `FlowRouter` which channel
 * holds that address and which name it was resolved from (the registry), and hands the flow
 * to `TlsRelay`. No answer from either: the connection is reset (fail closed).
 */
import type { Socket, TCPSocketListener } from 'bun';
import type { Logger } from '../util/log.ts';
import { BunEndpoint, endpointHandler, type SockData } from './endpoint.ts';
import type { TlsRelay } from './relay.ts';
import type { TlsMetrics } from './tls-metrics.ts';
import type { Destination, TlsChannel } from './types.ts';

/** The accepted connection as the kernel shows it to the relay. */
export interface InterceptedConn {
  /** The application's side (its source address and port). */
  peer: Destination;
  /** Our side: the relay's listening address, or the original destination under TPROXY / sk_assign. */
  local: Destination;
}

/** Where the application connected to, before interception; null when unknown. */
export interface OriginalDestination {
  lookup(conn: InterceptedConn): Promise<Destination | null> | Destination | null;
}

/**
 * Which TLS channel protects an address, and the name it was resolved from (for the client
 * the connection came from: gateway mode keeps entries per client group).
 */
export interface FlowRouter {
  route(dst: Destination, conn: InterceptedConn): { channel: TlsChannel; name?: string } | null;
}

/** TPROXY and tc `bpf_sk_assign`: the accepted socket's own address is the original destination. */
export const localAddressIsOriginal: OriginalDestination = {
  lookup: (c) => c.local,
};

export interface RelayListenerOptions {
  listen: { host: string; port: number };
  relay: TlsRelay;
  originalDst: OriginalDestination;
  router: FlowRouter;
  log: Logger;
  metrics: TlsMetrics;
}

export class RelayListener {
  private listener: TCPSocketListener<SockData> | null = null;

  constructor(private readonly opts: RelayListenerOptions) {}

  start(): void {
    this.listener = Bun.listen<SockData>({
      hostname: this.opts.listen.host,
      port: this.opts.listen.port,
      allowHalfOpen: true,
      socket: endpointHandler((s) => this.accepted(s)),
    });
    this.opts.log.info('tls relay listening', { addr: `${this.opts.listen.host}:${this.listener.port}` });
  }

  get port(): number {
    return this.listener?.port ?? 0;
  }

  /** The bound address, `ADDR:PORT` (null before start). */
  get address(): string | null {
    const l = this.listener;
    return l ? (l.hostname.includes(':') ? `[${l.hostname}]:${l.port}` : `${l.hostname}:${l.port}`) : null;
  }

  /** Stops listening; with `closeActive` every flow in progress is reset, both sides. */
  stop(closeActive = false): void {
    if (closeActive) this.opts.relay.abortAll();
    this.listener?.stop(closeActive);
    this.listener = null;
  }

  private accepted(sock: Socket<SockData>): void {
    const ep = new BunEndpoint();
    sock.data = { ep };
    ep.attach(sock);
    ep.pause(); // not one byte is read before the peer has proven its name
    sock.setNoDelay(true);
    const conn: InterceptedConn = {
      peer: { addr: sock.remoteAddress, port: sock.remotePort },
      local: { addr: sock.localAddress, port: sock.localPort },
    };
    void this.dispatch(ep, conn);
  }

  private async dispatch(ep: BunEndpoint, conn: InterceptedConn): Promise<void> {
    let dst: Destination | null = null;
    try {
      dst = await this.opts.originalDst.lookup(conn);
    } catch (err) {
      this.opts.log.warn('tls relay: original destination lookup failed', { error: (err as Error).message });
    }
    let route: ReturnType<FlowRouter['route']> = null;
    try {
      route = dst ? this.opts.router.route(dst, conn) : null;
    } catch (err) {
      this.opts.log.warn('tls relay: route lookup failed', { error: (err as Error).message });
    }
    if (!dst || !route) {
      this.opts.metrics.relayFlow('none', 'no_route');
      this.opts.log.warn('tls relay: no route, connection reset', { from: `${conn.peer.addr}:${conn.peer.port}`, dst: dst ? `${dst.addr}:${dst.port}` : undefined });
      ep.reset();
      return;
    }
    await this.opts.relay.relay(ep, { dst, name: route.name, channel: route.channel });
  }
}
