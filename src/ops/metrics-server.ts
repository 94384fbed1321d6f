/**
 * The Prometheus endpoint (`--metrics ADDR:PORT`, default off; 127.0.0.1:9153 suggested):
 * GET /metrics → text format 0.0.4; anything else 404 (405 for other methods on /metrics).
 */
import { DnssealError, errorMessage } from '../util/errors.ts';
import type { Logger } from '../util/log.ts';
import type { Metrics } from './metrics.ts';

export interface MetricsServer {
  /** The bound port (useful with port 0). */
  readonly port: number;
  readonly url: string;
  stop(): Promise<void>;
}

export const METRICS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/** `ADDR:PORT` or `[V6ADDR]:PORT` → hostname and port. */
export function parseListenAddr(addr: string): { hostname: string; port: number } {
  const m = /^\[([0-9A-Fa-f:.]+)\]:(\d{1,5})$/.exec(addr) ?? /^([^:\[\]]+):(\d{1,5})$/.exec(addr);
  const port = m ? Number(m[2]) : NaN;
  if (!m || !(port >= 0 && port <= 65535)) {
    throw new DnssealError('metrics', 'bad_address', `metrics address ${JSON.stringify(addr)} is not ADDR:PORT or [ADDR]:PORT`);
  }
  return { hostname: m[1]!, port };
}

export function startMetricsServer(addr: string, metrics: Metrics, log: Logger): MetricsServer {
  const { hostname, port } = parseListenAddr(addr);
  let server: ReturnType<typeof Bun.serve>;
  try {
    server = Bun.serve({
      hostname,
      port,
      fetch(req) {
        const path = new URL(req.url).pathname;
        if (path !== '/metrics') return new Response('not found; metrics are at /metrics\n', { status: 404 });
        if (req.method !== 'GET' && req.method !== 'HEAD') {
          return new Response('method not allowed\n', { status: 405, headers: { allow: 'GET, HEAD' } });
        }
        return new Response(metrics.expose(), { headers: { 'content-type': METRICS_CONTENT_TYPE } });
      },
      error(err) {
        log.error('metrics: request failed', { error: errorMessage(err) });
        return new Response('internal error\n', { status: 500 });
      },
    });
  } catch (err) {
    throw new DnssealError('metrics', 'listen_failed', `cannot listen on ${addr}: ${errorMessage(err)}`, { cause: err });
  }
  const bound = server.port ?? port;
  const host = hostname.includes(':') ? `[${hostname}]` : hostname;
  log.info('metrics: listening', { addr: `${host}:${bound}` });
  return {
    port: bound,
    url: `http://${host}:${bound}/metrics`,
    stop: async () => {
      await server.stop(true);
    },
  };
}
