/** A loopback rig: HTTP server ← acceptor ← relay listener ← test client. */
import { createHash } from 'node:crypto';
import { Metrics } from '../../src/ops/metrics.ts';
import { AcceptPolicy, type ClientInput } from '../../src/tls/accept-policy.ts';
import { TlsAcceptor, type AcceptLimits } from '../../src/tls/acceptor.ts';
import { BunEndpoint, endpointHandler, type SockData } from '../../src/tls/endpoint.ts';
import { RelayListener } from '../../src/tls/relay-listener.ts';
import { TlsRelay } from '../../src/tls/relay.ts';
import { TlsMetrics } from '../../src/tls/tls-metrics.ts';
import type { TlsChannel } from '../../src/tls/types.ts';
import { createLogger, type Logger } from '../../src/util/log.ts';
import { Collector } from './endpoint-pairs.ts';
import type { TestPki } from './pki.ts';

export const BIG = new Uint8Array(10 << 20);
for (let i = 0; i < BIG.length; i += 65536) crypto.getRandomValues(BIG.subarray(i, i + 65536));
export const BIG_SHA = createHash('sha256').update(BIG).digest('hex');

export function testLogger(lines: string[] = []): Logger {
  return createLogger({ level: 'debug', write: (l) => void lines.push(l) });
}

/** The HTTP server behind the acceptor; counts what reached it. */
export function httpServer(marker = 'hello') {
  const seen = { requests: 0 };
  const server = Bun.serve({
    hostname: '127.0.0.1',
    port: 0,
    async fetch(req) {
      seen.requests++;
      const url = new URL(req.url);
      if (url.pathname === '/big') return new Response(BIG);
      if (url.pathname === '/echo') {
        const body = new Uint8Array(await req.arrayBuffer());
        return new Response(`${body.length} ${createHash('sha256').update(body).digest('hex')}`);
      }
      return new Response(`${marker} from the server\n`);
    },
  });
  return { server, seen, port: server.port! };
}

export interface RigOptions {
  pki: TestPki;
  /** Certificate the accepting side presents (default `peer`). */
  acceptorCert?: string;
  /** Our certificate and the CA we trust for it (default `router`, signed by `ca`). */
  relayCert?: string;
  kind?: 'peer' | 'tunnel';
  identity?: string;
  /** The name the destination was resolved from (default peer.partner.test). */
  name?: string | null;
  clients?: ClientInput[];
  limits?: Partial<AcceptLimits>;
  handshakeTimeoutMs?: number;
  /** Where the relay's TLS goes (default: the acceptor). */
  tlsPort?: number;
}

export async function rig(o: RigOptions) {
  const metrics = new Metrics();
  const tm = new TlsMetrics(metrics);
  const logs: string[] = [];
  const log = testLogger(logs);
  const http = httpServer();
  const acceptor = new TlsAcceptor({
    listen: { host: '127.0.0.1', port: 0 },
    credentials: o.pki.creds(o.acceptorCert ?? 'peer'),
    policy: AcceptPolicy.compile(o.clients ?? [{ identity: 'router.corp.test', allow: [{ cidrs: ['127.0.0.1/32'], ports: [http.port] }] }]),
    limits: o.limits,
    log,
    metrics: tm,
    resolve: async () => [],
  });
  acceptor.start();
  const kind = o.kind ?? 'peer';
  const channel: TlsChannel = {
    name: kind === 'peer' ? 'partner' : 'hub',
    kind,
    gateway: kind === 'tunnel' ? '127.0.0.1' : undefined,
    port: o.tlsPort ?? acceptor.port,
    identity: o.identity ?? (kind === 'peer' ? '%name' : 'hub.corp.test'),
    credentials: o.pki.creds(o.relayCert ?? 'router'),
  };
  const relay = new TlsRelay({ log, metrics: tm, handshakeTimeoutMs: o.handshakeTimeoutMs ?? 5000, replyTimeoutMs: 5000 });
  const dst = { addr: '127.0.0.1', port: http.port };
  const name = o.name === null ? undefined : (o.name ?? 'peer.partner.test');
  const listener = new RelayListener({
    listen: { host: '127.0.0.1', port: 0 },
    relay,
    originalDst: { lookup: () => dst },
    router: { route: () => ({ channel, name }) },
    log,
    metrics: tm,
  });
  listener.start();
  return {
    http,
    acceptor,
    listener,
    metrics,
    tm,
    logs,
    channel,
    relayPort: listener.port,
    close() {
      listener.stop(true);
      acceptor.stop(true);
      http.server.stop(true);
    },
  };
}

/** curl through the relay (a separate process, as an application would be). */
export async function curl(port: number, path: string, extra: string[] = []): Promise<{ code: number; body: Uint8Array; err: string }> {
  const p = Bun.spawn(['curl', '-sS', '--max-time', '20', ...extra, `http://127.0.0.1:${port}${path}`], { stdout: 'pipe', stderr: 'pipe' });
  const [body, err, code] = await Promise.all([new Response(p.stdout).arrayBuffer(), new Response(p.stderr).text(), p.exited]);
  return { code, body: new Uint8Array(body), err };
}

/** A raw TCP client to see how the relay ends a connection (reset vs clean FIN). */
export async function rawClient(port: number): Promise<{ ep: BunEndpoint; col: Collector }> {
  const ep = new BunEndpoint();
  await Bun.connect<SockData>({ hostname: '127.0.0.1', port, allowHalfOpen: true, data: { ep }, socket: endpointHandler((s) => ep.attach(s)) });
  return { ep, col: new Collector(ep) };
}
