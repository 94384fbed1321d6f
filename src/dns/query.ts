/**
 * Reads a client query: header, the single question (kept as raw bytes, case preserved, for
 * forwarding and for matching the upstream's answer), and the client's EDNS0 OPT record
 * (RFC 6891). Anything malformed is reported as a typed result, never thrown, so the
 * listener can answer FORMERR or drop without a try/catch on the hot path.
 */
import {
  FLAG_QR,
  HEADER_LEN,
  OPCODE_QUERY,
  RCODE_FORMERR,
  RCODE_NOTIMP,
  RCODE_REFUSED,
  TYPE_OPT,
  EDNS_DO,
  WireError,
  nameText,
  putDot,
  putLabelText,
  skipName,
} from './wire.ts';

export interface ClientEdns {
  /** The client's advertised UDP payload size, floored at 512. */
  udpSize: number;
  version: number;
  dnssecOk: boolean;
  /**
   * The EDNS Client Subnet option's data (RFC 7871, option 8) as sent — a view into the query,
   * not a copy — or 'malformed' when the option list cannot be read or holds the option twice,
   * or null without one. Whether it is believed is the proxy's business (trusted forwarders).
   */
  clientSubnet: Uint8Array | 'malformed' | null;
}

/** EDNS option code of Client Subnet (RFC 7871). */
const OPTION_CLIENT_SUBNET = 8;

/** Finds the Client Subnet option among the options in `buf[from, end)` (see `ClientEdns.clientSubnet`). */
function findClientSubnet(buf: Uint8Array, from: number, end: number): Uint8Array | 'malformed' | null {
  let found: Uint8Array | null = null;
  for (let o = from; o < end; ) {
    if (o + 4 > end) return found ? 'malformed' : null;
    const len = (buf[o + 2]! << 8) | buf[o + 3]!;
    if (o + 4 + len > end) return found ? 'malformed' : null;
    if (((buf[o]! << 8) | buf[o + 1]!) === OPTION_CLIENT_SUBNET) {
      if (found) return 'malformed';
      found = buf.subarray(o + 4, o + 4 + len);
    }
    o += 4 + len;
  }
  return found;
}

export interface ParsedQuery {
  id: number;
  /** Header bytes 2..3 as sent. */
  flags: number;
  opcode: number;
  /** QNAME (uncompressed wire form) + QTYPE + QCLASS, exactly as the client sent them. */
  question: Uint8Array;
  /**
   * Lower-case presentation name without trailing dot ('' = root). A parsed query makes it on
   * first read (`WireQuery`): a cache hit of an unprotected name never needs it.
   */
  readonly qname: string;
  /** A 32-bit FNV-1a hash of `question` (a cheap Map key for in-flight sharing; compare bytes on a hit). */
  questionHash: number;
  qtype: number;
  qclass: number;
  edns: ClientEdns | null;
}

/**
 * A query as `parseQuery` read it. The name's text is made from `question` when first asked
 * for: building it (fold, escape, decode into a string) was a third of a cache hit's JavaScript
 * time, and an unprotected hit with one upstream never reads it (the cache and the in-flight
 * table key on the wire bytes, the decision on the stored answer's chain).
 */
class WireQuery implements ParsedQuery {
  edns: ClientEdns | null = null;
  private name: string | undefined = undefined;

  constructor(
    readonly id: number,
    readonly flags: number,
    readonly opcode: number,
    readonly question: Uint8Array,
    readonly questionHash: number,
    readonly qtype: number,
    readonly qclass: number,
  ) {}

  get qname(): string {
    return (this.name ??= questionName(this.question));
  }
}

/** The text of the (validated, uncompressed) name at the start of `question`. */
function questionName(question: Uint8Array): string {
  let n = 0;
  for (let p = 0; question[p] !== 0; ) {
    const l = question[p]!;
    if (p > 0) n = putDot(n);
    // A–Z folded; RFC 4343 escapes keep different wire names from reading as the same text.
    n = putLabelText(question, p + 1, p + 1 + l, n);
    p += 1 + l;
  }
  return nameText(n);
}

export type QueryParse =
  | { kind: 'ok'; query: ParsedQuery }
  /** Answer with this rcode: header (and question and OPT when they could be read). */
  | { kind: 'error'; rcode: number; query: ParsedQuery | null; reason: string }
  /** Not worth an answer: shorter than a header, or a response (QR set). */
  | { kind: 'drop'; reason: string };

/** Extended RCODE 16 (RFC 6891 §6.1.3): the high 8 bits travel in the OPT record. */
export const RCODE_BADVERS = 16;

/** Query types we refuse rather than forward (zone transfers need a multi-message stream). */
const REFUSED_TYPES = new Set([251 /* IXFR */, 252 /* AXFR */]);

export function parseQuery(buf: Uint8Array): QueryParse {
  if (buf.length < HEADER_LEN) return { kind: 'drop', reason: 'short' };
  const flags = (buf[2]! << 8) | buf[3]!;
  if (flags & FLAG_QR) return { kind: 'drop', reason: 'response' };
  const id = (buf[0]! << 8) | buf[1]!;
  const opcode = (flags >>> 11) & 0xf;
  const qdcount = (buf[4]! << 8) | buf[5]!;
  if (qdcount !== 1) return { kind: 'error', rcode: opcode === OPCODE_QUERY ? RCODE_FORMERR : RCODE_NOTIMP, query: null, reason: 'qdcount' };

  // The question: labels only, no compression (nothing precedes it that could be pointed at).
  let p = HEADER_LEN;
  for (;;) {
    if (p >= buf.length) return { kind: 'error', rcode: RCODE_FORMERR, query: null, reason: 'question truncated' };
    const l = buf[p]!;
    if (l === 0) {
      p++;
      break;
    }
    if (l > 63) return { kind: 'error', rcode: RCODE_FORMERR, query: null, reason: 'compressed or reserved label in question' };
    if (p + 1 + l > buf.length) return { kind: 'error', rcode: RCODE_FORMERR, query: null, reason: 'question truncated' };
    if (p + 1 + l - HEADER_LEN + 1 > 255) return { kind: 'error', rcode: RCODE_FORMERR, query: null, reason: 'name too long' };
    p += 1 + l;
  }
  if (p + 4 > buf.length) return { kind: 'error', rcode: RCODE_FORMERR, query: null, reason: 'question truncated' };
  const qtype = (buf[p]! << 8) | buf[p + 1]!;
  const qclass = (buf[p + 2]! << 8) | buf[p + 3]!;
  p += 4;
  let hash = 0x811c9dc5;
  for (let i = HEADER_LEN; i < p; i++) hash = Math.imul(hash ^ buf[i]!, 0x01000193);
  const query = new WireQuery(id, flags, opcode, buf.slice(HEADER_LEN, p), hash >>> 0, qtype, qclass);
  if (opcode !== OPCODE_QUERY) return { kind: 'error', rcode: RCODE_NOTIMP, query, reason: 'opcode' };

  // Skip any answer/authority records and find the OPT among the additional ones.
  const ancount = (buf[6]! << 8) | buf[7]!;
  const nscount = (buf[8]! << 8) | buf[9]!;
  const arcount = (buf[10]! << 8) | buf[11]!;
  try {
    const total = ancount + nscount + arcount;
    for (let i = 0; i < total; i++) {
      const h = skipName(buf, p);
      if (h + 10 > buf.length) throw new WireError(`record header truncated at ${h}`);
      const end = h + 10 + ((buf[h + 8]! << 8) | buf[h + 9]!);
      if (end > buf.length) throw new WireError(`rdata runs past the end at ${h + 10}`);
      if (i >= ancount + nscount && buf[h] === 0 && buf[h + 1] === TYPE_OPT) {
        if (query.edns) return { kind: 'error', rcode: RCODE_FORMERR, query, reason: 'two OPT records' };
        if (buf[p] !== 0) return { kind: 'error', rcode: RCODE_FORMERR, query, reason: 'OPT owner not root' };
        query.edns = {
          udpSize: Math.max(512, (buf[h + 2]! << 8) | buf[h + 3]!),
          version: buf[h + 5]!,
          dnssecOk: (buf[h + 6]! & (EDNS_DO >>> 8)) !== 0,
          clientSubnet: end > h + 10 ? findClientSubnet(buf, h + 10, end) : null,
        };
      }
      p = end;
    }
  } catch (err) {
    if (err instanceof WireError) return { kind: 'error', rcode: RCODE_FORMERR, query, reason: 'records malformed' };
    throw err;
  }
  if (query.edns && query.edns.version > 0) return { kind: 'error', rcode: RCODE_BADVERS, query, reason: 'EDNS version' };
  if (REFUSED_TYPES.has(qtype)) return { kind: 'error', rcode: RCODE_REFUSED, query, reason: 'zone transfer' };
  return { kind: 'ok', query };
}
