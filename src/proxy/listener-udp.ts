/**
 * DNS over UDP: one datagram in, at most one datagram out. The handler sizes the answer
 * (it knows the client's EDNS payload size); the listener only sends it, batched per loop turn
 * (send-batch.ts). A refused datagram (socket buffer full, Bun does not queue) is counted, not
 * retried.
 *
 * Closing with `drainMs` (a reload removed the address): the socket keeps answering — queries
 * still in flight and new ones alike, since a client may not have moved yet — until nothing is
 * in flight and no query came for `QUIET_MS`, or `drainMs` passed; then the last answers are
 * flushed and the socket closed. Without it the socket closes at once (the daemon stops).
 */
import type { Logger } from '../util/log.ts';
import { errorMessage } from '../util/errors.ts';
import type { ClientInfo, CloseOptions, Listener, QueryHandler, QueryResult } from './handler.ts';
import type { ProxyCounters } from './proxy-counters.ts';
import { AddressedBatch } from './send-batch.ts';

/** A draining socket closes after this long without a query (and none in flight). */
const QUIET_MS = 100;

export interface UdpListenerOptions {
  hostname: string;
  port: number;
  handle: QueryHandler;
  counters: ProxyCounters;
  log: Logger;
  /** Send answers in batches at the end of each event-loop turn (default true; see send-batch.ts). */
  batchSends?: boolean;
}

export async function startUdpListener(opts: UdpListenerOptions): Promise<Listener> {
  const { handle, counters, log } = opts;
  let batch: AddressedBatch | null = null;
  let inFlight = 0;
  /** While draining: when the last query came (performance.now()); else unused. */
  let lastQuery = 0;
  let draining = false;
  const send = (s: { closed: boolean; send(d: Uint8Array, port: number, address: string): boolean }, answer: QueryResult, port: number, address: string) => {
    if (!answer || s.closed) return;
    if (batch) batch.push(answer, port, address);
    else if (!s.send(answer, port, address)) counters.clientSendFailed++;
  };
  const sock = await Bun.udpSocket({
    binaryType: 'uint8array',
    hostname: opts.hostname,
    port: opts.port,
    socket: {
      data(s, data, port, address) {
        const client: ClientInfo = { address, port, transport: 'udp' };
        if (draining) lastQuery = performance.now();
        let result: ReturnType<QueryHandler>;
        try {
          result = handle(data, client);
        } catch (err) {
          log.error('proxy: udp handler failed', { err: errorMessage(err) });
          return;
        }
        // A hit answered in this call goes out without a promise (handler.ts).
        if (!(result instanceof Promise)) return send(s, result, port, address);
        inFlight++;
        result.then(
          (answer) => {
            inFlight--;
            send(s, answer, port, address);
          },
          (err) => {
            inFlight--;
            log.error('proxy: udp handler failed', { err: errorMessage(err) });
          },
        );
      },
      // ICMP errors for earlier answers (client went away) must not take the listener down.
      error(_s, err) {
        log.debug('proxy: udp socket error', { err: errorMessage(err) });
      },
    },
  });
  if (opts.batchSends !== false) {
    batch = new AddressedBatch(
      (flat) => sock.sendMany(flat),
      (n) => (counters.clientSendFailed += n),
    );
  }
  const drain = async (drainMs: number) => {
    draining = true;
    lastQuery = performance.now();
    const end = lastQuery + drainMs;
    for (;;) {
      const now = performance.now();
      if (now >= end || (inFlight === 0 && now - lastQuery >= QUIET_MS)) break;
      await Bun.sleep(Math.min(QUIET_MS / 4, end - now));
    }
    batch?.flush(); // answers queued in this turn leave before the socket closes
  };
  return {
    transport: 'udp',
    hostname: opts.hostname,
    port: sock.port,
    close: async (o: CloseOptions = {}) => {
      if (sock.closed) return;
      if ((o.drainMs ?? 0) > 0) await drain(o.drainMs!);
      sock.close();
    },
  };
}
