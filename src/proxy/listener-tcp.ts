/**
 * DNS over TCP (RFC 7766): 2-byte length framing, pipelined queries handled concurrently and
 * answered as each completes (out of order), an idle timeout that only runs while nothing is
 * in flight (§6.2.3), a cap on queries in flight per connection (further ones wait, and
 * reading pauses while too many wait or answers go unread), and write back-pressure handled
 * with `drain`. A length below a DNS header closes the connection; a declared length the
 * peer never completes is ended by the idle timeout; connections beyond a cap are closed at once.
 *
 * Closing with `drainMs` (a reload removed the address): the port stops accepting at once, and
 * each open connection ends as soon as nothing is in flight or waiting and its answers are
 * written (at most `drainMs`). Without it every connection ends at once (the daemon stops).
 */
import type { Socket, TCPSocketListener } from 'bun';
import { errorMessage } from '../util/errors.ts';
import type { Logger } from '../util/log.ts';
import type { ClientInfo, CloseOptions, Listener, QueryHandler, QueryResult } from './handler.ts';
import type { ProxyCounters } from './proxy-counters.ts';
import { FrameReader, frame } from './tcp-framing.ts';

export interface TcpListenerOptions {
  hostname: string;
  port: number;
  handle: QueryHandler;
  counters: ProxyCounters;
  log: Logger;
  /** Close a connection with nothing in flight after this long without a query (default 10 s). */
  idleMs?: number;
  /** Queries in flight per connection before reading pauses (default 64). */
  maxInFlight?: number;
  /** Open connections at most; a connection beyond it is closed at once (default 1024). */
  maxConnections?: number;
}

interface Conn {
  client: ClientInfo;
  reader: FrameReader;
  /** Complete queries not yet handed to the handler (over the in-flight cap). */
  queued: Uint8Array[];
  inFlight: number;
  out: Uint8Array[];
  closed: boolean;
  /** Reading is paused: too many queries waiting, or answers the client does not read. */
  paused: boolean;
  idle: ReturnType<typeof setTimeout> | null;
}

export async function startTcpListener(opts: TcpListenerOptions): Promise<Listener> {
  const { handle, counters, log } = opts;
  const idleMs = opts.idleMs ?? 10_000;
  const maxInFlight = opts.maxInFlight ?? 64;
  const maxConnections = opts.maxConnections ?? 1024;
  const conns = new Set<Socket<Conn>>();
  /** Set while closing with a drain: connections end once idle; resolves when the last went. */
  let draining: { done: () => void } | null = null;

  /** While draining: ends a connection with nothing in flight, waiting or unwritten. */
  const endIfDone = (s: Socket<Conn>) => {
    const c = s.data;
    if (!draining || !c || c.closed || c.inFlight > 0 || c.queued.length > 0 || c.out.length > 0) return;
    s.end();
  };

  const armIdle = (s: Socket<Conn>) => {
    const c = s.data;
    if (c.idle) clearTimeout(c.idle);
    c.idle = null;
    // Unsent answers do not hold the connection open: a client that stops reading idles out.
    if (c.closed || c.inFlight > 0 || c.queued.length > 0) return;
    c.idle = setTimeout(() => {
      counters.tcpClosed.idle++;
      s.end();
    }, idleMs);
  };

  const flush = (s: Socket<Conn>) => {
    const c = s.data;
    while (c.out.length > 0 && !c.closed) {
      const head = c.out[0]!;
      const n = s.write(head);
      if (n >= head.length) c.out.shift();
      else {
        c.out[0] = head.subarray(Math.max(0, n));
        return; // the rest goes out on drain
      }
    }
  };

  // Back-pressure: stop reading while the client has more queued than we will take on soon,
  // or leaves our answers unread; resume once it has caught up.
  const throttle = (s: Socket<Conn>) => {
    const c = s.data;
    const busy = c.queued.length >= maxInFlight || c.out.length >= maxInFlight;
    if (busy && !c.paused) {
      c.paused = true;
      s.pause();
    } else if (!busy && c.paused) {
      c.paused = false;
      s.resume();
    }
  };

  const pump = (s: Socket<Conn>) => {
    const c = s.data;
    while (!c.closed && c.inFlight < maxInFlight && c.queued.length > 0) {
      const q = c.queued.shift()!;
      c.inFlight++;
      // Answers of one connection are written from promise callbacks, one at a time (pump).
      new Promise<QueryResult>((resolve) => resolve(handle(q, c.client))).then(
        (answer) => {
          c.inFlight--;
          if (c.closed) return;
          if (answer) {
            c.out.push(frame(answer));
            flush(s);
          }
          pump(s);
          armIdle(s);
          endIfDone(s);
        },
        (err) => {
          c.inFlight--;
          log.error('proxy: tcp handler failed', { err: errorMessage(err) });
          pump(s);
          armIdle(s);
          endIfDone(s);
        },
      );
    }
    if (!c.closed) throttle(s);
  };

  const server: TCPSocketListener<Conn> = Bun.listen<Conn>({
    hostname: opts.hostname,
    port: opts.port,
    socket: {
      open(s) {
        counters.tcpConnections++;
        if (conns.size >= maxConnections) {
          // Descriptors are finite: refuse rather than let one client starve the daemon.
          counters.tcpClosed.limit++;
          s.data = undefined as unknown as Conn;
          s.end();
          return;
        }
        s.data = {
          client: { address: s.remoteAddress, port: s.remotePort, transport: 'tcp' },
          reader: new FrameReader(),
          queued: [],
          inFlight: 0,
          out: [],
          closed: false,
          paused: false,
          idle: null,
        };
        conns.add(s);
        armIdle(s);
      },
      data(s, chunk) {
        const c = s.data;
        if (!c) return; // refused at open
        if (c.idle) clearTimeout(c.idle);
        c.idle = null;
        const r = c.reader.push(chunk);
        if (r.kind === 'bad') {
          counters.tcpClosed.garbage++;
          s.end();
          return;
        }
        for (const f of r.frames) c.queued.push(f);
        pump(s);
        armIdle(s);
      },
      drain(s) {
        if (!s.data) return;
        flush(s);
        throttle(s);
        armIdle(s);
        endIfDone(s);
      },
      close(s) {
        const c = s.data;
        if (!c) return;
        c.closed = true;
        if (c.idle) clearTimeout(c.idle);
        conns.delete(s);
        if (draining && conns.size === 0) draining.done();
      },
      error(s, err) {
        log.debug('proxy: tcp connection error', { err: errorMessage(err) });
      },
    },
  });

  return {
    transport: 'tcp',
    hostname: opts.hostname,
    port: server.port,
    close: async (o: CloseOptions = {}) => {
      server.stop(false);
      const drainMs = o.drainMs ?? 0;
      if (drainMs > 0 && conns.size > 0) {
        const { promise, resolve } = Promise.withResolvers<void>();
        draining = { done: resolve };
        for (const s of conns) endIfDone(s);
        const timer = setTimeout(resolve, drainMs);
        await promise;
        clearTimeout(timer);
      }
      for (const s of conns) s.end();
      conns.clear();
    },
  };
}
