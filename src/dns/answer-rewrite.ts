/**
 * The client's copy of a protected answer: only addresses that were registered reach it.
 *
 * - Intercept mode (#6, `map`): every A/AAAA address becomes its intercept address, HTTPS/SVCB
 *   `ipv4hint`/`ipv6hint` addresses likewise, TTLs of those records are capped (`ttlCapS`).
 * - Host and gateway modes (issue 11 item 10, `keep`): the registered addresses stay as they are.
 *
 * Fail closed, in both: an A/AAAA record (any section) whose address is neither mapped nor kept
 * is REMOVED (never released: the client could send to it in clear, unregistered), and so is
 * such a hint address; a hint key left empty is dropped, a record whose `mandatory` key names it
 * is removed. RRSIGs covering a changed RRset are removed and AD is cleared when anything
 * changed; an RRset left as it was keeps its signatures.
 *
 * A validating stub behind an intercept node must not validate these names: the signatures are
 * gone and the data no longer matches what the zone signed (documented in src/intercept/README.md).
 *
 * Records are walked and re-emitted, not decoded: removing or resizing records moves bytes, so
 * every compression pointer is relocated (pointers into bytes that were dropped or rewritten are
 * expanded into the full name). Every read is bounds-checked (WireError → the caller SERVFAILs).
 * The OPT record is copied unchanged; re-scan the result (scanAnswer) before relayAnswer.
 */
import { parseIPv4, parseIPv6 } from '../util/ip.ts';
import { ipv4Text, ipv6Text } from './ip-text.ts';
import { SVC_KEY_IPV4HINT, SVC_KEY_IPV6HINT, SVC_KEY_MANDATORY } from './svcb.ts';
import { FLAG_AD, HEADER_LEN, TYPE_A, TYPE_AAAA, TYPE_HTTPS, TYPE_OPT, TYPE_SVCB, WireError, putU16, readName, readRecordHead, skipName, u16 } from './wire.ts';

const TYPE_RRSIG = 46;
const MAX_NAME_WIRE = 255;

export interface RewriteOptions {
  /** address → the address the client gets instead (canonical texts, as InterceptPool.allocate returns). */
  map?: ReadonlyMap<string, string>;
  /** Addresses the client gets as they are (canonical texts, as scanAnswer lists them). */
  keep?: ReadonlySet<string>;
  /** TTL cap of the records `map` rewrote, seconds (unset: no cap). */
  ttlCapS?: number;
}

export interface RewriteResult {
  bytes: Uint8Array;
  /** Addresses replaced through `map` (records and hints). */
  rewritten: number;
  /** Records removed (A/AAAA neither mapped nor kept, RRSIGs over changed sets, SVCB with a dropped mandatory hint). */
  removed: number;
}

const NO_MAP: ReadonlyMap<string, string> = new Map();
const NO_KEEP: ReadonlySet<string> = new Set();

/** What happens to one address: kept as it is, replaced by these bytes, or removed (null). */
function fate(opts: Required<Pick<RewriteOptions, 'map' | 'keep'>>, text: string, size: number): 'keep' | Uint8Array | null {
  if (opts.keep.has(text)) return 'keep';
  const to = opts.map.get(text);
  if (to === undefined) return null;
  const bytes = size === 4 ? parseIPv4(to) : parseIPv6(to);
  return bytes && bytes.length === size ? bytes : null;
}

/** rdata layouts whose names may be compressed (RFC 1035 §3.3, RFC 3597 §4): [prefix bytes, names…]. */
const NAME_RDATA: Record<number, { pre: number; names: number; post: boolean }> = {
  2: { pre: 0, names: 1, post: false }, // NS
  5: { pre: 0, names: 1, post: false }, // CNAME
  12: { pre: 0, names: 1, post: false }, // PTR
  15: { pre: 2, names: 1, post: false }, // MX
  6: { pre: 0, names: 2, post: true }, // SOA: mname rname + 20 bytes
  33: { pre: 6, names: 1, post: false }, // SRV
  18: { pre: 2, names: 1, post: false }, // AFSDB
  21: { pre: 2, names: 1, post: false }, // RT
};

interface Rec {
  off: number;
  nameEnd: number;
  type: number;
  klass: number;
  ttl: number;
  rdOff: number;
  rdLen: number;
  end: number;
  owner: string;
  /** Replacement rdata (rewritten A/AAAA/SVCB), or undefined to copy. */
  rdata?: Uint8Array;
  /** Bytes of `rdata` copied from the original (SVCB priority+target), for pointer relocation. */
  rdataKeepPrefix?: number;
  drop?: boolean;
  cap?: boolean;
}

class Out {
  buf = new Uint8Array(4096);
  len = 0;
  /** Original byte ranges copied verbatim: [oldStart, oldEnd, newStart]. */
  segs: [number, number, number][] = [];

  ensure(n: number): void {
    if (this.len + n <= this.buf.length) return;
    const b = new Uint8Array(Math.max(this.buf.length * 2, this.len + n));
    b.set(this.buf.subarray(0, this.len));
    this.buf = b;
  }

  bytes(b: Uint8Array): void {
    this.ensure(b.length);
    this.buf.set(b, this.len);
    this.len += b.length;
  }

  /** Copies src[from, to) and remembers where it went. */
  copy(src: Uint8Array, from: number, to: number): void {
    if (to <= from) return;
    this.segs.push([from, to, this.len]);
    this.bytes(src.subarray(from, to));
  }

  u16(v: number): void {
    this.ensure(2);
    putU16(this.buf, this.len, v);
    this.len += 2;
  }

  u32(v: number): void {
    this.u16((v >>> 16) & 0xffff);
    this.u16(v & 0xffff);
  }

  relocate(old: number): number | undefined {
    for (const [a, b, n] of this.segs) if (old >= a && old < b) return n + (old - a);
    return undefined;
  }
}

/**
 * Copies the (possibly compressed) name at `off` into `out`, relocating its pointer; a pointer
 * whose target was not copied verbatim (or lies beyond 0x3fff in the output) is expanded.
 * Returns the offset just past the name in the original.
 */
function copyName(src: Uint8Array, off: number, out: Out): number {
  const end = skipName(src, off);
  let p = off;
  let wire = 0;
  let hops = 0;
  let limit = off;
  let expanding = false;
  for (;;) {
    if (p >= src.length) throw new WireError(`name runs past the end at ${p}`);
    const len = src[p]!;
    if (len === 0) {
      out.bytes(Uint8Array.of(0));
      return end;
    }
    if ((len & 0xc0) === 0xc0) {
      if (p + 2 > src.length) throw new WireError(`pointer truncated at ${p}`);
      const target = ((len & 0x3f) << 8) | src[p + 1]!;
      if (++hops > 128 || target >= limit) throw new WireError(`compression pointer loop or forward pointer at ${p}`);
      limit = target;
      const moved = expanding ? undefined : out.relocate(target);
      if (moved !== undefined && moved < 0x4000) {
        out.u16(0xc000 | moved);
        return end;
      }
      expanding = true;
      p = target;
      continue;
    }
    if ((len & 0xc0) !== 0) throw new WireError(`reserved label type 0x${len.toString(16)} at ${p}`);
    if (p + 1 + len > src.length) throw new WireError(`label runs past the end at ${p}`);
    wire += 1 + len;
    if (wire + 1 > MAX_NAME_WIRE) throw new WireError(`name longer than ${MAX_NAME_WIRE} octets at ${off}`);
    if (expanding) out.bytes(src.subarray(p, p + 1 + len));
    else out.copy(src, p, p + 1 + len);
    p += 1 + len;
  }
}

/** New SVCB rdata with hints mapped, kept or dropped; undefined = unchanged bytes; null = the record must go. */
function rewriteSvcb(
  buf: Uint8Array,
  r: Rec,
  opts: Required<Pick<RewriteOptions, 'map' | 'keep'>>,
  count: { n: number },
): { rdata: Uint8Array; keep: number } | null | undefined {
  const end = r.rdOff + r.rdLen;
  if (r.rdLen < 3) throw new WireError('svcb: rdata too short');
  let p = r.rdOff + 2;
  for (;;) {
    if (p >= end) throw new WireError('svcb: target name runs past the rdata');
    const l = buf[p]!;
    if (l === 0) break;
    if (l > 63) throw new WireError('svcb: compressed or reserved label in target name');
    p += 1 + l;
  }
  p++;
  const keep = p - r.rdOff;
  const parts: number[] = [];
  let changed = false;
  const mandatory: number[] = [];
  const dropped: number[] = [];
  while (p < end) {
    if (p + 4 > end) throw new WireError('svcb: param header runs past the rdata');
    const key = u16(buf, p);
    const vlen = u16(buf, p + 2);
    const v = p + 4;
    if (v + vlen > end) throw new WireError(`svcb: param ${key} value runs past the rdata`);
    if (key === SVC_KEY_MANDATORY) for (let q = v; q + 2 <= v + vlen; q += 2) mandatory.push(u16(buf, q));
    if (key === SVC_KEY_IPV4HINT || key === SVC_KEY_IPV6HINT) {
      const size = key === SVC_KEY_IPV4HINT ? 4 : 16;
      if (vlen === 0 || vlen % size !== 0) throw new WireError(`svcb: hint of ${vlen} octets`);
      const kept: number[] = [];
      let same = true;
      for (let a = v; a < v + vlen; a += size) {
        const text = size === 4 ? ipv4Text(buf, a) : ipv6Text(buf, a);
        const f = fate(opts, text, size);
        if (f === 'keep') {
          for (let i = a; i < a + size; i++) kept.push(buf[i]!);
        } else if (f) {
          kept.push(...f);
          count.n++;
          same = false;
        } else {
          same = false;
        }
      }
      if (!same) changed = true;
      if (kept.length === 0) {
        dropped.push(key);
      } else {
        parts.push(key >> 8, key & 0xff, kept.length >> 8, kept.length & 0xff, ...kept);
      }
    } else {
      for (let q = p; q < v + vlen; q++) parts.push(buf[q]!);
    }
    p = v + vlen;
  }
  if (!changed) return undefined;
  if (dropped.some((k) => mandatory.includes(k))) return null;
  const rdata = new Uint8Array(keep + parts.length);
  rdata.set(buf.subarray(r.rdOff, r.rdOff + keep));
  rdata.set(parts, keep);
  return { rdata, keep };
}

export function rewriteAnswer(buf: Uint8Array, opts: RewriteOptions): RewriteResult {
  const cap = opts.ttlCapS ?? Number.POSITIVE_INFINITY;
  const which = { map: opts.map ?? NO_MAP, keep: opts.keep ?? NO_KEEP };
  if (buf.length < HEADER_LEN) throw new WireError('answer shorter than a header');
  const qd = u16(buf, 4);
  const counts = [u16(buf, 6), u16(buf, 8), u16(buf, 10)];
  let p = HEADER_LEN;
  for (let i = 0; i < qd; i++) {
    p = skipName(buf, p) + 4;
    if (p > buf.length) throw new WireError('question truncated');
  }
  const qEnd = p;
  const sections: Rec[][] = [[], [], []];
  for (let s = 0; s < 3; s++) {
    for (let i = 0; i < counts[s]!; i++) {
      const h = readRecordHead(buf, p);
      const owner = h.type === TYPE_OPT ? '' : readName(buf, p).name;
      sections[s]!.push({ off: p, nameEnd: h.rdOff - 10, type: h.type, klass: h.klass, ttl: h.ttl, rdOff: h.rdOff, rdLen: h.rdLen, end: h.end, owner });
      p = h.end;
    }
  }
  // Pass 1: addresses and hints; remember which RRsets changed.
  const changedSets = new Set<string>();
  const count = { n: 0 };
  let removed = 0;
  for (const r of sections.flat()) {
    if (r.type === TYPE_A || r.type === TYPE_AAAA) {
      const size = r.type === TYPE_A ? 4 : 16;
      if (r.rdLen !== size) throw new WireError(`${r.type === TYPE_A ? 'A' : 'AAAA'} record of ${r.rdLen} octets`);
      const f = fate(which, size === 4 ? ipv4Text(buf, r.rdOff) : ipv6Text(buf, r.rdOff), size);
      if (f === 'keep') continue;
      changedSets.add(`${r.owner}/${r.type}`);
      if (f) {
        r.rdata = f;
        r.cap = true;
        count.n++;
      } else {
        r.drop = true;
      }
    } else if (r.type === TYPE_HTTPS || r.type === TYPE_SVCB) {
      const s = rewriteSvcb(buf, r, which, count);
      if (s === undefined) continue;
      changedSets.add(`${r.owner}/${r.type}`);
      if (s === null) r.drop = true;
      else {
        r.rdata = s.rdata;
        r.rdataKeepPrefix = s.keep;
        r.cap = true;
      }
    }
  }
  // Pass 2: signatures over changed sets.
  for (const r of sections.flat()) {
    if (r.type !== TYPE_RRSIG) continue;
    if (r.rdLen < 2) throw new WireError('RRSIG rdata too short');
    if (changedSets.has(`${r.owner}/${u16(buf, r.rdOff)}`)) r.drop = true;
  }
  // Emit.
  const out = new Out();
  out.copy(buf, 0, HEADER_LEN);
  out.copy(buf, HEADER_LEN, qEnd);
  const kept = [0, 0, 0];
  for (let s = 0; s < 3; s++) {
    for (const r of sections[s]!) {
      if (r.drop) {
        removed++;
        continue;
      }
      kept[s]!++;
      copyName(buf, r.off, out);
      out.copy(buf, r.nameEnd, r.nameEnd + 4); // type, class
      out.u32(r.cap && r.type !== TYPE_OPT ? Math.min(r.ttl, cap) : r.ttl);
      const lenAt = out.len;
      out.u16(0);
      const rdStart = out.len;
      const names = NAME_RDATA[r.type];
      if (r.rdata) {
        if (r.rdataKeepPrefix) {
          out.copy(buf, r.rdOff, r.rdOff + r.rdataKeepPrefix);
          out.bytes(r.rdata.subarray(r.rdataKeepPrefix));
        } else {
          out.bytes(r.rdata);
        }
      } else if (names && r.klass === 1) {
        let q = r.rdOff;
        out.copy(buf, q, q + names.pre);
        q += names.pre;
        for (let n = 0; n < names.names; n++) q = copyName(buf, q, out);
        if (q > r.end) throw new WireError(`rdata names run past the record at ${r.off}`);
        out.copy(buf, q, r.end);
      } else {
        out.copy(buf, r.rdOff, r.end);
      }
      const rdLen = out.len - rdStart;
      if (rdLen > 0xffff) throw new WireError('rewritten rdata too long');
      putU16(out.buf, lenAt, rdLen);
    }
  }
  const bytes = out.buf.slice(0, out.len);
  if (changedSets.size > 0) putU16(bytes, 2, u16(bytes, 2) & ~FLAG_AD);
  putU16(bytes, 6, kept[0]!);
  putU16(bytes, 8, kept[1]!);
  putU16(bytes, 10, kept[2]!);
  return { bytes, rewritten: count.n, removed };
}
