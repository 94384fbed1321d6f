/**
 * One VICI stream over a unix socket: framing in, framing out, and a single "waiter" for
 * the next reply packet. EVENT packets never satisfy the waiter; they go to `onEvent`, so a
 * streaming command (list-sas) and an event subscription both see them.
 *
 * The protocol has no sequence numbers, so the caller must keep at most one exchange
 * outstanding (ViciClient's FIFO queue does). A protocol error, a close or a timeout kills
 * the connection: after any of them the stream's state is unknown and it cannot be reused.
 */
import { createConnection, type Socket } from 'node:net';
import { DnssealError, errorMessage } from '../util/errors.ts';
import {
  decodePacket,
  encodeFrame,
  encodePacket,
  FrameReader,
  PacketType,
  type ViciMessage,
  type ViciPacket,
} from './vici-codec.ts';

export type ReplyPacket = Exclude<ViciPacket, { type: typeof PacketType.EVENT }>;

interface Waiter {
  resolve(p: ReplyPacket): void;
  reject(e: DnssealError): void;
  timer: ReturnType<typeof setTimeout>;
}

export class ViciConnection {
  /** Events raised on this connection (registered ones, or a streaming command's). */
  onEvent: (name: string, message: ViciMessage) => void = () => {};
  /** Called once when the connection ends, with the reason. */
  onClose: (reason: DnssealError) => void = () => {};

  private readonly frames = new FrameReader();
  private waiter: Waiter | null = null;
  private dead: DnssealError | null = null;
  private tail: Promise<unknown> = Promise.resolve();

  private constructor(
    private readonly sock: Socket,
    readonly path: string,
  ) {
    sock.on('data', (chunk: Buffer) => this.receive(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.length)));
    sock.on('error', (err) => this.kill(new DnssealError('vici', 'vici_io', `${path}: ${err.message}`, { cause: err })));
    sock.on('close', () => this.kill(new DnssealError('vici', 'vici_disconnected', `connection to ${path} closed`)));
  }

  /** Connects to the VICI socket; rejects with `vici_unreachable` (charon down, wrong path). */
  static open(path: string, timeoutMs: number): Promise<ViciConnection> {
    return new Promise((resolve, reject) => {
      const sock = createConnection({ path });
      const timer = setTimeout(() => {
        sock.destroy();
        reject(new DnssealError('vici', 'vici_unreachable', `cannot connect to ${path}: timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      const onError = (err: Error) => {
        clearTimeout(timer);
        sock.destroy();
        reject(
          new DnssealError('vici', 'vici_unreachable', `cannot connect to ${path}: ${err.message} (is charon running with the vici plugin?)`, {
            cause: err,
          }),
        );
      };
      sock.once('error', onError);
      sock.once('connect', () => {
        clearTimeout(timer);
        sock.off('error', onError);
        resolve(new ViciConnection(sock, path));
      });
    });
  }

  get closed(): boolean {
    return this.dead !== null;
  }

  /**
   * Sends one packet and resolves with the next non-EVENT packet. Exchanges on one
   * connection run strictly one after another (the protocol cannot tell replies apart);
   * the timeout starts when the packet is sent.
   */
  exchange(p: ViciPacket, timeoutMs: number): Promise<ReplyPacket> {
    const run = this.tail.then(() => this.exchangeNow(p, timeoutMs));
    this.tail = run.catch(() => {});
    return run;
  }

  private exchangeNow(p: ViciPacket, timeoutMs: number): Promise<ReplyPacket> {
    if (this.dead) return Promise.reject(this.dead);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.kill(new DnssealError('vici', 'vici_timeout', `no reply from charon within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiter = { resolve, reject, timer };
      try {
        this.sock.write(encodeFrame(encodePacket(p)));
      } catch (e) {
        this.waiter = null;
        clearTimeout(timer);
        reject(e instanceof DnssealError ? e : new DnssealError('vici', 'vici_io', errorMessage(e), { cause: e }));
      }
    });
  }

  close(): void {
    this.kill(new DnssealError('vici', 'vici_closed', 'connection closed by dnsseal'));
  }

  private receive(chunk: Uint8Array): void {
    if (this.dead) return;
    try {
      for (const seg of this.frames.push(chunk)) {
        const p = decodePacket(seg);
        if (p.type === PacketType.EVENT) {
          this.onEvent(p.name, p.message);
          continue;
        }
        const w = this.waiter;
        if (!w) throw new DnssealError('vici', 'vici_protocol', `unexpected packet type ${p.type} with no request in flight`);
        this.waiter = null;
        clearTimeout(w.timer);
        w.resolve(p);
      }
    } catch (e) {
      this.kill(e instanceof DnssealError ? e : new DnssealError('vici', 'vici_protocol', errorMessage(e), { cause: e }));
    }
  }

  private kill(reason: DnssealError): void {
    if (this.dead) return;
    this.dead = reason;
    this.sock.destroy();
    const w = this.waiter;
    this.waiter = null;
    if (w) {
      clearTimeout(w.timer);
      w.reject(reason);
    }
    this.onClose(reason);
  }
}
