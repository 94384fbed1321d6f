/**
 * Original destinations recorded in the process, keyed by the application's side of the
 * connection as the relay sees it (source address and port): `record()` before the connection
 * reaches the relay, `lookup()` once when it is accepted (a record is used once, and goes after
 * `ttlMs` if never used).
 *
 * This is the relay's OriginalDestination until the kernel interception exists: nothing in the
 * daemon writes it yet, so every connection to the relay finds no record and is reset (tests
 * record the destination of their own connections). The host-mode interception (a connect /
 * sockops hook recording the original destination by source address and port in a map) will
 * replace it with an OriginalDestination that reads that map; the key is the same.
 */
import type { InterceptedConn, OriginalDestination } from './relay-listener.ts';
import { canonicalAddr } from './registry-router.ts';
import type { Destination } from './types.ts';

export class RecordedDestinations implements OriginalDestination {
  private readonly byPeer = new Map<string, { dst: Destination; until: number }>();

  constructor(
    private readonly now: () => number = () => performance.now(),
    private readonly ttlMs = 10_000,
  ) {}

  private static key(peer: Destination): string {
    return `${canonicalAddr(peer.addr) ?? peer.addr}|${peer.port}`;
  }

  /** The connection from `peer` (the application's address and port) was meant for `dst`. */
  record(peer: Destination, dst: Destination): void {
    const t = this.now();
    for (const [k, v] of this.byPeer) {
      if (v.until > t) break; // insertion order is expiry order
      this.byPeer.delete(k);
    }
    const k = RecordedDestinations.key(peer);
    this.byPeer.delete(k);
    this.byPeer.set(k, { dst, until: t + this.ttlMs });
  }

  lookup(conn: InterceptedConn): Destination | null {
    const k = RecordedDestinations.key(conn.peer);
    const v = this.byPeer.get(k);
    if (!v) return null;
    this.byPeer.delete(k);
    return v.until > this.now() ? v.dst : null;
  }

  get size(): number {
    return this.byPeer.size;
  }
}
