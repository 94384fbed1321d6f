/**
 * The contract between a listener and whatever answers queries (the proxy pipeline, or the
 * policy server of #5): raw query bytes in, raw answer bytes (or null: send nothing) out.
 * Listeners know framing and sockets, nothing about DNS beyond that.
 */
export type ClientTransport = 'udp' | 'tcp';

export interface ClientInfo {
  address: string;
  port: number;
  transport: ClientTransport;
}

/** Answer bytes, or null: send nothing. */
export type QueryResult = Uint8Array | null;

/**
 * The answer in hand when nothing had to wait (a cache hit, a local answer, an error answered
 * at once), else a promise of it: a hit then costs no promise and no microtask per query.
 */
export type QueryHandler = (query: Uint8Array, client: ClientInfo) => QueryResult | Promise<QueryResult>;

/** How a listener closes. */
export interface CloseOptions {
  /**
   * 0 (default): at once — queries still in flight get no answer (the daemon stops).
   * More: drain first (a reload removed the address). UDP: queries keep being answered until
   * none is in flight and none came for a moment, at most this long; TCP: no new connection is
   * accepted, each open one ends once its answers are written, at most this long.
   */
  drainMs?: number;
}

/** A running listener. */
export interface Listener {
  readonly transport: ClientTransport;
  readonly hostname: string;
  /** The bound port (useful when 0 was asked for). */
  readonly port: number;
  /** Stops serving (see CloseOptions); resolves once the socket is closed. */
  close(opts?: CloseOptions): Promise<void>;
}

/** Splits `ADDR:PORT` / `[ADDR]:PORT` as found in `Config.listen`. */
export function splitHostPort(spec: string, defaultPort = 53): { hostname: string; port: number } {
  const m = /^\[([^\]]+)\](?::(\d+))?$/.exec(spec);
  if (m) return { hostname: m[1]!, port: m[2] ? Number(m[2]) : defaultPort };
  const idx = spec.lastIndexOf(':');
  if (idx > 0 && spec.indexOf(':') === idx) return { hostname: spec.slice(0, idx), port: Number(spec.slice(idx + 1)) };
  return { hostname: spec, port: defaultPort };
}
