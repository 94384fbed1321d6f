/**
 * TCP upstream (RFC 7766): used when a UDP answer comes back truncated. One connection per
 * exchange — truncation is rare, and a fresh connection has nothing to confuse an answer
 * with. The same acceptance rules as UDP apply: our random ID and the exact question.
 */
import type { Socket, TCPSocketConnectOptions } from 'bun';
import { questionMatches } from '../dns/answer-scan.ts';
import type { ParsedQuery } from '../dns/query.ts';
import { buildUpstreamQuery } from '../dns/response.ts';
import { FLAG_QR } from '../dns/wire.ts';
import type { ProxyCounters } from './proxy-counters.ts';
import { FrameReader, frame } from './tcp-framing.ts';
import { errorMessage } from '../util/errors.ts';
import { RandomIds, UpstreamError, errnoOf, formatAddress, type ExchangeHooks, type Upstream } from './upstream.ts';

export interface TcpUpstreamOptions {
  name: string;
  address: string;
  port: number;
  timeoutMs: number;
  counters: ProxyCounters;
  /** Local address connections bind to (`upstream_source`; same family as `address`). Unset: the kernel picks. */
  source?: string;
}

/**
 * Bun.connect binds the local end to `localAddress` (port chosen by the kernel), like
 * node:net's option of that name; bun-types does not declare it (Bun 1.4), hence this type.
 * test/proxy/upstream-source.test.ts checks the server sees it.
 */
type ConnectWithSource = TCPSocketConnectOptions<ConnState> & { localAddress?: string };

interface ConnState {
  reader: FrameReader;
  out: Uint8Array;
  done: boolean;
  onFrame: (msg: Uint8Array) => void;
  onEnd: (why: string, err?: unknown) => void;
}

export class TcpUpstream implements Upstream {
  readonly transport = 'tcp' as const;
  readonly name: string;
  readonly address: string;
  private readonly ids = new RandomIds();
  private readonly open = new Set<Socket<ConnState>>();
  private closed = false;

  constructor(private readonly opts: TcpUpstreamOptions) {
    this.name = opts.name;
    this.address = formatAddress(opts.address, opts.port);
  }

  exchange(query: ParsedQuery, hooks?: ExchangeHooks): Promise<Uint8Array> {
    if (this.closed) return Promise.reject(new UpstreamError('closed', `${this.address}: upstream closed`));
    const id = this.ids.id();
    const plain = buildUpstreamQuery(id, query, 65535);
    const packet = frame(hooks ? hooks.sign(plain) : plain);
    return new Promise<Uint8Array>((resolve, reject) => {
      let sock: Socket<ConnState> | null = null;
      let settled = false;
      const settle = (err: Error | null, answer?: Uint8Array) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (sock) {
          this.open.delete(sock);
          sock.data.done = true;
          sock.end();
        }
        if (err) reject(err);
        else resolve(answer!);
      };
      const timer = setTimeout(() => {
        this.opts.counters.upstreamTimeouts++;
        settle(new UpstreamError('timeout', `${this.address}: no TCP answer within ${this.opts.timeoutMs} ms`));
      }, this.opts.timeoutMs);
      const state: ConnState = {
        reader: new FrameReader(),
        out: packet,
        done: false,
        onFrame: (msg) => {
          const mid = (msg[0]! << 8) | msg[1]!;
          if (mid !== id || !(msg[2]! & (FLAG_QR >>> 8))) {
            this.opts.counters.upstreamIgnored.id++;
            return;
          }
          if (!questionMatches(msg, query.question)) {
            this.opts.counters.upstreamIgnored.question++;
            return;
          }
          if (hooks && !hooks.accept(msg)) {
            this.opts.counters.upstreamIgnored.tsig++;
            settle(new UpstreamError('unverified', `${this.address}: answer failed TSIG verification`));
            return;
          }
          settle(null, msg);
        },
        onEnd: (why, err) => settle(connectionEnded(this.address, why, err)),
      };
      const connectOpts: ConnectWithSource = {
        hostname: this.opts.address,
        port: this.opts.port,
        ...(this.opts.source !== undefined ? { localAddress: this.opts.source } : {}),
        data: state,
        socket: {
          open: (s) => {
            if (settled) {
              s.end();
              return;
            }
            sock = s;
            this.open.add(s);
            flush(s);
          },
          drain: (s) => flush(s),
          data: (s, chunk) => {
            const r = s.data.reader.push(chunk);
            if (r.kind === 'bad') s.data.onEnd('sent garbage');
            else for (const f of r.frames) s.data.onFrame(f);
          },
          close: (s) => s.data.onEnd('closed'),
          error: (s, err) => s.data.onEnd('failed', err),
          connectError: (s, err) => s.data.onEnd('could not connect', err),
        },
      };
      Bun.connect<ConnState>(connectOpts).catch((err: unknown) => settle(connectionEnded(this.address, 'could not connect', err)));
    });
  }

  close(): void {
    this.closed = true;
    for (const s of this.open) s.end();
    this.open.clear();
  }
}

/** The error for a connection that ended before its answer: `refused` (RST), `connect_failed`, or `closed`. */
function connectionEnded(address: string, why: string, err: unknown): UpstreamError {
  const errno = errnoOf(err);
  const detail = err === undefined ? '' : `: ${errorMessage(err)}`;
  const reason = errno === 'ECONNREFUSED' ? 'refused' : why === 'could not connect' ? 'connect_failed' : 'closed';
  return new UpstreamError(reason, `${address}: TCP connection ${why} before an answer${detail}`, { cause: err, errno });
}

function flush(s: Socket<ConnState>): void {
  const st = s.data;
  if (st.out.length === 0) return;
  const n = s.write(st.out);
  st.out = n >= st.out.length ? new Uint8Array(0) : st.out.subarray(Math.max(0, n));
}
