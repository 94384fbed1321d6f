/**
 * DNS over UDP: one datagram in, at most one datagram out. The handler sizes the answer
 * (it knows the client's EDNS payload size); the listener only sends it. `send()` returning
 * false (socket buffer full, Bun does not queue) is counted, not retried.
 */
import type { Logger } from '../util/log.ts';
import { errorMessage } from '../util/errors.ts';
import type { ClientInfo, Listener, QueryHandler } from './handler.ts';
import type { ProxyCounters } from './proxy-counters.ts';

export interface UdpListenerOptions {
  hostname: string;
  port: number;
  handle: QueryHandler;
  counters: ProxyCounters;
  log: Logger;
}

export async function startUdpListener(opts: UdpListenerOptions): Promise<Listener> {
  const { handle, counters, log } = opts;
  const sock = await Bun.udpSocket({
    binaryType: 'uint8array',
    hostname: opts.hostname,
    port: opts.port,
    socket: {
      data(s, data, port, address) {
        const client: ClientInfo = { address, port, transport: 'udp' };
        handle(data, client).then(
          (answer) => {
            if (answer && !s.closed && !s.send(answer, port, address)) counters.clientSendFailed++;
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
  return {
    transport: 'udp',
    hostname: opts.hostname,
    port: sock.port,
    close: async () => sock.close(),
  };
}
