/**
 * One side of a relayed flow (a local TCP connection or a TLS connection) behind a small
 * interface, so the splice (backpressure, half-close, reset) is one piece of code tested the
 * same way over real sockets and the in-memory fake (fake-endpoint.ts).
 *
 * Events are normalised so the logic above needs no Bun quirks: `end` always comes before a
 * clean `close` (Bun closes a plain TCP socket after a FIN without an `end` callback), and
 * `close` carries an error exactly when the connection was reset or failed.
 */
import type { Socket, SocketHandler } from 'bun';

export interface EndpointEvents {
  /** Bytes from the other end (delivered even while paused, at most one more chunk). */
  data(chunk: Uint8Array): void;
  /** `write` may accept bytes again after it accepted fewer than offered. */
  drain(): void;
  /** The other end will send no more (FIN / close_notify). */
  end(): void;
  /** The connection is gone; `err` when it was reset or failed, not when it closed cleanly. */
  close(err?: Error): void;
}

export interface Endpoint {
  /** Routes events to `ev` from now on (the owner changes them between phases). */
  bind(ev: EndpointEvents): void;
  /** Queues bytes; returns how many were taken (fewer under backpressure, -1 when closed). */
  write(chunk: Uint8Array): number;
  /** Stops reading (TCP backpressure builds up to the sender). */
  pause(): void;
  resume(): void;
  /** Our FIN after what was written (TLS: close_notify); reading goes on. */
  shutdown(): void;
  /** Clean full close. */
  end(): void;
  /** Abort now: RST (SO_LINGER 0), queued bytes dropped. */
  reset(): void;
  readonly closed: boolean;
}

const NOOP_EVENTS: EndpointEvents = { data() {}, drain() {}, end() {}, close() {} };

export interface SockData {
  ep: BunEndpoint;
}

/** An Endpoint over a Bun TCP or TLS socket. */
export class BunEndpoint implements Endpoint {
  sock: Socket<SockData> | null = null;
  closed = false;
  private ev: EndpointEvents = NOOP_EVENTS;
  private ended = false;
  private lastError: Error | undefined;
  private wantPause = false;
  /** Inside Bun's `open` callback (and its microtasks) terminate() closes with FIN, not RST. */
  private opening = false;
  private aborted = false;
  /** Bun's handshake callback, routed to whoever owns the endpoint during the handshake. */
  onHandshake: ((success: boolean, err: Error | null) => void) | null = null;

  attach(sock: Socket<SockData>): void {
    this.sock = sock;
    if (this.aborted) {
      // reset() came while connecting: abort as soon as the socket exists.
      setImmediate(() => sock.terminate());
      return;
    }
    if (this.wantPause) sock.pause();
    this.opening = true;
    setImmediate(() => (this.opening = false));
  }
  bind(ev: EndpointEvents): void {
    this.ev = ev;
  }
  write(chunk: Uint8Array): number {
    if (this.closed || !this.sock) return -1;
    return this.sock.write(chunk);
  }
  pause(): void {
    this.wantPause = true;
    this.sock?.pause();
  }
  resume(): void {
    this.wantPause = false;
    this.sock?.resume();
  }
  shutdown(): void {
    if (!this.closed && !this.aborted) this.sock?.shutdown();
  }
  end(): void {
    if (!this.closed && !this.aborted) this.sock?.end();
  }
  reset(): void {
    if (this.closed || this.aborted) return;
    this.aborted = true;
    this.lastError ??= new Error('reset by this side');
    const sock = this.sock;
    if (!sock) return; // still connecting: the connect callbacks see `aborted`
    if (this.opening) setImmediate(() => sock.terminate());
    else sock.terminate();
  }

  // Called by the handler below.
  fireData(d: Uint8Array): void {
    if (!this.aborted) this.ev.data(d);
  }
  fireDrain(): void {
    this.ev.drain();
  }
  fireEnd(): void {
    if (this.ended) return;
    this.ended = true;
    this.ev.end();
  }
  fireError(err: Error): void {
    this.lastError ??= err;
  }
  fireClose(err?: Error): void {
    if (this.closed) return;
    this.closed = true;
    const why = err ?? this.lastError;
    if (!why) this.fireEnd();
    this.ev.close(why);
  }
}

/**
 * The socket handler for every endpoint socket. `open` is called for each new socket (a
 * listener creates the endpoint there; a connect passes it as `data`).
 */
export function endpointHandler(open: (sock: Socket<SockData>) => void): SocketHandler<SockData> {
  return {
    binaryType: 'uint8array',
    open,
    handshake(s, success, err) {
      const h = s.data?.ep?.onHandshake;
      if (h) h(success, err);
    },
    data(s, d) {
      s.data.ep.fireData(d);
    },
    drain(s) {
      s.data.ep.fireDrain();
    },
    end(s) {
      s.data.ep.fireEnd();
    },
    error(s, err) {
      s.data?.ep?.fireError(err);
    },
    close(s, err) {
      s.data?.ep?.fireClose(err);
    },
    connectError(s, err) {
      s.data?.ep?.fireClose(err);
    },
  } as SocketHandler<SockData>;
}
