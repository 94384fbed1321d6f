/**
 * Two connected in-memory Endpoints with TCP's behaviour as the splice sees it: a bounded
 * receive buffer (write takes fewer bytes when it is full, `drain` follows), pause/resume,
 * FIN after queued bytes, RST that drops them, and a write to a fully closed end that resets
 * the writer. Delivery is asynchronous (a microtask), as with a socket.
 */
import type { Endpoint, EndpointEvents } from './endpoint.ts';

const NOOP: EndpointEvents = { data() {}, drain() {}, end() {}, close() {} };

class FakeEnd implements Endpoint {
  peer!: FakeEnd;
  closed = false;
  ev: EndpointEvents = NOOP;
  /** Bytes the peer wrote that this end has not read yet. */
  inbox: Uint8Array[] = [];
  inboxBytes = 0;
  /** The peer's FIN arrives after the inbox. */
  finQueued = false;
  /** We sent FIN. */
  shut = false;
  /** The peer wrote into a full inbox and waits for `drain`. */
  peerBlocked = false;
  paused = false;
  private scheduled = false;
  private ended = false;

  constructor(private readonly capacity: number) {}

  bind(ev: EndpointEvents): void {
    this.ev = ev;
    this.schedule();
  }
  write(chunk: Uint8Array): number {
    if (this.closed || this.shut) return -1;
    const p = this.peer;
    if (p.closed) {
      // Writing to a closed socket: the peer's kernel answers with RST.
      queueMicrotask(() => this.die(new Error('ECONNRESET: peer closed')));
      return chunk.length;
    }
    const n = Math.min(chunk.length, this.capacity - p.inboxBytes);
    if (n > 0) {
      p.inbox.push(chunk.slice(0, n));
      p.inboxBytes += n;
      p.schedule();
    }
    if (n < chunk.length) p.peerBlocked = true;
    return n;
  }
  pause(): void {
    this.paused = true;
  }
  resume(): void {
    this.paused = false;
    this.schedule();
  }
  shutdown(): void {
    if (this.closed || this.shut) return;
    this.shut = true;
    this.peer.finQueued = true;
    this.peer.schedule();
    this.maybeClose();
  }
  end(): void {
    if (this.closed) return;
    this.shutdown();
    if (this.closed) return;
    this.closed = true;
    this.inbox = [];
    this.inboxBytes = 0;
    queueMicrotask(() => this.ev.close());
  }
  reset(): void {
    if (this.closed) return;
    this.closed = true;
    this.inbox = [];
    this.inboxBytes = 0;
    queueMicrotask(() => this.ev.close(new Error('reset by this side')));
    queueMicrotask(() => this.peer.die(new Error('ECONNRESET: connection reset by peer')));
  }

  /** The peer reset: drop everything, report the error. */
  die(err: Error): void {
    if (this.closed) return;
    this.closed = true;
    this.inbox = [];
    this.inboxBytes = 0;
    this.ev.close(err);
  }
  /** FIN sent and received: the connection closes cleanly. */
  private maybeClose(): void {
    if (this.closed || !this.shut || !this.ended) return;
    this.closed = true;
    queueMicrotask(() => this.ev.close());
  }

  schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    queueMicrotask(() => {
      this.scheduled = false;
      this.deliver();
    });
  }
  private deliver(): void {
    if (this.closed) return;
    let delivered = false;
    while (!this.paused && this.inbox.length > 0) {
      const c = this.inbox.shift()!;
      this.inboxBytes -= c.length;
      delivered = true;
      this.ev.data(c);
      if (this.closed) return;
    }
    if (delivered && this.peerBlocked && this.inboxBytes < this.capacity) {
      this.peerBlocked = false;
      const p = this.peer;
      queueMicrotask(() => {
        if (!p.closed) p.ev.drain();
      });
    }
    if (this.inbox.length === 0 && this.finQueued && !this.ended) {
      this.ended = true;
      this.ev.end();
      this.maybeClose();
    }
  }
}

/** A connected pair; `capacity` is each receive buffer in bytes. */
export function fakeEndpointPair(capacity = 64 * 1024): [Endpoint, Endpoint] {
  const a = new FakeEnd(capacity);
  const b = new FakeEnd(capacity);
  a.peer = b;
  b.peer = a;
  return [a, b];
}
