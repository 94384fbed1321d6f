/**
 * Datagram batching: packets queued during one turn of the event loop leave together in one
 * `sendMany` (sendmmsg) at its end (`setImmediate`), instead of one syscall each. Bun runs
 * the microtasks after every received datagram, so answers released by promise callbacks
 * would otherwise each cost their own send. The extra delay is the rest of the loop turn
 * (microseconds), never a timer.
 */

/** For a socket that is not connected: (data, port, address) triples. */
export class AddressedBatch {
  private queue: Array<Uint8Array | number | string> = [];
  private scheduled = false;

  /**
   * @param sendMany the socket's sendMany; returns how many packets it took
   * @param onDropped called with the number of packets the socket refused
   */
  constructor(
    private readonly sendMany: (flat: Array<Uint8Array | number | string>) => number,
    private readonly onDropped: (n: number) => void,
  ) {}

  push(data: Uint8Array, port: number, address: string): void {
    this.queue.push(data, port, address);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.flush);
    }
  }

  readonly flush = (): void => {
    this.scheduled = false;
    const q = this.queue;
    if (q.length === 0) return;
    this.queue = [];
    let sent = 0;
    try {
      sent = this.sendMany(q);
    } catch {
      sent = 0; // socket closed meanwhile
    }
    const total = q.length / 3;
    if (sent < total) this.onDropped(total - sent);
  };
}

/** For a connected socket: packets in order, each with a callback if the socket refuses it. */
export class ConnectedBatch {
  private packets: Uint8Array[] = [];
  private failures: Array<() => void> = [];
  private scheduled = false;

  constructor(private readonly sendMany: (packets: Uint8Array[]) => number) {}

  push(data: Uint8Array, onRefused: () => void): void {
    this.packets.push(data);
    this.failures.push(onRefused);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.flush);
    }
  }

  readonly flush = (): void => {
    this.scheduled = false;
    const packets = this.packets;
    const failures = this.failures;
    if (packets.length === 0) return;
    this.packets = [];
    this.failures = [];
    let sent = 0;
    try {
      sent = this.sendMany(packets);
    } catch {
      sent = 0;
    }
    for (let i = sent; i < failures.length; i++) failures[i]!();
  };
}
