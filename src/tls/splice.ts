/**
 * Raw bytes both ways between two endpoints, with backpressure and half-close:
 *
 * - A chunk the destination does not take whole is kept, and the source is paused until the
 *   destination drains (memory per flow stays at about one chunk per direction — one more may
 *   arrive after the pause; the rest waits in the kernels' buffers and TCP windows).
 * - A source's FIN is passed on as the destination's FIN once what it sent is written; the
 *   other direction goes on until it ends too. Both ended: both closed cleanly, outcome `ok`.
 * - A reset (or a failure) of either side resets the other at once: outcome `reset`. A peer
 *   that must not mistake a cut-off stream for a complete one never sees a clean FIN for it.
 * - Data towards an end that has fully closed cannot be delivered: the sender is reset, as
 *   its kernel would do.
 *
 * Direction names: `ab` is a → b (the relay: local → tunnel, "upstream"), `ba` is b → a.
 * The b → a direction can start held (the relay parses the CONNECT reply first) and be
 * released with the bytes that followed the reply.
 */
import type { Endpoint } from './endpoint.ts';

export type SpliceResult = 'ok' | 'reset';

export interface SpliceOptions {
  /** Called once, when the flow is over. */
  onDone(result: SpliceResult, bytes: { ab: number; ba: number }): void;
  /** Called for every chunk written, with its direction (metrics). */
  onBytes?(dir: 'ab' | 'ba', n: number): void;
  /** b's data and end go to these instead of to a, until `release()`. */
  held?: { data(chunk: Uint8Array): void; end(): void };
}

class Pipe {
  /**
   * Chunks read but not yet taken whole by the destination, oldest first. Bun hands each data
   * event its own buffer, so a partly written chunk is kept as a view (`subarray`), never copied.
   */
  private readonly queue: Uint8Array[] = [];
  srcEnded = false;
  /** FIN passed on to the destination. */
  finished = false;
  bytes = 0;

  constructor(
    readonly src: Endpoint,
    readonly dst: Endpoint,
    readonly dir: 'ab' | 'ba',
    private readonly splice: Splice,
  ) {}

  /** Bytes are waiting for the destination. */
  get pending(): boolean {
    return this.queue.length > 0;
  }

  data(chunk: Uint8Array): void {
    if (this.splice.done) return;
    if (this.dst.closed) return this.splice.abort(); // nowhere to deliver: reset the sender
    this.queue.push(chunk);
    // Arrived after pause() took effect: it waits behind what is already queued.
    if (this.queue.length > 1) return;
    if (!this.flush() && !this.splice.done) this.src.pause();
  }

  /** Writes what is queued; true when all of it was taken. */
  private flush(): boolean {
    while (this.queue.length > 0) {
      const chunk = this.queue[0]!;
      const n = this.dst.write(chunk);
      if (n < 0) {
        this.splice.abort();
        return false;
      }
      if (n > 0) this.count(n);
      if (n < chunk.length) {
        this.queue[0] = chunk.subarray(n);
        return false;
      }
      this.queue.shift();
    }
    return true;
  }

  drain(): void {
    if (this.splice.done || this.queue.length === 0) return;
    if (!this.flush()) return;
    if (this.srcEnded) this.finish();
    else this.src.resume();
  }

  end(): void {
    this.srcEnded = true;
    if (this.queue.length === 0) this.finish();
  }

  private finish(): void {
    if (this.finished) return;
    this.finished = true;
    this.dst.shutdown();
    this.splice.check();
  }

  private count(n: number): void {
    this.bytes += n;
    this.splice.onBytes?.(this.dir, n);
  }
}

export class Splice {
  done = false;
  private readonly ab: Pipe;
  private readonly ba: Pipe;
  private held: SpliceOptions['held'] | undefined;
  readonly onBytes: SpliceOptions['onBytes'];

  constructor(
    private readonly a: Endpoint,
    private readonly b: Endpoint,
    private readonly opts: SpliceOptions,
  ) {
    this.ab = new Pipe(a, b, 'ab', this);
    this.ba = new Pipe(b, a, 'ba', this);
    this.held = opts.held;
    this.onBytes = opts.onBytes;
    a.bind({
      data: (d) => this.ab.data(d),
      drain: () => this.ba.drain(),
      end: () => this.ab.end(),
      close: (err) => this.closed(a, err),
    });
    b.bind({
      data: (d) => (this.held ? this.held.data(d) : this.ba.data(d)),
      drain: () => this.ab.drain(),
      end: () => (this.held ? this.held.end() : this.ba.end()),
      close: (err) => this.closed(b, err),
    });
    a.resume();
    b.resume(); // while held, b's bytes go to the reply parser

  }

  /** Starts b → a (after the reply), first with the bytes that followed the reply. */
  release(first?: Uint8Array): void {
    this.held = undefined;
    if (this.done) return;
    if (first && first.length > 0) this.ba.data(first);
  }

  /** Sends bytes a → b as if a had just sent them (what a sent before the splice existed). */
  pushA(chunk: Uint8Array): void {
    this.ab.data(chunk);
  }

  /** Resets both sides (a failure, or data that cannot be delivered). */
  abort(): void {
    if (this.done) return;
    this.done = true; // first: reset()/end() may call back into this splice synchronously
    this.a.reset();
    this.b.reset();
    this.finishWith('reset');
  }

  check(): void {
    if (this.done || !this.ab.finished || !this.ba.finished) return;
    this.done = true;
    this.a.end();
    this.b.end();
    this.finishWith('ok');
  }

  private closed(side: Endpoint, err?: Error): void {
    if (this.done) return;
    if (err) return this.abort();
    // A clean close: its FIN was already seen (`end` comes first). What still had to go to
    // it cannot arrive: reset the sender; otherwise wait for the other direction to end.
    const into = side === this.a ? this.ba : this.ab;
    if (into.pending) return this.abort();
    if (into.finished) this.check();
  }

  private finishWith(result: SpliceResult): void {
    this.done = true;
    this.opts.onDone(result, { ab: this.ab.bytes, ba: this.ba.bytes });
  }
}
