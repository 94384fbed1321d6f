/**
 * Local records (issue 12, `hosts:` / `hosts_file:`): names like `router.lan` answered by the
 * proxy itself, as dnsmasq answers from /etc/hosts — no upstream is asked for them.
 *
 * - A and AAAA for a local name (ANY: both), PTR for the reverse name of each address
 *   (`1.1.168.192.in-addr.arpa`, nibbles under `ip6.arpa`) naming the first name the address
 *   was given for (/etc/hosts: the canonical name comes first); every other type of a local
 *   name (or of a local reverse name) gets NODATA: NOERROR with an empty answer (RFC 2308 §2.2,
 *   never NXDOMAIN for a name that exists, RFC 4074). Class IN only; the names exactly (a name
 *   below a local one is forwarded); compared without case.
 * - Flags: AA set (RFC 1035 §4.1.1): the operator's own data, served from here and not from a
 *   cache, ranks as authoritative data (RFC 2181 §5.4.1), as dnsmasq, unbound `local-data` and
 *   CoreDNS `hosts` answer; RA set, RD and CD echoed, AD clear (nothing here was validated).
 *   No SOA in a NODATA answer (there is no zone): a downstream cache does not keep it (RFC 2308
 *   §5), so a reload's new records are seen at once.
 * - Every record has the `hosts_ttl` TTL.
 *
 * The answer is made as an upstream's would be (our bytes, the client's question, no OPT) and
 * scanned by the same scanner, so the pipeline's decide → register → confine → respond treat
 * it like any other: a protected local name is registered before it is released.
 */
import { scanAnswer } from '../dns/answer-scan.ts';
import type { ParsedQuery } from '../dns/query.ts';
import { CLASS_IN, FLAG_AA, FLAG_CD, FLAG_QR, FLAG_RA, FLAG_RD, HEADER_LEN, TYPE_A, TYPE_AAAA, putU16 } from '../dns/wire.ts';
import { parseIP } from '../util/ip.ts';
import type { Forwarded } from './forwarder.ts';

const TYPE_PTR = 12;
const TYPE_ANY = 255;

/** One local name and its addresses (canonical name: lower case, A-labels, no root dot; canonical address texts). */
export interface HostEntry {
  name: string;
  addrs: string[];
}

/** What the pipeline asks: the local answer for a query, or null when its name is not local. */
export interface LocalAnswers {
  answer(query: ParsedQuery): Forwarded | null;
}

interface Rdata {
  type: number;
  bytes: Uint8Array;
  /** Presentation form (an address, or the PTR's name), for `explain`. */
  text: string;
}

/** A local record as `explain` shows it. */
export interface LocalRecord {
  type: 'A' | 'AAAA' | 'PTR';
  data: string;
}

/** The reverse-lookup name of an address: `d.c.b.a.in-addr.arpa`, or 32 nibbles `.ip6.arpa`. */
export function reverseName(addr: string): string {
  const b = parseIP(addr);
  if (!b) throw new RangeError(`local-records: "${addr}" is not an IP address`);
  // the labels are the address's bytes (IPv4) or nibbles (IPv6), lowest first
  const labels: string[] = [];
  for (let i = b.length - 1; i >= 0; i--) {
    if (b.length === 4) labels.push(String(b[i]));
    else labels.push((b[i]! & 0xf).toString(16), (b[i]! >> 4).toString(16));
  }
  return `${labels.join('.')}.${b.length === 4 ? 'in-addr' : 'ip6'}.arpa`;
}

/** A presentation name (LDH labels) in wire form. */
function wireName(name: string): Uint8Array {
  const labels = name === '' ? [] : name.split('.');
  const out = new Uint8Array(labels.reduce((n, l) => n + 1 + l.length, 1));
  let o = 0;
  for (const l of labels) {
    out[o++] = l.length;
    for (let i = 0; i < l.length; i++) out[o++] = l.charCodeAt(i);
  }
  return out;
}

const NO_RECORDS: readonly Rdata[] = Object.freeze([]);

export class LocalRecords implements LocalAnswers {
  /** Name → its A and AAAA rdata, in the order given. */
  private readonly names = new Map<string, Rdata[]>();
  /** Reverse name → its PTR rdata (the first name given for the address). */
  private readonly reverse = new Map<string, Rdata[]>();

  constructor(
    entries: readonly HostEntry[],
    /** TTL of every local record, seconds. */
    readonly ttlS: number,
  ) {
    for (const e of entries) {
      const list = this.names.get(e.name) ?? [];
      for (const a of e.addrs) {
        if (list.some((r) => r.text === a)) continue;
        const bytes = parseIP(a);
        if (!bytes) throw new RangeError(`local-records: "${a}" of ${e.name} is not an IP address`);
        list.push({ type: bytes.length === 4 ? TYPE_A : TYPE_AAAA, bytes, text: a });
        const rev = reverseName(a);
        if (!this.reverse.has(rev)) this.reverse.set(rev, [{ type: TYPE_PTR, bytes: wireName(e.name), text: e.name }]);
      }
      this.names.set(e.name, list);
    }
  }

  /** Local names. */
  get size(): number {
    return this.names.size;
  }

  /** The records of a local name or reverse name (canonical: lower case, no root dot), or undefined when it is neither. */
  records(name: string): LocalRecord[] | undefined {
    const list = this.names.get(name) ?? this.reverse.get(name);
    return list?.map((r) => ({ type: r.type === TYPE_A ? 'A' : r.type === TYPE_AAAA ? 'AAAA' : 'PTR', data: r.text }));
  }

  /** The answer for `query` when its name is local (or a local address's reverse name), else null. */
  answer(query: ParsedQuery): Forwarded | null {
    if (this.names.size === 0 || query.qclass !== CLASS_IN) return null;
    const records = this.names.get(query.qname) ?? this.reverse.get(query.qname);
    if (records === undefined) return null;
    const t = query.qtype;
    const wanted = t === TYPE_ANY ? records : records.filter((r) => r.type === t);
    const bytes = this.build(query, wanted.length > 0 ? wanted : NO_RECORDS);
    // `via`: no transport made it; a local answer never reaches the cache
    return { bytes, scan: scanAnswer(bytes, query.question.length, query.qname), via: 'udp' };
  }

  /** Header, the client's question, one record per rdata owned by the question name (a pointer to it). */
  private build(query: ParsedQuery, records: readonly Rdata[]): Uint8Array {
    const q = query.question;
    let size = HEADER_LEN + q.length;
    for (const r of records) size += 12 + r.bytes.length;
    const out = new Uint8Array(size);
    putU16(out, 2, FLAG_QR | FLAG_AA | FLAG_RA | (query.flags & (FLAG_RD | FLAG_CD)));
    out[5] = 1; // QDCOUNT
    putU16(out, 6, records.length);
    out.set(q, HEADER_LEN);
    let o = HEADER_LEN + q.length;
    for (const r of records) {
      out[o] = 0xc0; // owner: a pointer to the question name
      out[o + 1] = HEADER_LEN;
      putU16(out, o + 2, r.type);
      putU16(out, o + 4, CLASS_IN);
      putU16(out, o + 6, this.ttlS >>> 16);
      putU16(out, o + 8, this.ttlS & 0xffff);
      putU16(out, o + 10, r.bytes.length);
      out.set(r.bytes, o + 12);
      o += 12 + r.bytes.length;
    }
    return out;
  }
}
