/**
 * Everything dnsseal writes on the wire: the query it sends upstream, the error answers it
 * makes itself (FORMERR, SERVFAIL, NXDOMAIN for the canary, …) and the client's copy of an
 * upstream answer. The relay path copies the upstream bytes once, patches the client's ID in
 * and replaces the hop-by-hop OPT record (RFC 6891 §6.1.1) with our own — no decode/encode.
 */
import type { AnswerScan } from './answer-scan.ts';
import type { ParsedQuery } from './query.ts';
import { EDNS_DO, FLAG_AD, FLAG_CD, FLAG_QR, FLAG_RA, FLAG_RD, FLAG_TC, HEADER_LEN, TYPE_OPT, putU16 } from './wire.ts';

/** The UDP payload size we advertise, both ways (DNS flag day 2020). */
export const OUR_UDP_SIZE = 1232;
/** Classic limit for a client that sent no OPT (RFC 1035 §4.2.1). */
export const PLAIN_UDP_LIMIT = 512;
/** EDNS option code of Extended DNS Errors (RFC 8914): end-to-end, so it is passed on. */
export const OPTION_EDE = 15;

/** An OPT record: root owner, our payload size, extended rcode, version 0, DO, options. */
export function encodeOpt(udpSize: number, extRcode: number, dnssecOk: boolean, options?: Uint8Array): Uint8Array {
  const out = new Uint8Array(11 + (options ? options.length : 0));
  writeOpt(out, 0, udpSize, extRcode, dnssecOk, options ?? null);
  return out;
}

/** The query sent upstream: a fresh ID, the client's RD/CD/AD bits, its question, our OPT. */
export function buildUpstreamQuery(id: number, query: ParsedQuery, udpSize = OUR_UDP_SIZE): Uint8Array {
  const q = query.question;
  const out = new Uint8Array(HEADER_LEN + q.length + 11);
  putU16(out, 0, id);
  putU16(out, 2, query.flags & (FLAG_RD | FLAG_CD | FLAG_AD));
  out[5] = 1; // QDCOUNT
  out[11] = 1; // ARCOUNT: our OPT
  out.set(q, HEADER_LEN);
  const o = HEADER_LEN + q.length;
  // OPT: root, type 41, class = payload size, ttl = 0 | DO, rdlen 0
  putU16(out, o + 1, TYPE_OPT);
  putU16(out, o + 3, udpSize);
  if (query.edns?.dnssecOk) putU16(out, o + 7, EDNS_DO);
  return out;
}

/** An answer we make ourselves: the client's ID and question, `rcode`, our OPT if it sent one. */
export function buildErrorResponse(query: ParsedQuery, rcode: number): Uint8Array {
  const opt = query.edns ? encodeOpt(OUR_UDP_SIZE, rcode >>> 4, query.edns.dnssecOk) : null;
  const q = query.question;
  const out = new Uint8Array(HEADER_LEN + q.length + (opt ? opt.length : 0));
  putU16(out, 0, query.id);
  putU16(out, 2, FLAG_QR | (query.flags & (0x7800 | FLAG_RD | FLAG_CD)) | FLAG_RA | (rcode & 0xf));
  out[5] = 1;
  if (opt) out[11] = 1;
  out.set(q, HEADER_LEN);
  if (opt) out.set(opt, HEADER_LEN + q.length);
  return out;
}

/** FORMERR/NOTIMP for a query whose question could not be read: header only (RFC 1035 §4.1.1). */
export function buildHeaderOnlyResponse(buf: Uint8Array, rcode: number): Uint8Array | null {
  if (buf.length < HEADER_LEN) return null;
  const out = new Uint8Array(HEADER_LEN);
  out[0] = buf[0]!;
  out[1] = buf[1]!;
  const flags = (buf[2]! << 8) | buf[3]!;
  putU16(out, 2, FLAG_QR | (flags & (0x7800 | FLAG_RD)) | FLAG_RA | (rcode & 0xf));
  return out;
}

/** Extended DNS Error options of an upstream OPT, the only options passed on; null if none. */
function endToEndOptions(buf: Uint8Array, rdOff: number, rdLen: number): Uint8Array | null {
  let p = rdOff;
  const end = rdOff + rdLen;
  let keep: number[] | null = null;
  while (p + 4 <= end) {
    const code = (buf[p]! << 8) | buf[p + 1]!;
    const len = (buf[p + 2]! << 8) | buf[p + 3]!;
    if (p + 4 + len > end) break; // a malformed option list ends here
    if (code === OPTION_EDE) {
      keep ??= [];
      for (let i = p; i < p + 4 + len; i++) keep.push(buf[i]!);
    }
    p += 4 + len;
  }
  return keep ? Uint8Array.from(keep) : null;
}

/**
 * The client's copy of an upstream answer: client ID, upstream records unchanged, the
 * upstream OPT (and anything after it) replaced by ours when the client spoke EDNS, or
 * removed when it did not. Over UDP (`limit` set) an answer that does not fit becomes an
 * empty TC answer, so the client retries over TCP (RFC 7766 §5).
 */
export function relayAnswer(answer: Uint8Array, scan: AnswerScan, query: ParsedQuery, limit: number | null): Uint8Array {
  const cut = scan.opt ? scan.opt.off : scan.end;
  const keptAr = scan.opt ? scan.opt.index : scan.arcount;
  let optLen = 0;
  let options: Uint8Array | null = null;
  if (query.edns) {
    options = scan.opt && scan.opt.rdLen ? endToEndOptions(answer, scan.opt.rdOff, scan.opt.rdLen) : null;
    optLen = 11 + (options ? options.length : 0);
  }
  const size = cut + optLen;
  if (limit !== null && size > limit) return truncatedAnswer(answer, scan, query, optLen ? opt(scan, query, options) : null);
  const out = new Uint8Array(size);
  // A plain loop: subarray() would make JSC materialise an ArrayBuffer for `answer`.
  for (let i = 2; i < cut; i++) out[i] = answer[i]!;
  putU16(out, 0, query.id);
  putU16(out, 10, keptAr + (optLen ? 1 : 0));
  if (optLen) writeOpt(out, cut, OUR_UDP_SIZE, scan.opt ? scan.opt.ttl >>> 24 : 0, query.edns!.dnssecOk, options);
  return out;
}

function opt(scan: AnswerScan, query: ParsedQuery, options: Uint8Array | null): Uint8Array {
  return encodeOpt(OUR_UDP_SIZE, scan.opt ? scan.opt.ttl >>> 24 : 0, query.edns!.dnssecOk, options ?? undefined);
}

/** Writes an OPT record (see `encodeOpt`) into `out` at `o`. */
function writeOpt(out: Uint8Array, o: number, udpSize: number, extRcode: number, dnssecOk: boolean, options: Uint8Array | null): void {
  out[o] = 0;
  putU16(out, o + 1, TYPE_OPT);
  putU16(out, o + 3, udpSize);
  out[o + 5] = extRcode & 0xff;
  out[o + 6] = 0;
  putU16(out, o + 7, dnssecOk ? EDNS_DO : 0);
  putU16(out, o + 9, options ? options.length : 0);
  if (options) out.set(options, o + 11);
}

function truncatedAnswer(answer: Uint8Array, scan: AnswerScan, query: ParsedQuery, opt: Uint8Array | null): Uint8Array {
  const q = query.question;
  const out = new Uint8Array(HEADER_LEN + q.length + (opt ? opt.length : 0));
  putU16(out, 0, query.id);
  putU16(out, 2, scan.flags | FLAG_TC);
  out[5] = 1;
  if (opt) out[11] = 1;
  out.set(q, HEADER_LEN);
  if (opt) out.set(opt, HEADER_LEN + q.length);
  return out;
}

/** The UDP size limit for the client's copy: 512 without EDNS, else its size capped by ours. */
export function udpLimit(query: ParsedQuery): number {
  if (!query.edns) return PLAIN_UDP_LIMIT;
  return Math.min(Math.max(query.edns.udpSize, PLAIN_UDP_LIMIT), OUR_UDP_SIZE);
}
