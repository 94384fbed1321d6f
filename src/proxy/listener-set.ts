/**
 * The proxy's listen addresses: one UDP and one TCP listener per `ADDR:PORT`, and how a reload
 * changes them without losing an answer:
 *
 *   prepare(specs)  bind every address not bound yet (all or nothing: one that cannot bind —
 *                   not local, in use, no permission — closes those just bound and throws);
 *                   the running ones keep serving, the new ones already answer too
 *   commit          the set becomes `specs` (synchronous; `rollback` is its inverse)
 *   settle          the addresses no longer wanted close, draining: their clients' answers
 *                   still go out (listener-udp.ts, listener-tcp.ts)
 *   abort           the reload did not go through: the addresses prepare bound close at once
 *
 * An address is known by its text as configured: one that stays is never rebound (port 0
 * included: it keeps the port it got). Moving from an address to one that overlaps it on the
 * same port (`127.0.0.1:53` → `0.0.0.0:53`) cannot bind before the old one closes: such a
 * reload is refused, and says so.
 */
import { DnssealError, errorMessage } from '../util/errors.ts';
import type { Logger } from '../util/log.ts';
import { splitHostPort, type Listener, type QueryHandler } from './handler.ts';
import { startTcpListener } from './listener-tcp.ts';
import { startUdpListener } from './listener-udp.ts';
import type { ProxyCounters } from './proxy-counters.ts';

/** How long a removed address keeps answering its clients at most (a query in flight may wait for the upstream). */
export const DEFAULT_DRAIN_MS = 5_000;

export interface ListenerSetOptions {
  handle: QueryHandler;
  counters: ProxyCounters;
  log: Logger;
  /** Batch datagram sends per event-loop turn (default true; see send-batch.ts). */
  batchSends?: boolean;
  tcpIdleMs?: number;
  /** How long a removed address drains (default DEFAULT_DRAIN_MS). */
  drainMs?: number;
}

/** One listen address: its UDP and TCP listener. */
export interface BoundPair {
  spec: string;
  udp: Listener;
  tcp: Listener;
}

/** A change prepare() made ready: the addresses bound for it and those it leaves. */
export interface ListenerChange {
  readonly before: readonly BoundPair[];
  readonly after: readonly BoundPair[];
  /** Bound by prepare (closed by abort). */
  readonly added: readonly BoundPair[];
  /** Running now, not wanted after (closed by settle). */
  readonly removed: readonly BoundPair[];
}

export class ListenerSet {
  private current: BoundPair[] = [];

  private constructor(private readonly opts: ListenerSetOptions) {}

  /** Binds every address (all or nothing). */
  static async open(specs: readonly string[], opts: ListenerSetOptions): Promise<ListenerSet> {
    const set = new ListenerSet(opts);
    const change = await set.prepare(specs);
    set.commit(change);
    return set;
  }

  /** The bound listeners, UDP then TCP for each address in order. */
  get listeners(): Listener[] {
    return this.current.flatMap((b) => [b.udp, b.tcp]);
  }

  /** The addresses as configured. */
  get specs(): string[] {
    return this.current.map((b) => b.spec);
  }

  /** Binds the addresses of `specs` not bound yet; throws (having closed them again) when one cannot bind. */
  async prepare(specs: readonly string[]): Promise<ListenerChange> {
    const have = new Map(this.current.map((b) => [b.spec, b]));
    const added: BoundPair[] = [];
    const after: BoundPair[] = [];
    try {
      for (const spec of new Set(specs)) {
        let b = have.get(spec);
        if (!b) {
          b = await this.bind(spec);
          added.push(b);
        }
        after.push(b);
      }
    } catch (err) {
      await closeAll(added, 0);
      throw err;
    }
    const wanted = new Set(after);
    return { before: this.current, after, added, removed: this.current.filter((b) => !wanted.has(b)) };
  }

  commit(change: ListenerChange): void {
    this.current = [...change.after];
  }

  rollback(change: ListenerChange): void {
    this.current = [...change.before];
  }

  /** Closes what the change bound (it did not go through). */
  abort(change: ListenerChange): Promise<void> {
    return closeAll(change.added, 0);
  }

  /**
   * Closes the addresses the change removed, draining (their clients still get answers); the
   * returned promise settles when they are closed. Resolves at once when nothing was removed.
   */
  settle(change: ListenerChange): Promise<void> {
    if (change.removed.length > 0) {
      this.opts.log.info('proxy: closing removed listen addresses once their answers are out', { listen: change.removed.map((b) => b.spec).join(',') });
    }
    return closeAll(change.removed, this.opts.drainMs ?? DEFAULT_DRAIN_MS);
  }

  /** Closes every address at once (the daemon stops). */
  async close(): Promise<void> {
    const all = this.current;
    this.current = [];
    await closeAll(all, 0);
  }

  private bind(spec: string): Promise<BoundPair> {
    return bindPair(spec, this.opts);
  }
}

/**
 * One listen address: UDP, then TCP on the port UDP got. With port 0 another process may hold
 * that TCP port: then pick again (bounded), never serve UDP-only. A failure says the address,
 * the transport and a hint (src/policy-server/run.ts binds its addresses with it too).
 */
export async function bindPair(
  spec: string,
  opts: Pick<ListenerSetOptions, 'handle' | 'counters' | 'log' | 'batchSends' | 'tcpIdleMs'>,
): Promise<BoundPair> {
  const { hostname, port } = splitHostPort(spec);
  const common = { hostname, handle: opts.handle, counters: opts.counters, log: opts.log };
  for (let attempt = 1; ; attempt++) {
    let udp: Listener;
    try {
      udp = await startUdpListener({ ...common, port, batchSends: opts.batchSends });
    } catch (err) {
      throw bindError(spec, 'udp', err);
    }
    try {
      const tcp = await startTcpListener({ ...common, port: udp.port, idleMs: opts.tcpIdleMs });
      return { spec, udp, tcp };
    } catch (err) {
      await udp.close();
      if (port !== 0 || attempt >= 10) throw bindError(spec, 'tcp', err);
    }
  }
}

async function closeAll(bound: readonly BoundPair[], drainMs: number): Promise<void> {
  await Promise.all(bound.flatMap((b) => [b.udp.close({ drainMs }), b.tcp.close({ drainMs })]));
}

function bindError(spec: string, transport: string, err: unknown): DnssealError {
  const text = errorMessage(err);
  const hint = /EADDRINUSE|in use/i.test(text)
    ? ' (in use: by another program, or by a running listen address it overlaps on the same port — such a move needs a restart)'
    : /EADDRNOTAVAIL|not available|assign/i.test(text)
      ? ' (no local interface has this address)'
      : /EACCES|permission/i.test(text)
        ? ' (a port below 1024 needs root or CAP_NET_BIND_SERVICE)'
        : '';
  return new DnssealError('proxy', 'listen_failed', `cannot listen on ${spec} (${transport}): ${text}${hint}`, { cause: err });
}
