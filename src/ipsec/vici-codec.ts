/**
 * The VICI wire format (strongSwan `src/libcharon/plugins/vici/README.md`), three layers:
 *
 *   transport  u32 big-endian length, then that many bytes (at most 512 KiB)
 *   packet     u8 type; named types then carry u8 name length + ASCII name; the rest is a message
 *   message    a sequence of elements: SECTION_START name, SECTION_END, KEY_VALUE name value,
 *              LIST_START name, LIST_ITEM value, LIST_END. Names have a u8 length,
 *              values a u16 big-endian length.
 *
 * Messages map onto plain objects: a section is an object, a key/value is a string (or a
 * Uint8Array when encoding binary data, or when decoding with `{ raw: true }`), a list is an
 * array of values. Key order is kept (charon cares, e.g. for auth rounds), except that
 * JavaScript puts integer-like keys first; VICI keys are never integers where order matters.
 *
 * Every read is bounds-checked first; malformed input throws a DnssealError with code
 * `vici_decode`, never a RangeError or TypeError. Unencodable input throws `vici_encode`.
 */
import { DnssealError } from '../util/errors.ts';

export const PacketType = {
  CMD_REQUEST: 0,
  CMD_RESPONSE: 1,
  CMD_UNKNOWN: 2,
  EVENT_REGISTER: 3,
  EVENT_UNREGISTER: 4,
  EVENT_CONFIRM: 5,
  EVENT_UNKNOWN: 6,
  EVENT: 7,
} as const;
export type PacketTypeNumber = (typeof PacketType)[keyof typeof PacketType];

export const Element = {
  SECTION_START: 1,
  SECTION_END: 2,
  KEY_VALUE: 3,
  LIST_START: 4,
  LIST_ITEM: 5,
  LIST_END: 6,
} as const;

/** Largest transport segment charon accepts or sends (README: 512 KB). */
export const MAX_SEGMENT = 512 * 1024;
/** Sections nest "to arbitrary levels"; we stop a hostile peer from exhausting the stack. */
export const MAX_DEPTH = 64;

export type ViciScalar = string | Uint8Array;
export type ViciValue = ViciScalar | ViciScalar[] | ViciMessage;
export interface ViciMessage {
  [key: string]: ViciValue;
}

/** A decoded value that is a section (not a string, blob or list). */
export function isSection(v: unknown): v is ViciMessage {
  return v !== null && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Uint8Array);
}

export type ViciPacket =
  | { type: typeof PacketType.CMD_REQUEST; name: string; message: ViciMessage }
  | { type: typeof PacketType.CMD_RESPONSE; message: ViciMessage }
  | { type: typeof PacketType.CMD_UNKNOWN }
  | { type: typeof PacketType.EVENT_REGISTER; name: string }
  | { type: typeof PacketType.EVENT_UNREGISTER; name: string }
  | { type: typeof PacketType.EVENT_CONFIRM }
  | { type: typeof PacketType.EVENT_UNKNOWN }
  | { type: typeof PacketType.EVENT; name: string; message: ViciMessage };

const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder('utf-8');

function encodeError(msg: string): DnssealError {
  return new DnssealError('vici', 'vici_encode', `cannot encode message: ${msg}`);
}
function decodeError(msg: string, offset: number): DnssealError {
  return new DnssealError('vici', 'vici_decode', `malformed message at byte ${offset}: ${msg}`);
}

/** A growable byte buffer; `bytes()` returns exactly what was written. */
class Writer {
  private buf = new Uint8Array(256);
  private len = 0;
  private ensure(n: number): void {
    if (this.len + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.len + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
  }
  u8(v: number): void {
    this.ensure(1);
    this.buf[this.len++] = v;
  }
  u16(v: number): void {
    this.ensure(2);
    this.buf[this.len++] = v >> 8;
    this.buf[this.len++] = v & 0xff;
  }
  raw(b: Uint8Array): void {
    this.ensure(b.length);
    this.buf.set(b, this.len);
    this.len += b.length;
  }
  bytes(): Uint8Array {
    return this.buf.slice(0, this.len);
  }
}

function nameBytes(name: string, what: string): Uint8Array {
  const b = utf8.encode(name);
  if (b.length > 255) throw encodeError(`${what} '${name.slice(0, 40)}…' is longer than 255 bytes`);
  return b;
}

function valueBytes(v: unknown, key: string): Uint8Array {
  let b: Uint8Array;
  if (typeof v === 'string') b = utf8.encode(v);
  else if (v instanceof Uint8Array) b = v;
  else if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') b = utf8.encode(String(v));
  else throw encodeError(`value of '${key}' is not a string, number, boolean or Uint8Array`);
  if (b.length > 0xffff) throw encodeError(`value of '${key}' is ${b.length} bytes, more than 65535`);
  return b;
}

function writeSection(w: Writer, msg: Record<string, unknown>, depth: number): void {
  if (depth > MAX_DEPTH) throw encodeError(`sections nested deeper than ${MAX_DEPTH}`);
  for (const [key, v] of Object.entries(msg)) {
    if (v === undefined) continue; // optional keys left out, like libvici's callers do
    const name = nameBytes(key, 'key');
    if (Array.isArray(v)) {
      w.u8(Element.LIST_START);
      w.u8(name.length);
      w.raw(name);
      for (const item of v) {
        if (Array.isArray(item) || (item !== null && typeof item === 'object' && !(item instanceof Uint8Array)))
          throw encodeError(`list '${key}' holds a list or section; VICI lists hold values only`);
        const b = valueBytes(item, key);
        w.u8(Element.LIST_ITEM);
        w.u16(b.length);
        w.raw(b);
      }
      w.u8(Element.LIST_END);
    } else if (v !== null && typeof v === 'object' && !(v instanceof Uint8Array)) {
      w.u8(Element.SECTION_START);
      w.u8(name.length);
      w.raw(name);
      writeSection(w, v as Record<string, unknown>, depth + 1);
      w.u8(Element.SECTION_END);
    } else {
      const b = valueBytes(v, key);
      w.u8(Element.KEY_VALUE);
      w.u8(name.length);
      w.raw(name);
      w.u16(b.length);
      w.raw(b);
    }
  }
}

/** Encodes a message (the root section's contents) to element bytes. */
export function encodeMessage(msg: ViciMessage | Record<string, unknown>): Uint8Array {
  const w = new Writer();
  writeSection(w, msg as Record<string, unknown>, 0);
  return w.bytes();
}

/** Bounds-checked reader over one message or packet. */
class Reader {
  pos: number;
  constructor(
    private readonly b: Uint8Array,
    start = 0,
    private readonly end = b.length,
  ) {
    this.pos = start;
  }
  remaining(): number {
    return this.end - this.pos;
  }
  need(n: number, what: string): void {
    if (this.remaining() < n) throw decodeError(`${what} needs ${n} bytes, ${this.remaining()} left`, this.pos);
  }
  u8(what: string): number {
    this.need(1, what);
    return this.b[this.pos++]!;
  }
  u16(what: string): number {
    this.need(2, what);
    const v = (this.b[this.pos]! << 8) | this.b[this.pos + 1]!;
    this.pos += 2;
    return v;
  }
  take(n: number, what: string): Uint8Array {
    this.need(n, what);
    const out = this.b.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }
  name(what: string): string {
    const n = this.u8(`${what} length`);
    return utf8Decoder.decode(this.take(n, what));
  }
}

export interface DecodeOptions {
  /** Return values as Uint8Array copies instead of UTF-8 strings (e.g. certificate data). */
  raw?: boolean;
}

function setKey(target: Record<string, ViciValue>, key: string, v: ViciValue, offset: number): void {
  if (Object.prototype.hasOwnProperty.call(target, key)) throw decodeError(`duplicate key '${key}'`, offset);
  // defineProperty, not assignment: a key named `__proto__` must stay data.
  Object.defineProperty(target, key, { value: v, enumerable: true, writable: true, configurable: true });
}

function readMessage(r: Reader, opts: DecodeOptions): ViciMessage {
  const value = (b: Uint8Array): ViciScalar => (opts.raw ? b.slice() : utf8Decoder.decode(b));
  const root: ViciMessage = {};
  const stack: ViciMessage[] = [root];
  let list: ViciScalar[] | null = null;
  while (r.remaining() > 0) {
    const at = r.pos;
    const type = r.u8('element type');
    const top = stack[stack.length - 1]!;
    if (list !== null && type !== Element.LIST_ITEM && type !== Element.LIST_END)
      throw decodeError(`element type ${type} inside a list`, at);
    switch (type) {
      case Element.SECTION_START: {
        const name = r.name('section name');
        if (stack.length > MAX_DEPTH) throw decodeError(`sections nested deeper than ${MAX_DEPTH}`, at);
        const section: ViciMessage = {};
        setKey(top, name, section, at);
        stack.push(section);
        break;
      }
      case Element.SECTION_END:
        if (stack.length === 1) throw decodeError('SECTION_END without an open section', at);
        stack.pop();
        break;
      case Element.KEY_VALUE: {
        const name = r.name('key name');
        const len = r.u16('value length');
        setKey(top, name, value(r.take(len, 'value')), at);
        break;
      }
      case Element.LIST_START: {
        const name = r.name('list name');
        list = [];
        setKey(top, name, list, at);
        break;
      }
      case Element.LIST_ITEM: {
        if (list === null) throw decodeError('LIST_ITEM outside a list', at);
        const len = r.u16('item length');
        list.push(value(r.take(len, 'item')));
        break;
      }
      case Element.LIST_END:
        if (list === null) throw decodeError('LIST_END without an open list', at);
        list = null;
        break;
      default:
        throw decodeError(`unknown element type ${type}`, at);
    }
  }
  if (list !== null) throw decodeError('list not closed', r.pos);
  if (stack.length !== 1) throw decodeError(`${stack.length - 1} section(s) not closed`, r.pos);
  return root;
}

/** Decodes message element bytes (the whole of `bytes`) into a plain object. */
export function decodeMessage(bytes: Uint8Array, opts: DecodeOptions = {}): ViciMessage {
  return readMessage(new Reader(bytes), opts);
}

function isNamed(type: number): boolean {
  return type === PacketType.CMD_REQUEST || type === PacketType.EVENT_REGISTER ||
    type === PacketType.EVENT_UNREGISTER || type === PacketType.EVENT;
}
function hasMessage(type: number): boolean {
  return type === PacketType.CMD_REQUEST || type === PacketType.CMD_RESPONSE || type === PacketType.EVENT;
}

/** Encodes a packet (without the transport length prefix). */
export function encodePacket(p: ViciPacket): Uint8Array {
  const w = new Writer();
  w.u8(p.type);
  if ('name' in p) {
    const n = nameBytes(p.name, 'packet name');
    w.u8(n.length);
    w.raw(n);
  }
  if ('message' in p) w.raw(encodeMessage(p.message));
  const out = w.bytes();
  if (out.length > MAX_SEGMENT) throw encodeError(`packet is ${out.length} bytes, more than ${MAX_SEGMENT}`);
  return out;
}

/** Decodes one packet (a whole transport segment, without its length prefix). */
export function decodePacket(bytes: Uint8Array, opts: DecodeOptions = {}): ViciPacket {
  const r = new Reader(bytes);
  const type = r.u8('packet type');
  if (type > PacketType.EVENT) throw decodeError(`unknown packet type ${type}`, 0);
  const name = isNamed(type) ? r.name('packet name') : undefined;
  if (!hasMessage(type)) {
    if (r.remaining() !== 0) throw decodeError(`${r.remaining()} trailing bytes after packet type ${type}`, r.pos);
    return (name === undefined ? { type } : { type, name }) as ViciPacket;
  }
  const message = readMessage(r, opts);
  return (name === undefined ? { type, message } : { type, name, message }) as ViciPacket;
}

/** Prefixes a packet with the u32 big-endian transport length. */
export function encodeFrame(packet: Uint8Array): Uint8Array {
  if (packet.length > MAX_SEGMENT) throw encodeError(`segment is ${packet.length} bytes, more than ${MAX_SEGMENT}`);
  const out = new Uint8Array(4 + packet.length);
  new DataView(out.buffer).setUint32(0, packet.length, false);
  out.set(packet, 4);
  return out;
}

/**
 * Reassembles transport segments from stream chunks. `push` returns every segment completed
 * by the chunk; an announced length over MAX_SEGMENT throws (the stream cannot be resynced,
 * so the caller must drop the connection).
 */
export class FrameReader {
  private pending: Uint8Array[] = [];
  private pendingLen = 0;

  push(chunk: Uint8Array): Uint8Array[] {
    if (chunk.length > 0) {
      this.pending.push(chunk);
      this.pendingLen += chunk.length;
    }
    const out: Uint8Array[] = [];
    for (;;) {
      if (this.pendingLen < 4) return out;
      const head = this.peek(4);
      const len = ((head[0]! << 24) | (head[1]! << 16) | (head[2]! << 8) | head[3]!) >>> 0;
      if (len > MAX_SEGMENT) throw decodeError(`segment length ${len} exceeds ${MAX_SEGMENT}`, 0);
      if (this.pendingLen < 4 + len) return out;
      const all = this.peek(4 + len);
      out.push(all.slice(4, 4 + len));
      this.consume(4 + len);
    }
  }

  /** Bytes received but not yet part of a complete segment. */
  buffered(): number {
    return this.pendingLen;
  }

  private peek(n: number): Uint8Array {
    const first = this.pending[0]!;
    if (first.length >= n) return first.subarray(0, n);
    const joined = new Uint8Array(this.pendingLen);
    let off = 0;
    for (const c of this.pending) {
      joined.set(c, off);
      off += c.length;
    }
    this.pending = [joined];
    return joined.subarray(0, n);
  }

  private consume(n: number): void {
    const first = this.pending[0]!;
    // peek(n) already joined the chunks when n spans several, so the first chunk suffices.
    const rest = first.subarray(n);
    this.pending = rest.length > 0 ? [rest, ...this.pending.slice(1)] : this.pending.slice(1);
    this.pendingLen -= n;
  }
}
