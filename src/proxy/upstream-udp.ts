/**
 * UDP upstream (RFC 5452): every query gets a fresh random ID and leaves from a randomly
 * chosen socket of a pool; each socket has a kernel-chosen random source port and is retired
 * and replaced after a random number of queries, so source ports keep changing. A socket per
 * query (as dnsmasq does) would cost a socket() + bind() per query, which in Bun is an async
 * round trip; the pool keeps 16 bits of ID plus the pool choice, and a port lives for only a few
 * hundred queries.
 *
 * An answer is accepted only when it comes from the upstream's address and port, carries the
 * ID of a query in flight on that socket, and repeats its question byte for byte (name with
 * case, type, class). Anything else is counted and ignored: the real answer may still come.
 * Sockets are connected, so the kernel already drops datagrams from other sources; the
 * check is repeated here so correctness does not rest on it.
 */
import type { udp } from 'bun';
import { questionMatches } from '../dns/answer-scan.ts';
import type { ParsedQuery } from '../dns/query.ts';
import { buildUpstreamQuery } from '../dns/response.ts';
import { FLAG_QR, HEADER_LEN } from '../dns/wire.ts';
import type { Clock } from '../util/clock.ts';
import { DnssealError, errorMessage } from '../util/errors.ts';
import type { Logger } from '../util/log.ts';
import { RandomIds, UpstreamError, errnoOf, formatAddress, type ExchangeHooks, type Upstream } from './upstream.ts';
import type { ProxyCounters } from './proxy-counters.ts';
import { ConnectedBatch } from './send-batch.ts';

export interface UdpUpstreamOptions {
  name: string;
  address: string;
  port: number;
  timeoutMs: number;
  clock: Clock;
  log: Logger;
  counters: ProxyCounters;
  /**
   * Local address the sockets bind to (`upstream_source`; same family as `address`). Unset: the
   * wildcard address, the kernel picks the source by route.
   */
  source?: string;
  /**
   * Sockets in the pool (default 8). More sockets add port entropy but cost throughput: each
   * wakes the event loop separately, where one socket gets its answers in batches.
   */
  poolSize?: number;
  /** A socket is retired after a random number of queries in [min, 2·min) (default 512). */
  minUsesPerSocket?: number;
  /** Send queries in batches at the end of each event-loop turn (default true; see send-batch.ts). */
  batchSends?: boolean;
}

/** Queries in flight on one socket at most (IDs are 16 bits; a free one must stay easy to find). */
const MAX_IN_FLIGHT_PER_SOCKET = 32768;

interface Pending {
  id: number;
  sock: PoolSocket;
  question: Uint8Array;
  hooks?: ExchangeHooks;
  deadline: number;
  resolve: (answer: Uint8Array) => void;
  reject: (err: Error) => void;
}

interface PoolSocket {
  sock: udp.ConnectedSocket<'uint8array'>;
  batch: ConnectedBatch | null;
  byId: Map<number, Pending>;
  usesLeft: number;
  /** A replacement is being opened; the socket still serves until it is ready. */
  replacing: boolean;
  /** Out of the pool; closed as soon as its last query finishes. */
  retired: boolean;
}

export class UdpUpstream implements Upstream {
  readonly transport = 'udp' as const;
  readonly name: string;
  readonly address: string;
  private readonly ids = new RandomIds();
  private readonly pool: PoolSocket[] = [];
  /** Every open socket: the pool and retired ones still waiting for answers. */
  private readonly open = new Set<PoolSocket>();
  private inFlight = 0;
  private creating = 0;
  /** Clock reading of the last sweep (monoMs). */
  private now: number;
  private closed = false;
  private sweeper: ReturnType<typeof setInterval> | null = null;

  private constructor(private readonly opts: UdpUpstreamOptions) {
    this.name = opts.name;
    this.address = formatAddress(opts.address, opts.port);
    this.now = opts.clock.monoMs();
  }

  /** Opens the pool. Create upstreams before listeners (BENCHMARKING.md, Bun notes). */
  static async open(opts: UdpUpstreamOptions): Promise<UdpUpstream> {
    const up = new UdpUpstream(opts);
    const n = opts.poolSize ?? 8;
    const socks = await Promise.all(Array.from({ length: n }, () => up.openSocket()));
    up.pool.push(...socks);
    const every = Math.max(10, Math.min(100, Math.floor(opts.timeoutMs / 4)));
    up.sweeper = setInterval(() => up.sweep(), every);
    up.sweeper.unref?.();
    return up;
  }

  exchange(query: ParsedQuery, hooks?: ExchangeHooks): Promise<Uint8Array> {
    if (this.closed) return Promise.reject(new UpstreamError('closed', `${this.address}: upstream closed`));
    const ps = this.pick();
    if (!ps) return Promise.reject(new UpstreamError('send_failed', `${this.address}: no upstream socket ready`));
    // Most of the ID space taken (an upstream that stopped answering under load): refuse
    // rather than search for a free ID for ever.
    if (ps.byId.size >= MAX_IN_FLIGHT_PER_SOCKET) {
      this.opts.counters.upstreamSendFailed++;
      return Promise.reject(new UpstreamError('send_failed', `${this.address}: too many queries in flight`));
    }
    let id = this.ids.id();
    while (ps.byId.has(id)) id = this.ids.id();
    const plain = buildUpstreamQuery(id, query);
    const packet = hooks ? hooks.sign(plain) : plain;
    return new Promise<Uint8Array>((resolve, reject) => {
      const p: Pending = {
        id,
        sock: ps,
        question: query.question,
        hooks,
        // The sweeper's clock reading, not a fresh one: a clock call per query is measurable,
        // and the timeout is only as precise as the sweep interval anyway.
        deadline: this.now + this.opts.timeoutMs,
        resolve,
        reject,
      };
      if (ps.batch) {
        ps.batch.push(packet, () => {
          if (ps.byId.get(id) !== p) return; // already answered or expired
          this.finish(p);
          this.opts.counters.upstreamSendFailed++;
          reject(new UpstreamError('send_failed', `${this.address}: sendmmsg refused the datagram (socket buffer full)`));
        });
      } else if (!ps.sock.send(packet)) {
        this.opts.counters.upstreamSendFailed++;
        reject(new UpstreamError('send_failed', `${this.address}: send() refused the datagram (socket buffer full)`));
        return;
      }
      ps.byId.set(id, p);
      this.inFlight++;
      if (--ps.usesLeft <= 0 && !ps.replacing) this.replace(ps);
    });
  }

  close(): void {
    this.closed = true;
    if (this.sweeper) clearInterval(this.sweeper);
    for (const ps of this.open) {
      for (const p of ps.byId.values()) p.reject(new UpstreamError('closed', `${this.address}: upstream closed`));
      ps.byId.clear();
      ps.sock.close();
    }
    this.open.clear();
    this.pool.length = 0;
    this.inFlight = 0;
  }

  /** Queries in flight (tests and the stats command). */
  get pending(): number {
    return this.inFlight;
  }

  private pick(): PoolSocket | undefined {
    const n = this.pool.length;
    if (n === 0) return undefined;
    return this.pool[(Math.random() * n) | 0];
  }

  private async openSocket(): Promise<PoolSocket> {
    const holder: { ps?: PoolSocket } = {};
    let sock: udp.ConnectedSocket<'uint8array'>;
    try {
      sock = await Bun.udpSocket({
        binaryType: 'uint8array',
        hostname: this.opts.source ?? (this.opts.address.includes(':') ? '::' : '0.0.0.0'),
        port: 0,
        connect: { hostname: this.opts.address, port: this.opts.port },
        socket: {
          data: (_s, data, port, address) => this.onData(holder.ps!, data, port, address),
          // ICMP errors (upstream port closed, …) arrive here. bun-types declares
          // `error(socket, err)`, but Bun 1.4 passes the error alone (socket as `this`): take
          // whichever argument is the error (before this, logs read `err=undefined`).
          error: (a: unknown, b?: unknown) => this.onSocketError(holder.ps!, b instanceof Error ? b : a),
        },
      });
    } catch (err) {
      if (this.opts.source === undefined) throw err;
      // Usually EADDRNOTAVAIL: upstream_source is not one of this host's addresses.
      throw new DnssealError('proxy', 'upstream_source', `upstream "${this.name}": cannot bind upstream_source ${this.opts.source}: ${errorMessage(err)}`, { cause: err });
    }
    const min = this.opts.minUsesPerSocket ?? 512;
    const batch = this.opts.batchSends === false ? null : new ConnectedBatch((packets) => sock.sendMany(packets));
    holder.ps = { sock, batch, byId: new Map(), usesLeft: min + ((Math.random() * min) | 0), replacing: false, retired: false };
    this.open.add(holder.ps);
    return holder.ps;
  }

  private onData(ps: PoolSocket, data: Uint8Array, port: number, address: string): void {
    const c = this.opts.counters;
    if (port !== this.opts.port || address !== this.opts.address) {
      c.upstreamIgnored.source++;
      return;
    }
    if (data.length < HEADER_LEN || !(data[2]! & (FLAG_QR >>> 8))) {
      c.upstreamIgnored.malformed++;
      return;
    }
    const id = (data[0]! << 8) | data[1]!;
    const p = ps.byId.get(id);
    if (!p) {
      c.upstreamIgnored.id++;
      return;
    }
    if (!questionMatches(data, p.question)) {
      c.upstreamIgnored.question++;
      return;
    }
    if (p.hooks && !p.hooks.accept(data)) {
      c.upstreamIgnored.tsig++;
      return;
    }
    this.finish(p);
    p.resolve(data);
  }

  /**
   * An error reported on a socket. ECONNREFUSED on a connected socket is an ICMP port
   * unreachable from the upstream's host: nothing listens there, so every query in flight on
   * this socket fails now (`refused`) instead of waiting for its timeout — the upstream set then
   * moves on at once. Other errors are logged; their queries time out as before.
   */
  private onSocketError(ps: PoolSocket | undefined, err: unknown): void {
    const errno = errnoOf(err);
    this.opts.log.debug('upstream: socket error', { upstream: this.name, server: this.address, errno: errno ?? null, err: errorMessage(err) });
    if (errno !== 'ECONNREFUSED' || !ps) return;
    for (const p of [...ps.byId.values()]) {
      this.finish(p);
      p.reject(new UpstreamError('refused', `${this.address}: port unreachable (ECONNREFUSED)`, { cause: err, errno }));
    }
  }

  private finish(p: Pending): void {
    p.sock.byId.delete(p.id);
    this.inFlight--;
    if (p.sock.retired && p.sock.byId.size === 0) this.closeSocket(p.sock);
  }

  /** Opens a fresh socket (new random port) and swaps it in; the old one closes once idle. */
  private replace(ps: PoolSocket): void {
    ps.replacing = true;
    this.creating++;
    this.openSocket().then(
      (fresh) => {
        this.creating--;
        if (this.closed) {
          this.closeSocket(fresh);
          return;
        }
        const i = this.pool.indexOf(ps);
        if (i >= 0) this.pool[i] = fresh;
        else this.pool.push(fresh);
        ps.retired = true;
        if (ps.byId.size === 0) this.closeSocket(ps);
      },
      (err) => {
        this.creating--;
        ps.replacing = false;
        ps.usesLeft = this.opts.minUsesPerSocket ?? 512;
        this.opts.log.warn('upstream: could not open a replacement socket', { upstream: this.name, err: String(err) });
      },
    );
  }

  private closeSocket(ps: PoolSocket): void {
    this.open.delete(ps);
    ps.batch?.flush();
    ps.sock.close();
  }

  /** Expires queries past their deadline. Only queries in flight are visited (a few hundred at most). */
  private sweep(): void {
    const now = (this.now = this.opts.clock.monoMs());
    if (this.inFlight === 0) return;
    for (const ps of this.open) {
      for (const p of ps.byId.values()) {
        // Deadlines come from the previous reading: a query may time out up to one interval late.
        if (p.deadline > now) continue;
        this.finish(p);
        this.opts.counters.upstreamTimeouts++;
        p.reject(new UpstreamError('timeout', `${this.address}: no answer within ${this.opts.timeoutMs} ms`));
      }
    }
  }
}
