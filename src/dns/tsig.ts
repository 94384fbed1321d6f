/**
 * TSIG (RFC 8945) with HMAC-SHA256, computed over the exact wire bytes.
 *
 * dns-packet is not used here on purpose: the MAC covers the message as it was sent
 * (original ID, compression as sent, ARCOUNT without the TSIG), so re-encoding a decoded
 * message could change the bytes and with them the MAC.
 *
 * Digest input (RFC 8945 §4.3):
 *   [request MAC size u16, request MAC]   — responses only
 *   the message without its TSIG RR, ARCOUNT - 1, ID = the TSIG's Original ID
 *   TSIG variables: key name (canonical), CLASS ANY, TTL 0, algorithm name (canonical),
 *                   time signed u48, fudge u16, error u16, other len u16, other data
 *
 * Verification runs in a fixed order and stops at the first failure, each with its own
 * code: exactly one TSIG → it is the last record of the additional section and nothing
 * follows it → key name known → algorithm matches the key → MAC length sane (§5.2.2.1) →
 * MAC correct (constant-time) → time within fudge. Checking placement before anything
 * else is what avoids the known "TSIG not last / record after TSIG" bugs of other servers.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { Clock } from '../util/clock.ts';
import { DnssealError } from '../util/errors.ts';
import { WireError, readRecordHead, skipName } from './wire.ts';

export const TYPE_TSIG = 250;
export const CLASS_ANY = 255;
export const HMAC_SHA256 = 'hmac-sha256';
/** HMAC-SHA256 output length. */
export const SHA256_LEN = 32;
/** RFC 8945 §5.2.2.1: never accept less than max(10, half the hash). */
export const MIN_MAC_LEN = 16;
/** RFC 8945 §10 recommends 300 s. */
export const DEFAULT_FUDGE_S = 300;

/** TSIG error codes carried in the TSIG RR's Error field (RFC 8945 §3). */
export const TsigRcode = {
  NOERROR: 0,
  FORMERR: 1,
  NOTAUTH: 9,
  BADSIG: 16,
  BADKEY: 17,
  BADTIME: 18,
  BADTRUNC: 22,
} as const;

export interface TsigKey {
  /** Key name, lower-case, no trailing dot. */
  name: string;
  algorithm: 'hmac-sha256';
  secret: Uint8Array;
}

/** Looks a key up by its canonical (lower-case, no trailing dot) name. */
export interface Keyring {
  get(name: string): TsigKey | undefined;
}

export type TsigFailureCode =
  | 'tsig_malformed' // the DNS message itself cannot be walked
  | 'tsig_missing' // no TSIG at all (unsigned answer)
  | 'tsig_multiple' // more than one TSIG
  | 'tsig_not_last' // TSIG not the last RR of the additional section (incl. an RR after it)
  | 'tsig_trailing' // bytes after the last RR
  | 'tsig_formerr' // TSIG RR itself malformed (class, ttl, rdata, MAC longer than the hash)
  | 'tsig_badkey' // key name unknown, not the expected key, or algorithm mismatch
  | 'tsig_badtrunc' // MAC shorter than the allowed minimum
  | 'tsig_badsig' // MAC wrong
  | 'tsig_badtime' // time signed outside fudge
  | 'tsig_error'; // the peer's TSIG carries a non-zero error (its own refusal)

export interface TsigRecord {
  keyName: string;
  algorithm: string;
  timeSigned: number;
  fudge: number;
  mac: Uint8Array;
  originalId: number;
  error: number;
  otherData: Uint8Array;
}

export type TsigVerifyResult =
  | { ok: true; tsig: TsigRecord; key: TsigKey }
  | {
      ok: false;
      code: TsigFailureCode;
      /** What a server returns in the TSIG Error field (or the RCODE, for FORMERR). */
      rcode: number;
      message: string;
      /** Present when the TSIG RR could be parsed (a server needs it to answer BADTIME). */
      tsig?: TsigRecord;
      key?: TsigKey;
    };

// ---------------------------------------------------------------------------------------
// Record boundaries (the shared wire reader) and TSIG's names as labels.

export interface RecordSpan {
  /** Offset of the owner name. */
  start: number;
  type: number;
  klass: number;
  ttl: number;
  rdStart: number;
  rdLength: number;
  /** Offset just past the record. */
  end: number;
  section: 'answer' | 'authority' | 'additional';
}

export interface MessageSpans {
  id: number;
  qdcount: number;
  ancount: number;
  nscount: number;
  arcount: number;
  records: RecordSpan[];
  /** Offset just past the last record. */
  end: number;
}

function fail(code: string, message: string): never {
  throw new DnssealError('tsig', code, message);
}

function need(buf: Uint8Array, off: number, n: number, what: string): void {
  if (off < 0 || off + n > buf.length) fail('tsig_malformed', `message truncated reading ${what} at offset ${off}`);
}

/**
 * A copy of `buf[start, end)`. Not `.slice()`: callers may pass a Node/Bun `Buffer` (the TCP
 * listener does), whose `slice` is a view — writing to it would change the caller's message.
 */
export function copyBytes(buf: Uint8Array, start = 0, end = buf.length): Uint8Array {
  const out = new Uint8Array(Math.max(0, end - start));
  out.set(buf.subarray(start, end));
  return out;
}

function u16(buf: Uint8Array, off: number): number {
  return (buf[off]! << 8) | buf[off + 1]!;
}

function u32(buf: Uint8Array, off: number): number {
  return ((buf[off]! << 24) >>> 0) + ((buf[off + 1]! << 16) | (buf[off + 2]! << 8) | buf[off + 3]!);
}

/**
 * Reads a name as lower-case labels, following compression pointers (each must point
 * strictly backwards, so loops are impossible). Returns the labels and the offset after
 * the name as it sits in place.
 */
export function readNameLabels(buf: Uint8Array, off: number): { labels: string[]; end: number } {
  const labels: string[] = [];
  let end = -1;
  let total = 0;
  let pos = off;
  for (;;) {
    need(buf, pos, 1, 'label length');
    const len = buf[pos]!;
    if (len === 0) {
      if (end < 0) end = pos + 1;
      return { labels, end };
    }
    if ((len & 0xc0) === 0xc0) {
      need(buf, pos, 2, 'compression pointer');
      const target = ((len & 0x3f) << 8) | buf[pos + 1]!;
      if (end < 0) end = pos + 2;
      if (target >= pos) fail('tsig_malformed', `forward or looping compression pointer at offset ${pos}`);
      pos = target;
      continue;
    }
    if (len & 0xc0) fail('tsig_malformed', `reserved label type 0x${len.toString(16)} at offset ${pos}`);
    need(buf, pos + 1, len, 'label');
    total += len + 1;
    if (total > 255) fail('tsig_malformed', 'name longer than 255 octets');
    let s = '';
    for (let i = 0; i < len; i++) {
      const c = buf[pos + 1 + i]!;
      s += String.fromCharCode(c >= 0x41 && c <= 0x5a ? c + 32 : c);
    }
    labels.push(s);
    pos += len + 1;
  }
}

/** Canonical wire form (RFC 4034 §6.2: uncompressed, lower-case) of a dotted name. */
export function canonicalName(name: string): Uint8Array {
  const trimmed = name.replace(/\.$/, '').toLowerCase();
  const labels = trimmed === '' ? [] : trimmed.split('.');
  const out: number[] = [];
  for (const l of labels) {
    const bytes = new TextEncoder().encode(l);
    if (bytes.length === 0 || bytes.length > 63) fail('tsig_bad_name', `bad label in name ${JSON.stringify(name)}`);
    out.push(bytes.length, ...bytes);
  }
  out.push(0);
  if (out.length > 255) fail('tsig_bad_name', `name too long: ${JSON.stringify(name)}`);
  return Uint8Array.from(out);
}

/**
 * Walks header, questions and every RR with the shared wire reader (src/dns/wire.ts);
 * throws DnssealError('tsig_malformed') on bad input.
 */
export function walkMessage(buf: Uint8Array): MessageSpans {
  need(buf, 0, 12, 'header');
  const qdcount = u16(buf, 4);
  const ancount = u16(buf, 6);
  const nscount = u16(buf, 8);
  const arcount = u16(buf, 10);
  const records: RecordSpan[] = [];
  let off = 12;
  try {
    for (let i = 0; i < qdcount; i++) {
      off = skipName(buf, off);
      need(buf, off, 4, 'question type/class');
      off += 4;
    }
    const sections: Array<[RecordSpan['section'], number]> = [
      ['answer', ancount],
      ['authority', nscount],
      ['additional', arcount],
    ];
    for (const [section, count] of sections) {
      for (let i = 0; i < count; i++) {
        const rr = readRecordHead(buf, off);
        records.push({ start: off, type: rr.type, klass: rr.klass, ttl: rr.ttl, rdStart: rr.rdOff, rdLength: rr.rdLen, end: rr.end, section });
        off = rr.end;
      }
    }
  } catch (err) {
    if (err instanceof WireError) fail('tsig_malformed', err.message.replace(/^dns: /, ''));
    throw err;
  }
  return { id: u16(buf, 0), qdcount, ancount, nscount, arcount, records, end: off };
}

// ---------------------------------------------------------------------------------------
// TSIG RR codec.

/** Parses a TSIG RR's owner name and RDATA (algorithm name must not be compressed). */
export function parseTsigRecord(buf: Uint8Array, rec: RecordSpan): TsigRecord {
  const owner = readNameLabels(buf, rec.start);
  const rdEnd = rec.rdStart + rec.rdLength;
  const view = buf.subarray(0, rdEnd); // reads past the RDATA are out of bounds
  let off = rec.rdStart;
  const alg = readNameLabels(view, off);
  if (alg.end - off !== alg.labels.reduce((n, l) => n + l.length + 1, 1)) {
    fail('tsig_formerr', 'compressed algorithm name in TSIG');
  }
  off = alg.end;
  need(view, off, 10, 'TSIG time/fudge/mac size');
  const timeSigned = u16(view, off) * 2 ** 32 + u32(view, off + 2);
  const fudge = u16(view, off + 6);
  const macSize = u16(view, off + 8);
  off += 10;
  need(view, off, macSize, 'TSIG MAC');
  const mac = copyBytes(view, off, off + macSize);
  off += macSize;
  need(view, off, 6, 'TSIG original id/error/other len');
  const originalId = u16(view, off);
  const error = u16(view, off + 2);
  const otherLen = u16(view, off + 4);
  off += 6;
  need(view, off, otherLen, 'TSIG other data');
  const otherData = copyBytes(view, off, off + otherLen);
  off += otherLen;
  if (off !== rdEnd) fail('tsig_formerr', `TSIG RDATA has ${rdEnd - off} octets past its end`);
  return {
    keyName: owner.labels.join('.'),
    algorithm: alg.labels.join('.'),
    timeSigned,
    fudge,
    mac,
    originalId,
    error,
    otherData,
  };
}

function u48(n: number): number[] {
  const hi = Math.floor(n / 2 ** 32);
  const lo = n >>> 0;
  return [(hi >> 8) & 0xff, hi & 0xff, (lo >>> 24) & 0xff, (lo >> 16) & 0xff, (lo >> 8) & 0xff, lo & 0xff];
}

function be16(n: number): number[] {
  return [(n >> 8) & 0xff, n & 0xff];
}

/** The TSIG variables of §4.3.3 in canonical form. */
function tsigVariables(keyName: string, algorithm: string, t: Omit<TsigRecord, 'keyName' | 'algorithm' | 'mac' | 'originalId'>): Uint8Array {
  return concat([
    canonicalName(keyName),
    Uint8Array.from([...be16(CLASS_ANY), 0, 0, 0, 0]),
    canonicalName(algorithm),
    Uint8Array.from([...u48(t.timeSigned), ...be16(t.fudge), ...be16(t.error), ...be16(t.otherData.length)]),
    t.otherData,
  ]);
}

function concat(parts: Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

/** HMAC over [request MAC] + message-without-TSIG (ID = original ID) + TSIG variables. */
function computeMac(
  key: TsigKey,
  unsigned: Uint8Array,
  originalId: number,
  arcount: number,
  vars: Uint8Array,
  requestMac?: Uint8Array,
): Uint8Array {
  const h = createHmac('sha256', key.secret);
  if (requestMac) h.update(Uint8Array.from(be16(requestMac.length))).update(requestMac);
  const msg = copyBytes(unsigned);
  msg[0] = (originalId >> 8) & 0xff;
  msg[1] = originalId & 0xff;
  msg[10] = (arcount >> 8) & 0xff;
  msg[11] = arcount & 0xff;
  h.update(msg).update(vars);
  return new Uint8Array(h.digest());
}

export interface TsigSignOptions {
  key: TsigKey;
  clock: Clock;
  fudgeS?: number;
  /** The request's MAC, when signing a response. */
  requestMac?: Uint8Array;
  /** TSIG error (BADTIME answers carry the server's time in otherData). */
  error?: number;
  otherData?: Uint8Array;
  /** BADKEY/BADSIG answers go out with an empty MAC (RFC 8945 §5.3.2). */
  emptyMac?: boolean;
}

export interface Signed {
  wire: Uint8Array;
  /** The MAC placed in the TSIG; a client keeps it to verify the response. */
  mac: Uint8Array;
}

/** Appends a TSIG RR to a complete message (which must not have one yet). */
export function tsigSign(msg: Uint8Array, opts: TsigSignOptions): Signed {
  const spans = walkMessage(msg);
  if (spans.records.some((r) => r.type === TYPE_TSIG)) fail('tsig_already_signed', 'message already carries a TSIG');
  if (spans.end !== msg.length) fail('tsig_malformed', 'trailing bytes after the last record');
  if (spans.arcount === 0xffff) fail('tsig_malformed', 'ARCOUNT full');
  const unsigned = msg.subarray(0, spans.end);
  const t = {
    timeSigned: Math.floor(opts.clock.nowMs() / 1000),
    fudge: opts.fudgeS ?? DEFAULT_FUDGE_S,
    error: opts.error ?? 0,
    otherData: opts.otherData ?? new Uint8Array(0),
  };
  const vars = tsigVariables(opts.key.name, HMAC_SHA256, t);
  const mac = opts.emptyMac ? new Uint8Array(0) : computeMac(opts.key, unsigned, spans.id, spans.arcount, vars, opts.requestMac);
  const rdata = concat([
    canonicalName(HMAC_SHA256),
    Uint8Array.from([...u48(t.timeSigned), ...be16(t.fudge), ...be16(mac.length)]),
    mac,
    Uint8Array.from([...be16(spans.id), ...be16(t.error), ...be16(t.otherData.length)]),
    t.otherData,
  ]);
  const rr = concat([
    canonicalName(opts.key.name),
    Uint8Array.from([...be16(TYPE_TSIG), ...be16(CLASS_ANY), 0, 0, 0, 0, ...be16(rdata.length)]),
    rdata,
  ]);
  const wire = concat([unsigned, rr]);
  wire[10] = ((spans.arcount + 1) >> 8) & 0xff;
  wire[11] = (spans.arcount + 1) & 0xff;
  return { wire, mac };
}

export interface TsigVerifyOptions {
  keyring: Keyring;
  clock: Clock;
  /** Set when verifying a response: the MAC of the query we sent. */
  requestMac?: Uint8Array;
  /** When set, only this key is acceptable (a response must use the query's key). */
  expectKeyName?: string;
  /** Local minimum MAC length (≥ 16, ≤ 32); default 16. */
  minMacLen?: number;
  /** Upper bound on the fudge honoured, whatever the message says; default 300 s. */
  maxFudgeS?: number;
}

function refuse(code: TsigFailureCode, rcode: number, message: string, extra: { tsig?: TsigRecord; key?: TsigKey } = {}): TsigVerifyResult {
  return { ok: false, code, rcode, message: `tsig: ${message}`, ...extra };
}

/** Verifies the TSIG of a message; never throws on hostile input. */
export function tsigVerify(msg: Uint8Array, opts: TsigVerifyOptions): TsigVerifyResult {
  let spans: MessageSpans;
  try {
    spans = walkMessage(msg);
  } catch (err) {
    return refuse('tsig_malformed', TsigRcode.FORMERR, err instanceof Error ? err.message : String(err));
  }
  const tsigs = spans.records.filter((r) => r.type === TYPE_TSIG);
  if (tsigs.length === 0) return refuse('tsig_missing', TsigRcode.FORMERR, 'message is not signed');
  if (tsigs.length > 1) return refuse('tsig_multiple', TsigRcode.FORMERR, `${tsigs.length} TSIG records`);
  const rec = tsigs[0]!;
  const last = spans.records[spans.records.length - 1]!;
  if (rec !== last || rec.section !== 'additional') {
    return refuse('tsig_not_last', TsigRcode.FORMERR, 'TSIG is not the last record of the additional section');
  }
  if (spans.end !== msg.length) return refuse('tsig_trailing', TsigRcode.FORMERR, `${msg.length - spans.end} octets after the TSIG`);
  if (rec.klass !== CLASS_ANY || rec.ttl !== 0) return refuse('tsig_formerr', TsigRcode.FORMERR, 'TSIG class must be ANY and TTL 0');
  let tsig: TsigRecord;
  try {
    tsig = parseTsigRecord(msg, rec);
  } catch (err) {
    return refuse('tsig_formerr', TsigRcode.FORMERR, err instanceof Error ? err.message : String(err));
  }
  const key = opts.keyring.get(tsig.keyName);
  if (!key) return refuse('tsig_badkey', TsigRcode.BADKEY, `unknown key ${tsig.keyName}`, { tsig });
  if (opts.expectKeyName !== undefined && tsig.keyName !== opts.expectKeyName.replace(/\.$/, '').toLowerCase()) {
    return refuse('tsig_badkey', TsigRcode.BADKEY, `signed with key ${tsig.keyName}, expected ${opts.expectKeyName}`, { tsig });
  }
  if (tsig.algorithm !== key.algorithm) {
    return refuse('tsig_badkey', TsigRcode.BADKEY, `algorithm ${tsig.algorithm} does not match key ${key.name} (${key.algorithm})`, { tsig });
  }
  if (tsig.error !== 0 && tsig.mac.length === 0) {
    // A peer's BADKEY/BADSIG answer: unsigned by design, nothing to verify.
    return refuse('tsig_error', tsig.error, `peer reported TSIG error ${tsig.error}`, { tsig, key });
  }
  const minLen = Math.max(MIN_MAC_LEN, Math.min(SHA256_LEN, opts.minMacLen ?? MIN_MAC_LEN));
  if (tsig.mac.length > SHA256_LEN) return refuse('tsig_formerr', TsigRcode.FORMERR, `MAC of ${tsig.mac.length} octets is longer than the hash`, { tsig, key });
  if (tsig.mac.length < minLen) {
    return refuse('tsig_badtrunc', TsigRcode.BADTRUNC, `MAC truncated to ${tsig.mac.length} octets (minimum ${minLen})`, { tsig, key });
  }
  const vars = tsigVariables(tsig.keyName, tsig.algorithm, tsig);
  // The digest sees the message as it was before signing: no TSIG, ARCOUNT without it.
  const want = computeMac(key, msg.subarray(0, rec.start), tsig.originalId, spans.arcount - 1, vars, opts.requestMac);
  if (!timingSafeEqual(want.subarray(0, tsig.mac.length), tsig.mac)) {
    return refuse('tsig_badsig', TsigRcode.BADSIG, `MAC does not verify with key ${key.name}`, { tsig, key });
  }
  const now = Math.floor(opts.clock.nowMs() / 1000);
  const fudge = Math.min(tsig.fudge, opts.maxFudgeS ?? DEFAULT_FUDGE_S);
  if (Math.abs(now - tsig.timeSigned) > fudge) {
    return refuse('tsig_badtime', TsigRcode.BADTIME, `time signed ${tsig.timeSigned} is ${now - tsig.timeSigned} s from now (fudge ${fudge} s)`, { tsig, key });
  }
  if (tsig.error !== 0) return refuse('tsig_error', tsig.error, `peer reported TSIG error ${tsig.error}`, { tsig, key });
  return { ok: true, tsig, key };
}

/** The message without its (last) TSIG RR and with ARCOUNT decremented — what a client sees. */
export function stripTsig(msg: Uint8Array): Uint8Array {
  const spans = walkMessage(msg);
  const last = spans.records[spans.records.length - 1];
  if (!last || last.type !== TYPE_TSIG || last.section !== 'additional') return msg;
  const out = copyBytes(msg, 0, last.start);
  out[10] = ((spans.arcount - 1) >> 8) & 0xff;
  out[11] = (spans.arcount - 1) & 0xff;
  return out;
}
