/**
 * What makes two queries the same for the cache: the question (name compared without regard
 * to case, RFC 1035 §2.3.3 / RFC 4343; type; class), the header and EDNS bits our upstream
 * query is built from, and the upstream asked (split DNS: one name through two upstreams is two
 * entries).
 *
 * The bits are the forwarder's in-flight key bits (src/proxy/forwarder.ts): RD, CD, AD of the
 * client's header and the DO bit of its OPT. `buildUpstreamQuery` copies RD/CD/AD from the
 * client, so each of them can change the upstream's answer (RD=0 asks a recursive upstream for
 * its cache only; AD asks for the AD bit, RFC 6840 §5.7; CD and DO for DNSSEC data).
 *
 * No key string is built per query: a 32-bit FNV-1a hash of the case-folded question, the bits
 * and the upstream's number picks a slot, and the identity is compared in the slot's (nearly
 * always one-entry) list, as the forwarder does for in-flight sharing.
 */
import type { ParsedQuery } from '../dns/query.ts';
import { FLAG_AD, FLAG_CD, FLAG_RD, HEADER_LEN } from '../dns/wire.ts';

/** DO sits outside the header bits used, so one number carries all four. */
const BIT_DO = 0x8000;

/** RD/CD/AD of the query's header and DO of its OPT, as one number. */
export function questionBits(query: ParsedQuery): number {
  return (query.flags & (FLAG_RD | FLAG_CD | FLAG_AD)) | (query.edns?.dnssecOk ? BIT_DO : 0);
}

/** FNV-1a over the question with the name's A–Z folded, then the bits and the upstream number. */
export function keyHash(question: Uint8Array, bits: number, upstream: number): number {
  // The name is the question less its type and class; label length octets (≤ 63) never
  // fall in A–Z, so folding the whole name region folds only letters.
  const nameEnd = question.length - 4;
  let h = 0x811c9dc5;
  let i = 0;
  for (; i < nameEnd; i++) {
    const c = question[i]!;
    h = Math.imul(h ^ (c >= 0x41 && c <= 0x5a ? c | 0x20 : c), 0x01000193);
  }
  for (; i < question.length; i++) h = Math.imul(h ^ question[i]!, 0x01000193);
  h = Math.imul(h ^ bits, 0x01000193);
  h = Math.imul(h ^ upstream, 0x01000193);
  return h >>> 0;
}

/**
 * True when the question stored in `answer` (at the header's end) is `question`, the name
 * compared without regard to case, type and class exactly.
 */
export function sameQuestion(answer: Uint8Array, question: Uint8Array): boolean {
  const nameEnd = question.length - 4;
  for (let i = 0; i < nameEnd; i++) {
    const a = answer[HEADER_LEN + i]!;
    const b = question[i]!;
    if (a !== b && (a | 0x20) !== (b | 0x20)) return false;
    // Only letters may differ by 0x20: '@' (0x40) and '`' (0x60) are not the same.
    if (a !== b && ((a | 0x20) < 0x61 || (a | 0x20) > 0x7a)) return false;
  }
  for (let i = nameEnd; i < question.length; i++) if (answer[HEADER_LEN + i] !== question[i]) return false;
  return true;
}
