/** A TLS client that speaks raw bytes to an acceptor (to send what a relay never would). */
import { BunEndpoint, endpointHandler, type SockData } from '../../src/tls/endpoint.ts';
import { clientTls } from '../../src/tls/tls-options.ts';
import type { TlsCredentials } from '../../src/tls/types.ts';
import { Collector } from './endpoint-pairs.ts';

export async function tlsClient(port: number, creds: TlsCredentials, serverName = 'peer.partner.test') {
  const ep = new BunEndpoint();
  const handshake = Promise.withResolvers<boolean>();
  ep.onHandshake = (ok) => handshake.resolve(ok);
  const col = new Collector(ep);
  await Bun.connect<SockData>({ hostname: '127.0.0.1', port, allowHalfOpen: true, tls: clientTls(creds, serverName), data: { ep }, socket: endpointHandler((s) => ep.attach(s)) });
  return { ep, col, handshake: handshake.promise, text: () => new TextDecoder().decode(col.all()) };
}
