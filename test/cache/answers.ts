/**
 * Answers for the cache tests: a client query (test/fixtures/dns/capture.ts `clientQuery`, RD
 * and EDNS set, DO/CD/AD as asked) and an upstream answer to it built with dns-packet, read by
 * `scanAnswer` as the forwarder reads one.
 */
import dnsPacket from 'dns-packet';
import { scanAnswer } from '../../src/dns/answer-scan.ts';
import { parseQuery, type ParsedQuery } from '../../src/dns/query.ts';
import type { Forwarded } from '../../src/proxy/forwarder.ts';
import { clientQuery } from '../fixtures/dns/capture.ts';

export interface QueryOptions {
  type?: number;
  dnssec?: boolean;
  cd?: boolean;
  ad?: boolean;
  rd?: boolean;
  id?: number;
}

export function query(name: string, o: QueryOptions = {}): ParsedQuery {
  const bytes = clientQuery(name, o.type ?? 1, o.dnssec ?? false, o.id ?? 0x4242);
  if (o.rd === false) bytes[2] = bytes[2]! & ~0x01;
  if (o.ad) bytes[3] = bytes[3]! | 0x20;
  if (o.cd) bytes[3] = bytes[3]! | 0x10;
  const parsed = parseQuery(bytes);
  if (parsed.kind !== 'ok') throw new Error(`bad test query ${name}`);
  return parsed.query;
}

type Rec = dnsPacket.Answer;

export interface AnswerOptions {
  rcode?: 'NOERROR' | 'NXDOMAIN' | 'SERVFAIL' | 'REFUSED';
  answers?: Rec[];
  authorities?: Rec[];
  additionals?: Rec[];
  tc?: boolean;
  /** Leave the OPT out. */
  noOpt?: boolean;
}

const RCODES = { NOERROR: 0, NXDOMAIN: 3, SERVFAIL: 2, REFUSED: 5 } as const;

/** The upstream's answer to `q` (its question echoed byte for byte), with an OPT unless told not to. */
export function answer(q: ParsedQuery, o: AnswerOptions = {}): Forwarded {
  const head = Uint8Array.from([0x12, 0x34, 0x81 | (o.tc ? 0x02 : 0), 0x80 | RCODES[o.rcode ?? 'NOERROR'], 0, 1, 0, 0, 0, 0, 0, 0]);
  const body = dnsPacket.encode({
    type: 'response',
    id: 0,
    flags: 0,
    questions: [],
    answers: o.answers ?? [],
    authorities: o.authorities ?? [],
    additionals: [...(o.additionals ?? []), ...(o.noOpt ? [] : [{ type: 'OPT', name: '.', udpPayloadSize: 1232, extendedRcode: 0, ednsVersion: 0, flags: 0, options: [] } as unknown as Rec])],
  });
  // dns-packet cannot echo a question with our exact bytes; splice header, question, records.
  const records = body.subarray(12);
  const bytes = new Uint8Array(12 + q.question.length + records.length);
  bytes.set(head, 0);
  bytes.set(body.subarray(6, 12), 6);
  bytes.set(q.question, 12);
  bytes.set(records, 12 + q.question.length);
  return { bytes, scan: scanAnswer(bytes, q.question.length, q.qname), via: 'udp' };
}

export const soa = (zone: string, ttl: number, minimum: number): Rec =>
  ({ type: 'SOA', name: zone, ttl, data: { mname: `ns.${zone}`, rname: `hostmaster.${zone}`, serial: 1, refresh: 3600, retry: 600, expire: 86400, minimum } }) as Rec;
export const a = (name: string, ttl: number, address: string): Rec => ({ type: 'A', name, ttl, data: address });
export const aaaa = (name: string, ttl: number, address: string): Rec => ({ type: 'AAAA', name, ttl, data: address });
export const cname = (name: string, ttl: number, target: string): Rec => ({ type: 'CNAME', name, ttl, data: target });

export const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
export const unhex = (s: string) => Uint8Array.from(Buffer.from(s.replace(/\s+|#[^\n]*/g, ''), 'hex'));
