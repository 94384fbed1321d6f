/** Connected endpoint pairs for the splice suite: in memory, and real loopback TCP sockets. */
import type { Socket } from 'bun';
import { BunEndpoint, endpointHandler, type Endpoint, type EndpointEvents, type SockData } from '../../src/tls/endpoint.ts';
import { fakeEndpointPair } from '../../src/tls/fake-endpoint.ts';

export interface PairMaker {
  name: string;
  /** [near, far]: the splice gets `near`, the test drives `far`. */
  pair(): Promise<[Endpoint, Endpoint]>;
  close(): void;
}

export function fakePairs(capacity = 64 * 1024): PairMaker {
  return { name: 'fake', pair: async () => fakeEndpointPair(capacity), close() {} };
}

/** Each pair is one loopback TCP connection: near = the accepted socket, far = the client. */
export function tcpPairs(): PairMaker {
  const waiting: Array<(ep: BunEndpoint) => void> = [];
  const listener = Bun.listen<SockData>({
    hostname: '127.0.0.1',
    port: 0,
    allowHalfOpen: true,
    socket: endpointHandler((s: Socket<SockData>) => {
      const ep = new BunEndpoint();
      s.data = { ep };
      ep.attach(s);
      ep.pause();
      waiting.shift()!(ep);
    }),
  });
  return {
    name: 'tcp',
    async pair() {
      const near = new Promise<BunEndpoint>((res) => waiting.push(res));
      const far = new BunEndpoint();
      far.pause();
      await Bun.connect<SockData>({
        hostname: '127.0.0.1',
        port: listener.port,
        allowHalfOpen: true,
        data: { ep: far },
        socket: endpointHandler((s) => far.attach(s)),
      });
      return [await near, far];
    },
    close: () => listener.stop(true),
  };
}

/** Records what a far end receives. */
export class Collector implements EndpointEvents {
  chunks: Uint8Array[] = [];
  bytes = 0;
  ended = false;
  closed = false;
  error: Error | undefined;
  drains = 0;
  constructor(readonly ep: Endpoint) {
    ep.bind(this);
    ep.resume();
  }
  data(c: Uint8Array): void {
    this.chunks.push(c.slice());
    this.bytes += c.length;
  }
  drain(): void {
    this.drains++;
  }
  end(): void {
    this.ended = true;
  }
  close(err?: Error): void {
    this.closed = true;
    this.error = err;
  }
  all(): Uint8Array {
    return Buffer.concat(this.chunks);
  }
}

/** Writes all of `data` with backpressure (waits for drain); resolves when taken whole. */
export async function writeAll(ep: Endpoint, col: Collector, data: Uint8Array, chunk = 64 * 1024): Promise<void> {
  let off = 0;
  while (off < data.length) {
    const n = ep.write(data.subarray(off, Math.min(off + chunk, data.length)));
    if (n < 0) throw new Error('writeAll: endpoint closed');
    off += n;
    if (off < data.length && n < chunk) {
      const before = col.drains;
      await waitFor(() => col.drains > before || col.closed, 'drain while writing');
      if (col.closed) throw new Error('writeAll: closed while writing');
    }
  }
}

/** Polls `cond` until true or the deadline; the message names what was awaited. */
export async function waitFor(cond: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const until = performance.now() + timeoutMs;
  while (!cond()) {
    if (performance.now() > until) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(2);
  }
}
