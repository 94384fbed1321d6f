/**
 * What an upstream answer's records allow the cache to do, read from the wire once at insert,
 * and the aged copy a hit hands out.
 *
 * - `prepare`: may the answer be kept (RFC 1035 §3.2.1, RFC 2308, RFC 2181 §8), for how long,
 *   and where its TTL fields sit. Kept: NOERROR with data (positive), NXDOMAIN and NODATA with
 *   an SOA in the authority section (negative, RFC 2308 §5: without an SOA, not cached).
 *   Never kept: other rcodes (SERVFAIL included), TC, a TSIG record, a TTL of 0.
 *   The copy it returns holds TTLs already clamped to the limits, so every later read is a
 *   plain subtraction.
 * - `agedCopy`: the stored bytes with every TTL (answer, authority, additional; never the OPT)
 *   lowered by the seconds spent in the cache, never below 0, or all set to the stale TTL
 *   (RFC 8767 §4), and the asking client's question (its case) in the question section.
 * - `relayAged`: the client's copy of a hit straight from the stored answer, in one copy.
 *
 * The scan of a hit (its TTLs aged the same way) is the hit itself: `CachedHit` in
 * answer-cache.ts (a test checks it equals `scanAnswer` of the aged bytes for every fixture).
 */
import type { AnswerScan } from '../dns/answer-scan.ts';
import type { ParsedQuery } from '../dns/query.ts';
import { relayAnswer } from '../dns/response.ts';
import { FLAG_TC, HEADER_LEN, RCODE_NOERROR, RCODE_NXDOMAIN, RCODE_SERVFAIL, TYPE_CNAME, TYPE_OPT, TYPE_SOA, skipName } from '../dns/wire.ts';

export const TYPE_TSIG = 250;
const TYPE_ANY = 255;
/** RFC 2181 §8: a TTL with the top bit set is read as 0. */
const MAX_TTL_WIRE = 0x7fffffff;

/** Why an answer was not kept (the `reason` label of `dnsseal_cache_not_cached_total`). */
export type NotCachedReason = 'servfail' | 'rcode' | 'truncated' | 'tsig' | 'signed' | 'ttl_zero' | 'no_soa' | 'too_big' | 'malformed';
export const NOT_CACHED_REASONS: readonly NotCachedReason[] = ['servfail', 'rcode', 'truncated', 'tsig', 'signed', 'ttl_zero', 'no_soa', 'too_big', 'malformed'];

export interface TtlLimits {
  /** Cap of every record's TTL (seconds). */
  maxTtlS: number;
  /** Cap of a negative answer's TTL (the SOA's, RFC 2308 §5), seconds. */
  maxNegTtlS: number;
}

export type Prepared =
  | {
      ok: true;
      negative: boolean;
      /** Seconds the entry may answer: the smallest clamped TTL of all records. */
      lifetimeS: number;
      /**
       * What the cache keeps, one allocation: `answer[0, scan.end)` with every TTL clamped to
       * the limits, then the offset of each record's TTL field (every record but the OPT) as a
       * big-endian u16.
       */
      stored: Uint8Array;
    }
  | { ok: false; reason: NotCachedReason };

/**
 * Reads `answer` (already checked by `scanAnswer`, which produced `scan`) for caching.
 * `questionLen` is the question's length in octets, `qtype` its type.
 */
export function prepare(answer: Uint8Array, scan: AnswerScan, questionLen: number, qtype: number, limits: TtlLimits): Prepared {
  if (scan.truncated) return { ok: false, reason: 'truncated' };
  // An extended rcode (OPT TTL bits 24..31, RFC 6891) makes the real rcode something else.
  if (scan.opt && scan.opt.ttl >>> 24 !== 0) return { ok: false, reason: 'rcode' };
  if (scan.rcode === RCODE_SERVFAIL) return { ok: false, reason: 'servfail' };
  if (scan.rcode !== RCODE_NOERROR && scan.rcode !== RCODE_NXDOMAIN) return { ok: false, reason: 'rcode' };
  const buf = answer;
  const wireLen = scan.end;
  const total = scan.ancount + scan.nscount + scan.arcount;
  const offs: number[] = [];
  let answered = false;
  let soaTtlOff = -1;
  let soaMinimum = 0;
  let p = HEADER_LEN + questionLen;
  try {
    for (let i = 0; i < total; i++) {
      const h = skipName(buf, p);
      const type = (buf[h]! << 8) | buf[h + 1]!;
      const end = h + 10 + ((buf[h + 8]! << 8) | buf[h + 9]!);
      if (end > wireLen) return { ok: false, reason: 'malformed' };
      if (type === TYPE_TSIG) return { ok: false, reason: 'tsig' };
      if (type !== TYPE_OPT) {
        offs.push(h + 4);
        if (i < scan.ancount) {
          if (type === qtype || qtype === TYPE_ANY || qtype === TYPE_CNAME) answered = true;
        } else if (i < scan.ancount + scan.nscount && type === TYPE_SOA && soaTtlOff < 0) {
          // MINIMUM is the last field of the SOA rdata (two names, then five 32-bit numbers).
          if (end - (h + 10) < 22) return { ok: false, reason: 'malformed' };
          soaTtlOff = h + 4;
          soaMinimum = readU32(buf, end - 4);
        }
      }
      p = end;
    }
  } catch {
    return { ok: false, reason: 'malformed' };
  }
  const negative = scan.rcode === RCODE_NXDOMAIN || !answered;
  if (negative && soaTtlOff < 0) return { ok: false, reason: 'no_soa' };
  if (offs.length === 0) return { ok: false, reason: 'ttl_zero' };

  // A copy of our own, a plain Uint8Array: the upstream's bytes may be a Node Buffer (Bun's
  // sockets give those), whose slice() is a view — writing the clamped TTLs into it would change
  // the answer other queries in flight are relaying, and keep the socket's whole chunk alive.
  const stored = new Uint8Array(wireLen + 2 * offs.length);
  for (let i = 0; i < wireLen; i++) stored[i] = buf[i]!;
  let lifetimeS = Number.MAX_SAFE_INTEGER;
  for (let i = 0; i < offs.length; i++) {
    const o = offs[i]!;
    stored[wireLen + 2 * i] = o >>> 8;
    stored[wireLen + 2 * i + 1] = o & 0xff;
    const raw = readU32(stored, o);
    let ttl = Math.min(raw > MAX_TTL_WIRE ? 0 : raw, limits.maxTtlS);
    // RFC 2308 §5: a negative answer lives for min(SOA TTL, SOA MINIMUM).
    if (o === soaTtlOff && negative) ttl = Math.min(ttl, soaMinimum > MAX_TTL_WIRE ? 0 : soaMinimum, limits.maxNegTtlS);
    if (ttl !== raw) writeU32(stored, o, ttl);
    if (ttl < lifetimeS) lifetimeS = ttl;
  }
  if (lifetimeS <= 0) return { ok: false, reason: 'ttl_zero' };
  return { ok: true, negative, lifetimeS, stored };
}

/**
 * The client's copy source for a hit: the wire part of `stored` (`prepare`'s, `wireLen` long)
 * with every TTL lowered by `elapsedS` (never below 0) — or all set to `staleTtlS` when not
 * null — and `question` (the asking client's, same length, maybe other case) in the question
 * section. One new buffer.
 */
export function agedCopy(stored: Uint8Array, wireLen: number, elapsedS: number, staleTtlS: number | null, question: Uint8Array): Uint8Array {
  // `stored` is the plain Uint8Array `prepare` made, so slice() copies (a Buffer's would not).
  const out = stored.slice(0, wireLen);
  for (let i = 0; i < question.length; i++) out[HEADER_LEN + i] = question[i]!;
  if (staleTtlS !== null) {
    for (let p = wireLen; p < stored.length; p += 2) writeU32(out, (stored[p]! << 8) | stored[p + 1]!, staleTtlS);
  } else if (elapsedS > 0) {
    for (let p = wireLen; p < stored.length; p += 2) {
      const o = (stored[p]! << 8) | stored[p + 1]!;
      const t = readU32(stored, o) - elapsedS;
      writeU32(out, o, t > 0 ? t : 0);
    }
  }
  return out;
}

/**
 * The client's copy of a hit in one copy: `relayAnswer` of the stored answer (the wire part of
 * `stored`, read by `scan`, the stored answer's scan), then the asking client's question and
 * the aged TTLs (as `agedCopy` has them) written into it — only for records before the OPT: the
 * relay drops the OPT and whatever follows it. Byte for byte
 * `relayAnswer(agedCopy(stored, scan.end, elapsedS, staleTtlS, query.question), scan, query, limit)`
 * (test/cache/answer-ttl.test.ts), without the intermediate copy.
 */
export function relayAged(stored: Uint8Array, scan: AnswerScan, elapsedS: number, staleTtlS: number | null, query: ParsedQuery, limit: number | null): Uint8Array {
  const out = relayAnswer(stored, scan, query, limit);
  // A kept answer never has TC (`prepare`): TC here is relay's empty answer for a client whose
  // UDP size it exceeds — the client's question and an OPT, no record to age.
  if (out[2]! & (FLAG_TC >>> 8)) return out;
  const q = query.question;
  for (let i = 0; i < q.length; i++) out[HEADER_LEN + i] = q[i]!;
  if (staleTtlS === null && elapsedS <= 0) return out;
  const wireLen = scan.end;
  const cut = scan.opt ? scan.opt.off : wireLen;
  for (let p = wireLen; p < stored.length; p += 2) {
    const o = (stored[p]! << 8) | stored[p + 1]!;
    if (o + 4 > cut) continue;
    if (staleTtlS !== null) writeU32(out, o, staleTtlS);
    else {
      const t = readU32(stored, o) - elapsedS;
      writeU32(out, o, t > 0 ? t : 0);
    }
  }
  return out;
}

function readU32(b: Uint8Array, o: number): number {
  return ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0;
}

function writeU32(b: Uint8Array, o: number, v: number): void {
  b[o] = v >>> 24;
  b[o + 1] = (v >>> 16) & 0xff;
  b[o + 2] = (v >>> 8) & 0xff;
  b[o + 3] = v & 0xff;
}
