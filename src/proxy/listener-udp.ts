/**
 * DNS over UDP: one datagram in, at most one datagram out. The handler sizes the answer
 * (it knows the client's EDNS payload size); the listener only sends it, batched per loop turn
 * (send-batch.ts). A refused datagram (socket buffer full, Bun does not queue) is counted, not
 * retried.
 */
import type { Logger } from '../util/log.ts';
import { errorMessage } from '../util/errors.ts';
import type { ClientInfo, Listener, QueryHandler } from './handler.ts';
import type { ProxyCounters } from './proxy-counters.ts';
import { AddressedBatch } from './send-batch.ts';

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
  const sock = await Bun.udpSocket({
    binaryType: 'uint8array',
    hostname: opts.hostname,
    port: opts.port,
    socket: {
      data(s, data, port, address) {
        const client: ClientInfo = { address, port, transport: 'udp' };
        handle(data, client).then(
          (answer) => {
            if (!answer || s.closed) return;
            if (batch) batch.push(answer, port, address);
            else if (!s.send(answer, port, address)) counters.clientSendFailed++;
          },
          (err) => log.error('proxy: udp handler failed', { err: errorMessage(err) }),
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
  return {
    transport: 'udp',
    hostname: opts.hostname,
    port: sock.port,
    close: async () => sock.close(),
  };
}
