/**
 * Low-level DNS wire helpers (RFC 1035 §4): constants, bounds-checked reads, names.
 * Every read checks bounds first and throws a `WireError`; callers turn that into FORMERR
 * (for queries) or an upstream failure (for answers). Nothing here allocates beyond the
 * strings it returns.
 */
import { DnssealError } from '../util/errors.ts';

export const HEADER_LEN = 12;

export const TYPE_A = 1;
export const TYPE_NS = 2;
export const TYPE_CNAME = 5;
export const TYPE_SOA = 6;
export const TYPE_AAAA = 28;
export const TYPE_OPT = 41;
export const TYPE_SVCB = 64;
export const TYPE_HTTPS = 65;
export const CLASS_IN = 1;

export const RCODE_NOERROR = 0;
export const RCODE_FORMERR = 1;
export const RCODE_SERVFAIL = 2;
export const RCODE_NXDOMAIN = 3;
export const RCODE_NOTIMP = 4;
export const RCODE_REFUSED = 5;

export const OPCODE_QUERY = 0;

/** Flag bits of header bytes 2..3 as one u16. */
export const FLAG_QR = 0x8000;
export const FLAG_AA = 0x0400;
export const FLAG_TC = 0x0200;
export const FLAG_RD = 0x0100;
export const FLAG_RA = 0x0080;
export const FLAG_AD = 0x0020;
export const FLAG_CD = 0x0010;

/** The DO bit inside an OPT record's TTL field (RFC 3225). */
export const EDNS_DO = 0x8000;

/** Longest name on the wire (RFC 1035 §2.3.4), counting length octets and the root. */
export const MAX_NAME_WIRE = 255;
/** More pointer hops than a legal name can need: a loop otherwise. */
const MAX_POINTERS = 128;

export class WireError extends DnssealError {
  constructor(message: string) {
    super('dns', 'wire_malformed', message);
    this.name = 'WireError';
  }
}

export function u16(buf: Uint8Array, off: number): number {
  if (off + 2 > buf.length) throw new WireError(`truncated at ${off} (need 2 of ${buf.length})`);
  return (buf[off]! << 8) | buf[off + 1]!;
}

export function u32(buf: Uint8Array, off: number): number {
  if (off + 4 > buf.length) throw new WireError(`truncated at ${off} (need 4 of ${buf.length})`);
  return ((buf[off]! << 24) | (buf[off + 1]! << 16) | (buf[off + 2]! << 8) | buf[off + 3]!) >>> 0;
}

export function putU16(buf: Uint8Array, off: number, v: number): void {
  buf[off] = (v >>> 8) & 0xff;
  buf[off + 1] = v & 0xff;
}

/**
 * Skips the name at `off` without decoding it; returns the offset just past it in the
 * original record (a pointer ends the name there). Validates label lengths and bounds.
 */
export function skipName(buf: Uint8Array, off: number): number {
  let p = off;
  for (;;) {
    if (p >= buf.length) throw new WireError(`name runs past the end at ${p}`);
    const len = buf[p]!;
    if (len === 0) return p + 1;
    if ((len & 0xc0) === 0xc0) {
      if (p + 2 > buf.length) throw new WireError(`pointer truncated at ${p}`);
      return p + 2;
    }
    if ((len & 0xc0) !== 0) throw new WireError(`reserved label type 0x${len.toString(16)} at ${p}`);
    p += 1 + len;
    if (p - off > MAX_NAME_WIRE) throw new WireError(`name longer than ${MAX_NAME_WIRE} octets at ${off}`);
  }
}

/**
 * Presentation text of names is written here a byte at a time and made a string once: a string
 * built with `+=` a character at a time costs a rope node per character (and a flatten when it
 * is first hashed or compared), three times the time of one decode. Room for 255 wire octets
 * each escaped as \DDD. Not re-entrant (nor is JS).
 */
const NAME_TEXT = new Uint8Array(1024);
const ASCII = new TextDecoder('latin1');

/**
 * Appends the label octets `buf[from, to)` to NAME_TEXT at `n`, A–Z folded to lower case, other
 * octets outside printable ASCII, '.' and '\\' escaped as \DDD (RFC 4343); returns the new end.
 */
export function putLabelText(buf: Uint8Array, from: number, to: number, n: number): number {
  const out = NAME_TEXT;
  for (let i = from; i < to; i++) {
    let c = buf[i]!;
    if (c >= 0x41 && c <= 0x5a) c += 0x20;
    if (c > 0x20 && c < 0x7f && c !== 0x2e && c !== 0x5c) out[n++] = c;
    else {
      out[n++] = 0x5c;
      out[n++] = 0x30 + ((c / 100) | 0);
      out[n++] = 0x30 + (((c / 10) | 0) % 10);
      out[n++] = 0x30 + (c % 10);
    }
  }
  return n;
}

/** Appends a '.' between labels. */
export function putDot(n: number): number {
  NAME_TEXT[n] = 0x2e;
  return n + 1;
}

/** The text written to NAME_TEXT so far (`n` octets, ASCII), as one flat string. */
export function nameText(n: number): string {
  return n === 0 ? '' : ASCII.decode(NAME_TEXT.subarray(0, n));
}

export interface NameRead {
  /** Lower-case presentation form without the trailing dot; '' is the root. */
  name: string;
  /** Offset just past the name in the original position. */
  end: number;
}

/**
 * Reads a possibly compressed name, lower-cased, without trailing dot. Pointers must point
 * strictly backwards (no loops, no forward references); total length ≤ 255.
 * Label bytes outside printable ASCII, '.' and '\\' are escaped as \DDD (RFC 4343) so two
 * different wire names never read as the same text.
 */
export function readName(buf: Uint8Array, off: number): NameRead {
  let p = off;
  let end = -1;
  let hops = 0;
  let wireLen = 0;
  // Each pointer must land strictly before the segment that holds it, so offsets only
  // decrease and every chain ends: no loops, no forward references.
  let limit = off;
  let n = 0;
  for (;;) {
    if (p >= buf.length) throw new WireError(`name runs past the end at ${p}`);
    const len = buf[p]!;
    if (len === 0) {
      if (end < 0) end = p + 1;
      return { name: nameText(n), end };
    }
    if ((len & 0xc0) === 0xc0) {
      if (p + 2 > buf.length) throw new WireError(`pointer truncated at ${p}`);
      const target = ((len & 0x3f) << 8) | buf[p + 1]!;
      if (end < 0) end = p + 2;
      if (++hops > MAX_POINTERS || target >= limit) throw new WireError(`compression pointer loop or forward pointer at ${p}`);
      limit = target;
      p = target;
      continue;
    }
    if ((len & 0xc0) !== 0) throw new WireError(`reserved label type 0x${len.toString(16)} at ${p}`);
    if (p + 1 + len > buf.length) throw new WireError(`label runs past the end at ${p}`);
    wireLen += 1 + len;
    if (wireLen + 1 > MAX_NAME_WIRE) throw new WireError(`name longer than ${MAX_NAME_WIRE} octets at ${off}`);
    if (n > 0) n = putDot(n);
    n = putLabelText(buf, p + 1, p + 1 + len, n);
    p += 1 + len;
  }
}

/** The fixed parts of one resource record. */
export interface RecordHead {
  nameOff: number;
  type: number;
  klass: number;
  ttl: number;
  rdOff: number;
  rdLen: number;
  /** Offset just past the record. */
  end: number;
}

/** Reads the fixed parts of the record at `off`, bounds-checked; rdata is not decoded. */
export function readRecordHead(buf: Uint8Array, off: number): RecordHead {
  const afterName = skipName(buf, off);
  if (afterName + 10 > buf.length) throw new WireError(`record header truncated at ${afterName}`);
  const type = (buf[afterName]! << 8) | buf[afterName + 1]!;
  const klass = (buf[afterName + 2]! << 8) | buf[afterName + 3]!;
  const ttl =
    ((buf[afterName + 4]! << 24) | (buf[afterName + 5]! << 16) | (buf[afterName + 6]! << 8) | buf[afterName + 7]!) >>> 0;
  const rdLen = (buf[afterName + 8]! << 8) | buf[afterName + 9]!;
  const rdOff = afterName + 10;
  if (rdOff + rdLen > buf.length) throw new WireError(`rdata runs past the end at ${rdOff}`);
  return { nameOff: off, type, klass, ttl, rdOff, rdLen, end: rdOff + rdLen };
}
