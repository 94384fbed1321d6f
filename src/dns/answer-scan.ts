/**
 * Reads an upstream answer once, for everything the proxy needs from it: that it answers our
 * question, the CNAME chain from the query name, the addresses that chain resolves to
 * (A, AAAA, and SVCB/HTTPS `ipv4hint`/`ipv6hint`), and where the OPT record sits so the
 * response step can rewrite it in place. Records are walked, not decoded: only the owner
 * names and rdata of answer-section records are read.
 */
import { ipv4Text, ipv6Text } from './ip-text.ts';
import { parseSvcb } from './svcb.ts';
import {
  FLAG_QR,
  FLAG_TC,
  HEADER_LEN,
  TYPE_A,
  TYPE_AAAA,
  TYPE_CNAME,
  TYPE_HTTPS,
  TYPE_OPT,
  TYPE_SVCB,
  WireError,
  readName,
  skipName,
} from './wire.ts';

export interface OptLocation {
  /** Byte range of the whole OPT record. */
  off: number;
  end: number;
  /** Its TTL field: extended rcode (8) | version (8) | flags (16). */
  ttl: number;
  rdOff: number;
  rdLen: number;
  /** Its position among the additional records (records from here on are cut with it). */
  index: number;
}

export interface AnswerScan {
  /** Header flags (bytes 2..3). */
  flags: number;
  rcode: number;
  truncated: boolean;
  /** Query name then every CNAME target followed from it, lower-case, no trailing dot. */
  chain: string[];
  /** `chainTtls[i]`: TTL (seconds) of the CNAME record that named `chain[i]`; `chainTtls[0]` is 0. */
  chainTtls: number[];
  /** Canonical address texts found for names of the chain, deduplicated, in answer order. */
  addrs: string[];
  /** Smallest TTL of the records that gave addresses (seconds); 0 when there are none. */
  minTtl: number;
  /**
   * Address-carrying records (A, AAAA, SVCB, HTTPS) whose addresses are NOT in `addrs`: in the
   * answer section but owned by a name off the chain, or in the authority or additional
   * section. A protected answer must lose them before it is released (issue 11 item 10).
   */
  strays: number;
  opt: OptLocation | null;
  /** Offset just past the last record (trailing bytes after it are never relayed). */
  end: number;
  ancount: number;
  nscount: number;
  arcount: number;
}

/** A follow of more CNAMEs than this is a loop or an abuse; the chain stops there. */
const MAX_CHAIN = 16;

/** True when the answer's question section is exactly `question` (name bytes incl. case, type, class). */
export function questionMatches(buf: Uint8Array, question: Uint8Array): boolean {
  if (buf.length < HEADER_LEN + question.length) return false;
  if (buf[4] !== 0 || buf[5] !== 1) return false;
  for (let i = 0; i < question.length; i++) if (buf[HEADER_LEN + i] !== question[i]) return false;
  return true;
}

interface AnswerRecord {
  owner: string;
  type: number;
  ttl: number;
  rdOff: number;
  rdLen: number;
  /** CNAME only: the target name. */
  target: string | null;
}

/**
 * Scans an answer whose question was already checked with `questionMatches`.
 * Throws `WireError` on anything malformed; the caller answers SERVFAIL.
 * Hot path: no per-record objects beyond the interesting ones, no Map/Set for the usual
 * handful of records.
 */
export function scanAnswer(buf: Uint8Array, questionLen: number, qname: string): AnswerScan {
  if (buf.length < HEADER_LEN) throw new WireError('answer shorter than a header');
  const flags = (buf[2]! << 8) | buf[3]!;
  if (!(flags & FLAG_QR)) throw new WireError('answer without QR');
  const ancount = (buf[6]! << 8) | buf[7]!;
  const nscount = (buf[8]! << 8) | buf[9]!;
  const arcount = (buf[10]! << 8) | buf[11]!;
  let p = HEADER_LEN + questionLen;
  const records: AnswerRecord[] = [];
  // Names already read, by offset: owners are nearly always a pointer to the question name
  // or to an earlier CNAME target, so most owners cost no decoding at all.
  const known: Known = { offs: [HEADER_LEN], names: [qname] };
  for (let i = 0; i < ancount; i++) {
    const h = skipName(buf, p);
    if (h + 10 > buf.length) throw new WireError(`record header truncated at ${h}`);
    const type = (buf[h]! << 8) | buf[h + 1]!;
    const rdLen = (buf[h + 8]! << 8) | buf[h + 9]!;
    const rdOff = h + 10;
    if (rdOff + rdLen > buf.length) throw new WireError(`rdata runs past the end at ${rdOff}`);
    if (type === TYPE_CNAME || type === TYPE_A || type === TYPE_AAAA || type === TYPE_HTTPS || type === TYPE_SVCB) {
      const ttl = ((buf[h + 4]! << 24) | (buf[h + 5]! << 16) | (buf[h + 6]! << 8) | buf[h + 7]!) >>> 0;
      let target: string | null = null;
      if (type === TYPE_CNAME) {
        const t = readName(buf, rdOff);
        if (t.end > rdOff + rdLen) throw new WireError('CNAME target runs past its rdata');
        target = t.name;
        known.offs.push(rdOff);
        known.names.push(target);
      }
      records.push({ owner: nameAt(buf, p, known), type, ttl, rdOff, rdLen, target });
    }
    p = rdOff + rdLen;
  }
  let strays = 0;
  let opt: OptLocation | null = null;
  const total = nscount + arcount;
  for (let i = 0; i < total; i++) {
    const h = skipName(buf, p);
    if (h + 10 > buf.length) throw new WireError(`record header truncated at ${h}`);
    const rdLen = (buf[h + 8]! << 8) | buf[h + 9]!;
    const end = h + 10 + rdLen;
    if (end > buf.length) throw new WireError(`rdata runs past the end at ${h + 10}`);
    const type = (buf[h]! << 8) | buf[h + 1]!;
    if (type === TYPE_A || type === TYPE_AAAA || type === TYPE_HTTPS || type === TYPE_SVCB) strays++;
    if (type === TYPE_OPT) {
      if (opt) throw new WireError('two OPT records in the answer');
      if (i < nscount) throw new WireError('OPT record outside the additional section');
      const ttl = ((buf[h + 4]! << 24) | (buf[h + 5]! << 16) | (buf[h + 6]! << 8) | buf[h + 7]!) >>> 0;
      opt = { off: p, end, ttl, rdOff: h + 10, rdLen, index: i - nscount };
    }
    p = end;
  }
  // Trailing bytes after the last record are tolerated but never relayed.
  const recordsEnd = p;

  const chain = [qname];
  const chainTtls = [0];
  const addrs: string[] = [];
  let minTtl = Number.MAX_SAFE_INTEGER;
  if (records.length > 0) {
    // Follow CNAMEs from the query name, whatever order the records come in.
    for (let hop = 0; hop < MAX_CHAIN; hop++) {
      const tail = chain[chain.length - 1]!;
      let next: string | null = null;
      let ttl = 0;
      for (const r of records) {
        if (r.target !== null && r.owner === tail) {
          next = r.target;
          ttl = r.ttl;
          break;
        }
      }
      if (next === null || chain.includes(next)) break;
      chain.push(next);
      chainTtls.push(ttl);
    }
    for (const r of records) {
      if (r.target !== null) continue;
      if (!chain.includes(r.owner)) {
        strays++;
        continue;
      }
      if (r.type === TYPE_A) {
        if (r.rdLen !== 4) throw new WireError(`A record of ${r.rdLen} octets`);
        addUnique(addrs, ipv4Text(buf, r.rdOff));
      } else if (r.type === TYPE_AAAA) {
        if (r.rdLen !== 16) throw new WireError(`AAAA record of ${r.rdLen} octets`);
        addUnique(addrs, ipv6Text(buf, r.rdOff));
      } else {
        const svc = parseSvcb(buf, r.rdOff, r.rdLen);
        if (svc.ipv4hint.length + svc.ipv6hint.length === 0) continue;
        for (const a of svc.ipv4hint) addUnique(addrs, a);
        for (const a of svc.ipv6hint) addUnique(addrs, a);
      }
      if (r.ttl < minTtl) minTtl = r.ttl;
    }
  }
  return {
    flags,
    rcode: flags & 0xf,
    truncated: (flags & FLAG_TC) !== 0,
    chain,
    chainTtls,
    addrs,
    minTtl: addrs.length ? minTtl : 0,
    strays,
    opt,
    end: recordsEnd,
    ancount,
    nscount,
    arcount,
  };
}

function addUnique(list: string[], a: string): void {
  if (!list.includes(a)) list.push(a);
}

interface Known {
  offs: number[];
  names: string[];
}

/**
 * The owner name at `off`: a bare pointer to a name already read is answered from `known`,
 * anything else is read (and checked) in full. The pointer still obeys readName's rule:
 * it must point backwards.
 */
function nameAt(buf: Uint8Array, off: number, known: Known): string {
  const b = buf[off];
  if (b !== undefined && (b & 0xc0) === 0xc0 && off + 1 < buf.length) {
    const target = ((b & 0x3f) << 8) | buf[off + 1]!;
    if (target < off) {
      const i = known.offs.indexOf(target);
      if (i >= 0) return known.names[i]!;
    }
  }
  const name = readName(buf, off).name;
  known.offs.push(off);
  known.names.push(name);
  return name;
}
