/**
 * DNS over TCP framing (RFC 1035 §4.2.2, RFC 7766 §8): each message is preceded by a 2-byte
 * big-endian length. The reader reassembles messages across segments and splits several
 * messages in one segment (pipelining); it never holds more than one partial message.
 */

export type FrameResult =
  | { kind: 'frames'; frames: Uint8Array[] }
  /** The stream can no longer be trusted (a length below `minLength`): close it. */
  | { kind: 'bad'; reason: 'garbage' };

export class FrameReader {
  private buf: Uint8Array = new Uint8Array(0);

  /** @param minLength messages shorter than this are garbage (12: a DNS header). */
  constructor(private readonly minLength = 12) {}

  push(chunk: Uint8Array): FrameResult {
    let data: Uint8Array;
    if (this.buf.length === 0) data = chunk;
    else {
      data = new Uint8Array(this.buf.length + chunk.length);
      data.set(this.buf);
      data.set(chunk, this.buf.length);
    }
    const frames: Uint8Array[] = [];
    let p = 0;
    while (p + 2 <= data.length) {
      const len = (data[p]! << 8) | data[p + 1]!;
      if (len < this.minLength) {
        this.buf = new Uint8Array(0);
        return { kind: 'bad', reason: 'garbage' };
      }
      if (p + 2 + len > data.length) break;
      frames.push(data.slice(p + 2, p + 2 + len));
      p += 2 + len;
    }
    this.buf = p === data.length ? new Uint8Array(0) : data.slice(p);
    return { kind: 'frames', frames };
  }

  /** Bytes of an incomplete message held back. */
  get buffered(): number {
    return this.buf.length;
  }
}

/** Prefixes `msg` with its 2-byte length. */
export function frame(msg: Uint8Array): Uint8Array {
  const out = new Uint8Array(msg.length + 2);
  out[0] = (msg.length >>> 8) & 0xff;
  out[1] = msg.length & 0xff;
  out.set(msg, 2);
  return out;
}
