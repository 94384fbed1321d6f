/**
 * An upstream name's list of servers and the strategy that picks one per query: **in order,
 * with failover** (dnsmasq `strict-order`, blocky `strict`, the glibc resolver) — each query
 * goes to the first server that is up; a server that fails (timeout, ICMP port unreachable,
 * refused connection, TLS failure, HTTP error) is marked down at once, the query moves on to
 * the next server that is up, and from then on queries skip it until a background probe gets an
 * answer from it. Why this and not "fastest first": see README.md (Upstream servers).
 *
 * Cost of a dead server: the query that finds it dead pays one timeout (nothing more when the
 * host refuses: ICMP), later queries go straight to the next. When no server is up, a query
 * still tries one — the one that answered most recently — so a network that comes back is
 * noticed by the first query as well as by the probes.
 *
 * Probe: `. NS` (any answer, even REFUSED, proves the server alive) on the server's main
 * transport, one at a time per server, first after `probeMinMs`, doubling (jittered) up to
 * `probeMaxMs` while it fails.
 *
 * A policy-server exchange passes its hooks; on failover the next server's upstream signs
 * anew with them (`sign` replaces the request MAC), and the hooks end up with the verdict of the
 * answer that was returned.
 */
import { parseQuery, type ParsedQuery } from '../dns/query.ts';
import type { Clock } from '../util/clock.ts';
import type { Logger } from '../util/log.ts';
import { ServerHealthState, type ServerHealth } from './upstream-health.ts';
import { UpstreamError, type ExchangeHooks, type Upstream, type UpstreamTransport } from './upstream.ts';

export interface SetServer {
  /** Canonical text of the server (`formatServerSpec`), for logs and status. */
  label: string;
  /** UDP for plain DNS, the TLS or HTTPS upstream for encrypted ones. */
  primary: Upstream;
  /** Plain DNS: the TCP upstream for truncated answers. Encrypted servers have none (their answers are never truncated). */
  stream?: Upstream;
}

export interface UpstreamSetOptions {
  /** The upstream name (`default`, …). */
  name: string;
  servers: SetServer[];
  clock: Clock;
  log: Logger;
  /** Servers tried per query at most (default: all, at most 3). */
  maxAttempts?: number;
  /** First probe of a down server after this long (default 1 s); doubles up to `probeMaxMs` (default 30 s). */
  probeMinMs?: number;
  probeMaxMs?: number;
}

export interface SetAnswer {
  bytes: Uint8Array;
  via: UpstreamTransport;
  /** Index of the server that answered. */
  server: number;
}

/** Servers per upstream name at most (a query's tried servers are a 31-bit mask). */
export const MAX_SERVERS = 31;

/** Failures that say the server is not answering (as opposed to a bad answer or our own overload). */
const SERVER_FAILURES = new Set(['timeout', 'refused', 'connect_failed', 'tls', 'http', 'closed']);

export function isServerFailure(err: unknown): boolean {
  return err instanceof UpstreamError && SERVER_FAILURES.has(err.reason);
}

/** `. NS`, RD set: answered from any resolver's cache; an authoritative-only server REFUSES, which proves it alive too. */
function probeQuery(): ParsedQuery {
  const r = parseQuery(new Uint8Array([0, 0, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 1]));
  if (r.kind !== 'ok') throw new Error('upstream-set: probe query does not parse');
  return r.query;
}

const toAnswer = (bytes: Uint8Array, via: UpstreamTransport, server: number): SetAnswer => ({ bytes, via, server });
const bytesOnly = (bytes: Uint8Array): Uint8Array => bytes;

interface Probe {
  timer: ReturnType<typeof setTimeout> | null;
  delayMs: number;
  running: boolean;
}

export class UpstreamSet {
  readonly name: string;
  private readonly servers: SetServer[];
  private readonly health: ServerHealthState[];
  private readonly probes: Probe[];
  /** Indexes of the servers that are up, in configured order (recomputed on each state change). */
  private upOrder: number[];
  private readonly maxAttempts: number;
  private readonly probe = probeQuery();
  private failovers = 0;
  /** Answers so far (orders the servers' last answers) and queries sent (picks the latency sample). */
  private seq = 0;
  private ticks = 0;
  private closed = false;

  constructor(private readonly opts: UpstreamSetOptions) {
    if (opts.servers.length === 0) throw new Error(`upstream-set: upstream "${opts.name}" has no server`);
    if (opts.servers.length > MAX_SERVERS) throw new Error(`upstream-set: upstream "${opts.name}" has ${opts.servers.length} servers, at most ${MAX_SERVERS}`);
    this.name = opts.name;
    this.servers = opts.servers;
    this.health = opts.servers.map((s, i) => new ServerHealthState(i, s.label, opts.name, opts.clock, opts.log));
    this.probes = opts.servers.map(() => ({ timer: null, delayMs: 0, running: false }));
    this.upOrder = opts.servers.map((_, i) => i);
    this.maxAttempts = Math.max(1, opts.maxAttempts ?? Math.min(3, opts.servers.length));
  }

  /**
   * Sends `query` to the first server that is up (its stream transport when `stream`: the
   * retry of a truncated answer), failing over as described above. Rejects with the last
   * server's error when none answered, or at once with an error that is not the server's
   * (malformed, unverified, local overload).
   */
  exchange(query: ParsedQuery, hooks?: ExchangeHooks, stream = false): Promise<SetAnswer> {
    if (this.closed) return Promise.reject(new UpstreamError('closed', `upstream "${this.name}" closed`));
    const first = this.upOrder.length > 0 ? this.upOrder[0]! : this.bestDown();
    return this.attempt(first, query, hooks, stream, 1 << first, 1, toAnswer);
  }

  /** `exchange` resolving with the answer's bytes alone (the pair view: no extra object or promise per query). */
  exchangeBytes(query: ParsedQuery, hooks?: ExchangeHooks, stream = false): Promise<Uint8Array> {
    if (this.closed) return Promise.reject(new UpstreamError('closed', `upstream "${this.name}" closed`));
    const first = this.upOrder.length > 0 ? this.upOrder[0]! : this.bestDown();
    return this.attempt(first, query, hooks, stream, 1 << first, 1, bytesOnly);
  }

  /**
   * The set as the forwarder's UDP/TCP pair (`UpstreamPair` in forwarder.ts): `udp` sends on
   * each server's main transport, `tcp` (truncated answers) on its stream transport.
   */
  pair(): { udp: Upstream; tcp: Upstream } {
    const view = (stream: boolean): Upstream => ({
      name: this.name,
      transport: stream ? 'tcp' : 'udp',
      address: this.servers.map((s) => s.label).join(','),
      exchange: (q, h) => this.exchangeBytes(q, h, stream),
      close: () => this.close(),
    });
    return { udp: view(false), tcp: view(true) };
  }

  healthOf(): ServerHealth[] {
    return this.health.map((h) => h.snapshot());
  }

  /** Queries that moved on to another server after a failure. */
  get failoverCount(): number {
    return this.failovers;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const p of this.probes) if (p.timer) clearTimeout(p.timer);
    for (const s of this.servers) {
      s.primary.close();
      s.stream?.close();
    }
  }

  /** `tried`: bitmask of the servers this query went to, `attempts` how many (no allocation per query). */
  private attempt<T>(i: number, query: ParsedQuery, hooks: ExchangeHooks | undefined, stream: boolean, tried: number, attempts: number, out: (bytes: Uint8Array, via: UpstreamTransport, server: number) => T): Promise<T> {
    const server = this.servers[i]!;
    const up = stream ? (server.stream ?? server.primary) : server.primary;
    const health = this.health[i]!;
    const epoch = health.epoch;
    // Latency of one query in 8, of every failover and of a server's first answers.
    const sentAt = (this.ticks++ & 7) === 0 || attempts > 1 || health.latencyMs === null ? performance.now() : -1;
    return up.exchange(query, hooks).then(
      (bytes) => {
        if (health.success(epoch, sentAt < 0 ? null : performance.now() - sentAt, this.seq++)) this.recovered(i);
        return out(bytes, up.transport, i);
      },
      (err: unknown) => {
        if (this.closed || !isServerFailure(err)) throw err;
        const next = attempts < this.maxAttempts ? this.nextUp(tried) : -1;
        if (health.failure(err, next >= 0 ? this.servers[next]!.label : null)) this.wentDown(i);
        if (next < 0) throw err;
        this.failovers++;
        return this.attempt(next, query, hooks, stream, tried | (1 << next), attempts + 1, out);
      },
    );
  }

  private nextUp(tried: number): number {
    for (const i of this.upOrder) if (!(tried & (1 << i))) return i;
    return -1;
  }

  /** With nothing up: the server whose last answer is the most recent (the first one if none ever answered). */
  private bestDown(): number {
    let best = 0;
    for (let i = 1; i < this.health.length; i++) if (this.health[i]!.lastAnswerSeq > this.health[best]!.lastAnswerSeq) best = i;
    return best;
  }

  private wentDown(i: number): void {
    this.upOrder = this.upOrder.filter((j) => j !== i);
    const p = this.probes[i]!;
    p.delayMs = this.opts.probeMinMs ?? 1000;
    this.scheduleProbe(i);
  }

  private recovered(i: number): void {
    this.upOrder = this.servers.map((_, j) => j).filter((j) => this.health[j]!.up);
    const p = this.probes[i]!;
    if (p.timer) clearTimeout(p.timer);
    p.timer = null;
  }

  private scheduleProbe(i: number): void {
    const p = this.probes[i]!;
    if (this.closed || p.timer || p.running) return;
    const delay = p.delayMs * (0.8 + Math.random() * 0.4);
    p.timer = setTimeout(() => {
      p.timer = null;
      this.runProbe(i);
    }, delay);
    p.timer.unref?.();
  }

  private runProbe(i: number): void {
    const h = this.health[i]!;
    const p = this.probes[i]!;
    if (this.closed || h.up) return;
    p.running = true;
    const epoch = h.epoch;
    const sentAt = performance.now();
    this.servers[i]!.primary.exchange(this.probe).then(
      () => {
        p.running = false;
        if (h.success(epoch, performance.now() - sentAt, this.seq++)) this.recovered(i);
      },
      (err: unknown) => {
        p.running = false;
        if (this.closed || h.up) return;
        h.failure(err, null);
        p.delayMs = Math.min(this.opts.probeMaxMs ?? 30_000, p.delayMs * 2);
        this.scheduleProbe(i);
      },
    );
  }
}
