/**
 * A small authoritative zone for the policy server, for sites that keep the protected names
 * in one file instead of forwarding. Master-file subset (RFC 1035 §5): `$ORIGIN`, `$TTL`,
 * `owner [ttl] [IN] TYPE rdata` with `@`, relative names and a blank owner (= previous one);
 * types A, AAAA and CNAME are served, single-line SOA and NS are accepted and ignored.
 * Anything else is a config error with `file:line`.
 */
import type { ParsedQuery } from '../dns/query.ts';
import { FLAG_AA, FLAG_QR, FLAG_RD, HEADER_LEN, RCODE_NXDOMAIN, putU16 } from '../dns/wire.ts';
import { canonicalName } from '../dns/tsig.ts';
import { parseIPv4, parseIPv6 } from '../util/ip.ts';
import { ConfigError } from '../util/errors.ts';

const TYPES = { A: 1, CNAME: 5, AAAA: 28 } as const;
type ServedType = keyof typeof TYPES;

interface ZoneRecord {
  type: number;
  ttl: number;
  rdata: Uint8Array;
  /** CNAME target, lower-case, no trailing dot. */
  target?: string;
}

/** A CNAME chain inside the zone longer than this is cut (loops, abuse). */
const MAX_CHAIN = 8;

function absolute(name: string, origin: string, where: string): string {
  if (name === '@') return origin;
  if (name.endsWith('.')) return name.slice(0, -1).toLowerCase();
  if (name === '') throw new ConfigError(where, 'empty name');
  return origin === '' ? name.toLowerCase() : `${name.toLowerCase()}.${origin}`;
}

export class Zone {
  private readonly names = new Map<string, ZoneRecord[]>();

  private constructor(readonly origin: string) {}

  /** Parses zone text; `file` names it in errors. */
  static parse(text: string, file: string, defaultOrigin = ''): Zone {
    let origin = defaultOrigin.replace(/\.$/, '').toLowerCase();
    let ttl = 3600;
    let last: string | null = null;
    const entries: Array<[string, ZoneRecord]> = [];
    const lines = text.split('\n');
    for (let i = 0; i < lines.length; i++) {
      const where = `${file}:${i + 1}`;
      const raw = lines[i]!.replace(/;.*$/, '').replace(/\s+$/, '');
      if (raw.trim() === '') continue;
      if (raw.includes('(') || raw.includes('"')) throw new ConfigError(where, 'multi-line records and quoted strings are not supported in a policy-server zone');
      const tokens = raw.trim().split(/\s+/);
      if (tokens[0] === '$ORIGIN') {
        if (tokens.length !== 2) throw new ConfigError(where, '$ORIGIN takes one name');
        origin = absolute(tokens[1]!.endsWith('.') ? tokens[1]! : `${tokens[1]}.`, '', where);
        continue;
      }
      if (tokens[0] === '$TTL') {
        if (tokens.length !== 2 || !/^\d{1,10}$/.test(tokens[1]!)) throw new ConfigError(where, '$TTL takes a number of seconds');
        ttl = Number(tokens[1]);
        continue;
      }
      if (tokens[0]!.startsWith('$')) throw new ConfigError(where, `directive ${tokens[0]} is not supported`);
      let owner: string;
      if (/^\s/.test(raw)) {
        if (last === null) throw new ConfigError(where, 'a record without an owner name before any named record');
        owner = last;
      } else {
        owner = absolute(tokens.shift()!, origin, where);
      }
      last = owner;
      let rrTtl = ttl;
      for (let k = 0; k < 2 && tokens.length > 0; k++) {
        if (/^\d{1,10}$/.test(tokens[0]!)) rrTtl = Number(tokens.shift());
        else if (tokens[0]!.toUpperCase() === 'IN') tokens.shift();
      }
      const type = (tokens.shift() ?? '').toUpperCase();
      if (type === 'SOA' || type === 'NS') continue;
      if (!(type in TYPES)) throw new ConfigError(where, `record type ${JSON.stringify(type)} is not supported (A, AAAA, CNAME)`);
      if (tokens.length !== 1) throw new ConfigError(where, `${type} takes exactly one value`);
      const value = tokens[0]!;
      const rec: ZoneRecord = { type: TYPES[type as ServedType], ttl: rrTtl, rdata: new Uint8Array(0) };
      if (type === 'A') {
        const b = parseIPv4(value);
        if (!b) throw new ConfigError(where, `${JSON.stringify(value)} is not an IPv4 address`);
        rec.rdata = b;
      } else if (type === 'AAAA') {
        const b = value.includes(':') ? parseIPv6(value) : null;
        if (!b || b.length !== 16) throw new ConfigError(where, `${JSON.stringify(value)} is not an IPv6 address`);
        rec.rdata = b;
      } else {
        rec.target = absolute(value, origin, where);
        try {
          rec.rdata = canonicalName(rec.target);
        } catch {
          throw new ConfigError(where, `${JSON.stringify(value)} is not a valid name`);
        }
      }
      entries.push([owner, rec]);
    }
    const zone = new Zone(origin);
    for (const [owner, rec] of entries) {
      const list = zone.names.get(owner) ?? [];
      if (rec.type === TYPES.CNAME && list.length > 0) throw new ConfigError(file, `${owner}: a CNAME cannot coexist with other records`);
      if (list.some((r) => r.type === TYPES.CNAME)) throw new ConfigError(file, `${owner}: a CNAME cannot coexist with other records`);
      list.push(rec);
      zone.names.set(owner, list);
    }
    return zone;
  }

  /** True when the zone is authoritative for `qname` (lower-case, no trailing dot). */
  covers(qname: string): boolean {
    return this.origin === '' || qname === this.origin || qname.endsWith(`.${this.origin}`);
  }

  /**
   * An authoritative answer (no OPT: the server adds its own), as an upstream would send it:
   * the client's ID and question, CNAMEs followed inside the zone, NXDOMAIN for unknown names.
   */
  answer(query: ParsedQuery): Uint8Array {
    const rrs: Uint8Array[] = [];
    let name = query.qname;
    let rcode = 0;
    for (let hop = 0; hop <= MAX_CHAIN; hop++) {
      const recs = this.names.get(name);
      if (!recs) {
        if (this.covers(name)) rcode = hop === 0 ? RCODE_NXDOMAIN : rcode;
        break;
      }
      const cname = recs.find((r) => r.type === TYPES.CNAME);
      if (cname && query.qtype !== TYPES.CNAME) {
        rrs.push(encodeRecord(name, query.qclass, cname));
        name = cname.target!;
        continue;
      }
      for (const r of recs) if (r.type === query.qtype) rrs.push(encodeRecord(name, query.qclass, r));
      break;
    }
    let size = HEADER_LEN + query.question.length;
    for (const r of rrs) size += r.length;
    const out = new Uint8Array(size);
    putU16(out, 0, query.id);
    putU16(out, 2, FLAG_QR | FLAG_AA | (query.flags & FLAG_RD) | rcode);
    putU16(out, 4, 1);
    putU16(out, 6, rrs.length);
    out.set(query.question, HEADER_LEN);
    let off = HEADER_LEN + query.question.length;
    for (const r of rrs) {
      out.set(r, off);
      off += r.length;
    }
    return out;
  }
}

function encodeRecord(owner: string, klass: number, r: ZoneRecord): Uint8Array {
  const name = canonicalName(owner);
  const out = new Uint8Array(name.length + 10 + r.rdata.length);
  out.set(name);
  let o = name.length;
  putU16(out, o, r.type);
  putU16(out, o + 2, klass);
  putU16(out, o + 4, Math.floor(r.ttl / 0x10000));
  putU16(out, o + 6, r.ttl & 0xffff);
  putU16(out, o + 8, r.rdata.length);
  out.set(r.rdata, o + 10);
  return out;
}
