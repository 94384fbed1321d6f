/**
 * Scriptable DNS-over-TLS and DNS-over-HTTPS servers on loopback for tests, answering with the
 * same `Script` as fake-upstream.ts. The DoT fake is Bun's TLS listener with RFC 7766 framing;
 * the DoH fake is node:http2 (Bun.serve does not speak HTTP/2). Both count connections and
 * record every query with the connection it came on.
 */
import http2 from 'node:http2';
import type { TCPSocketListener } from 'bun';
import dnsPacket from 'dns-packet';
import { FrameReader, frame } from '../../src/proxy/tcp-framing.ts';
import { answerFor, type FakeQuery, type FakeUpstreamTools, type Script } from './fake-upstream.ts';

export { answerFor };

export type EncryptedQuery = FakeQuery & { conn: number; headers?: Record<string, string | string[] | undefined> };

export interface EncryptedFake {
  readonly port: number;
  readonly queries: EncryptedQuery[];
  /** Connections accepted (DoT: TLS handshakes completed; DoH: HTTP/2 sessions). */
  readonly connections: number;
  /** Most queries seen waiting for their answer at once on one connection. */
  readonly maxConcurrent: number;
  /** DoT: close every open connection now. */
  dropConnections(): void;
  stop(): Promise<void>;
}

function decode(bytes: Uint8Array, conn: number, transport: 'udp' | 'tcp'): EncryptedQuery {
  const d = dnsPacket.decode(Buffer.from(bytes));
  const q = d.questions?.[0];
  return { bytes, id: d.id ?? 0, name: q?.name ?? '', type: q?.type ?? 'A', port: 0, address: '127.0.0.1', transport, conn };
}

interface DotConn {
  id: number;
  reader: FrameReader;
  waiting: number;
}

export async function startFakeDot(opts: { key: string; cert: string; script: Script }): Promise<EncryptedFake> {
  let connections = 0;
  let maxConcurrent = 0;
  const queries: EncryptedQuery[] = [];
  const open = new Set<{ end(): void }>();
  const listener: TCPSocketListener<DotConn> = Bun.listen<DotConn>({
    hostname: '127.0.0.1',
    port: 0,
    tls: { key: opts.key, cert: opts.cert },
    socket: {
      open: (s) => {
        s.data = { id: ++connections, reader: new FrameReader(), waiting: 0 };
        open.add(s);
      },
      close: (s) => void open.delete(s),
      data: (s, chunk) => {
        const r = s.data.reader.push(chunk);
        if (r.kind !== 'frames') return void s.end();
        for (const f of r.frames) {
          const q = decode(f, s.data.id, 'tcp');
          queries.push(q);
          s.data.waiting++;
          maxConcurrent = Math.max(maxConcurrent, s.data.waiting);
          const tools: FakeUpstreamTools = { answerFor, sendFromSelf: (b) => void s.write(frame(b)), sendFromOther: () => {} };
          void Promise.resolve(opts.script(q, tools)).then((ans) => {
            s.data.waiting--;
            if (ans) s.write(frame(ans));
          });
        }
      },
    },
  });
  return {
    port: listener.port,
    queries,
    get connections() {
      return connections;
    },
    get maxConcurrent() {
      return maxConcurrent;
    },
    dropConnections: () => {
      for (const s of open) s.end();
    },
    stop: async () => {
      listener.stop(true);
    },
  };
}

export interface DohFakeOptions {
  key: string;
  cert: string;
  script: Script;
  /** Overrides the HTTP status or content type of every answer. */
  status?: number;
  contentType?: string;
}

export async function startFakeDoh(opts: DohFakeOptions): Promise<EncryptedFake & { paths: string[] }> {
  let connections = 0;
  let maxConcurrent = 0;
  let waiting = 0;
  const queries: EncryptedQuery[] = [];
  const paths: string[] = [];
  const server = http2.createSecureServer({ key: opts.key, cert: opts.cert });
  const sessions = new Set<http2.ServerHttp2Session>();
  const ids = new WeakMap<http2.ServerHttp2Session, number>();
  server.on('session', (s) => {
    sessions.add(s);
    ids.set(s, ++connections);
    s.on('close', () => sessions.delete(s));
  });
  server.on('stream', (stream: http2.ServerHttp2Stream, headers) => {
    paths.push(String(headers[':path']));
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => {
      const q = decode(new Uint8Array(Buffer.concat(chunks)), ids.get(stream.session as http2.ServerHttp2Session) ?? 0, 'tcp');
      q.headers = { ...headers };
      queries.push(q);
      waiting++;
      maxConcurrent = Math.max(maxConcurrent, waiting);
      const tools: FakeUpstreamTools = { answerFor, sendFromSelf: () => {}, sendFromOther: () => {} };
      void Promise.resolve(opts.script(q, tools)).then((ans) => {
        waiting--;
        if (!ans) return; // never answers: the client times out
        if (stream.destroyed) return;
        stream.respond({ ':status': opts.status ?? 200, 'content-type': opts.contentType ?? 'application/dns-message' });
        stream.end(Buffer.from(ans));
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const port = (server.address() as { port: number }).port;
  return {
    port,
    queries,
    paths,
    get connections() {
      return connections;
    },
    get maxConcurrent() {
      return maxConcurrent;
    },
    dropConnections: () => {
      for (const s of sessions) s.destroy();
    },
    stop: async () => {
      for (const s of sessions) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
