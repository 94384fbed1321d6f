import { describe, expect, test } from 'bun:test';
import dnsPacket from 'dns-packet';
import { scanAnswer } from '../../src/dns/answer-scan.ts';
import { parseQuery, type ParsedQuery } from '../../src/dns/query.ts';
import {
  buildErrorResponse,
  buildHeaderOnlyResponse,
  buildUpstreamQuery,
  encodeOpt,
  relayAnswer,
  udpLimit,
} from '../../src/dns/response.ts';
import { RCODE_FORMERR, RCODE_NXDOMAIN, RCODE_SERVFAIL } from '../../src/dns/wire.ts';
import { clientQuery } from '../fixtures/dns/capture.ts';
import { fixture, hex } from './fixtures.ts';

const toHex = (b: Uint8Array) => Buffer.from(b).toString('hex');

function q(bytes: Uint8Array): ParsedQuery {
  const r = parseQuery(bytes);
  if (r.kind !== 'ok') throw new Error('fixture query did not parse');
  return r.query;
}

function plainQuery(name: string, id = 0x0102): Uint8Array {
  return new Uint8Array(dnsPacket.encode({ type: 'query', id, flags: dnsPacket.RECURSION_DESIRED, questions: [{ name, type: 'A' }] }));
}

const WWW_Q = '03777777047465737400' + '0001' + '0001';

describe('dns/response', () => {
  test('builds the upstream query byte for byte when the client asked with DO', () => {
    const out = buildUpstreamQuery(0xabcd, q(clientQuery('www.test', 1, true)));
    expect(toHex(out)).toBe('abcd' + '0100' + '0001' + '0000' + '0000' + '0001' + WWW_Q + '00' + '0029' + '04d0' + '00008000' + '0000');
  });

  test('sends our OPT without DO upstream when the client had no EDNS', () => {
    const out = buildUpstreamQuery(1, q(plainQuery('www.test')));
    expect(toHex(out).slice(-22)).toBe('00' + '0029' + '04d0' + '00000000' + '0000');
    const round = dnsPacket.decode(Buffer.from(out));
    expect(round.questions?.[0]).toEqual({ name: 'www.test', type: 'A', class: 'IN' });
    expect(round.additionals?.length).toBe(1);
  });

  test('keeps only RD/CD/AD of the client flags when forwarding', () => {
    const bytes = clientQuery('www.test', 1);
    bytes[2] = 0x7f; // opcode bits, AA, TC, RD
    bytes[3] = 0xff; // RA, Z, AD, CD, rcode
    const parsed = parseQuery(bytes);
    // opcode 15 is NOTIMP; take the flags from a parsed query with a legal opcode instead
    expect(parsed.kind).toBe('error');
    const legal = clientQuery('www.test', 1);
    legal[2] = 0x07; // AA, TC, RD
    legal[3] = 0xff;
    expect(toHex(buildUpstreamQuery(1, q(legal)).subarray(2, 4))).toBe('0130');
  });

  test.each([
    ['SERVFAIL with EDNS', clientQuery('www.test', 1, true, 0x0102), RCODE_SERVFAIL,
      '0102' + '8182' + '0001' + '0000' + '0000' + '0001' + WWW_Q + '00' + '0029' + '04d0' + '00008000' + '0000'],
    ['NXDOMAIN without EDNS', plainQuery('www.test'), RCODE_NXDOMAIN,
      '0102' + '8183' + '0001' + '0000' + '0000' + '0000' + WWW_Q],
    ['BADVERS (extended rcode 16) with EDNS', clientQuery('www.test', 1, false, 0x0102), 16,
      '0102' + '8180' + '0001' + '0000' + '0000' + '0001' + WWW_Q + '00' + '0029' + '04d0' + '01000000' + '0000'],
  ])('builds %s byte for byte', (_w, bytes, rcode, golden) => {
    const out = buildErrorResponse(q(bytes), rcode);
    expect(toHex(out)).toBe(golden);
    expect(() => dnsPacket.decode(Buffer.from(out))).not.toThrow();
  });

  test('builds a header-only FORMERR when the question is unreadable', () => {
    expect(toHex(buildHeaderOnlyResponse(hex('beef0100000200000000000003'), RCODE_FORMERR)!)).toBe('beef' + '8181' + '0000'.repeat(4));
    expect(buildHeaderOnlyResponse(hex('beef01'), RCODE_FORMERR)).toBeNull();
  });

  test('encodes an OPT record with options when asked', () => {
    expect(toHex(encodeOpt(1232, 1, true, hex('000f00020006')))).toBe('00' + '0029' + '04d0' + '01008000' + '0006' + '000f00020006');
  });

  test('relays knot answer with only the ID and OPT changed when the client spoke EDNS', () => {
    const { answer } = fixture('alias-a');
    const query = q(clientQuery('alias.test', 1, false, 0x7777));
    const scan = scanAnswer(answer, query.question.length, query.qname);
    const out = relayAnswer(answer, scan, query, udpLimit(query));
    // Everything up to the OPT is the upstream's, except the ID.
    expect(toHex(out.subarray(2, scan.opt!.off))).toBe(toHex(answer.subarray(2, scan.opt!.off)));
    expect(toHex(out.subarray(0, 2))).toBe('7777');
    expect(toHex(out.subarray(scan.opt!.off))).toBe('00' + '0029' + '04d0' + '00000000' + '0000');
    const round = dnsPacket.decode(Buffer.from(out));
    expect(round.answers?.map((a) => (a as { data: unknown }).data)).toEqual(['www.test', '192.0.2.10']);
  });

  test('removes the OPT and decrements ARCOUNT when the client had no EDNS', () => {
    const { answer } = fixture('www-a');
    const query = q(plainQuery('www.test', 0x0909));
    const scan = scanAnswer(answer, query.question.length, query.qname);
    const out = relayAnswer(answer, scan, query, udpLimit(query));
    expect(out.length).toBe(scan.opt!.off);
    expect(out[11]).toBe(0);
    expect(dnsPacket.decode(Buffer.from(out)).additionals).toEqual([]);
  });

  test('keeps DO from the client and the upstream DNSSEC records when relaying a signed answer', () => {
    const { answer } = fixture('signed-a-do');
    const query = q(clientQuery('www.signed.test', 1, true));
    const scan = scanAnswer(answer, query.question.length, query.qname);
    const out = relayAnswer(answer, scan, query, udpLimit(query));
    const d = dnsPacket.decode(Buffer.from(out));
    expect(d.answers?.map((a) => a.type)).toEqual(['A', 'RRSIG']);
    expect((d.additionals?.[0] as unknown as { flags: number }).flags & dnsPacket.DNSSEC_OK).toBe(dnsPacket.DNSSEC_OK);
  });

  test('adds our OPT when the client spoke EDNS and the upstream answer had none', () => {
    const up = new Uint8Array(
      dnsPacket.encode({ type: 'response', id: 5, flags: 0x8180, questions: [{ name: 'www.test', type: 'A' }], answers: [{ name: 'www.test', type: 'A', ttl: 5, data: '192.0.2.1' }] } as dnsPacket.Packet),
    );
    const query = q(clientQuery('www.test', 1, false, 0x0a0b));
    const out = relayAnswer(up, scanAnswer(up, query.question.length, query.qname), query, null);
    expect(toHex(out)).toBe(toHex(up.subarray(0, 0)) + '0a0b' + toHex(up.subarray(2, 10)) + '0001' + toHex(up.subarray(12)) + '00002904d0000000000000');
  });

  test('passes Extended DNS Errors on and drops other upstream options (cookies)', () => {
    const up = new Uint8Array(
      dnsPacket.encode({
        type: 'response', id: 5, flags: 0x8182, questions: [{ name: 'www.test', type: 'A' }],
        additionals: [{ name: '.', type: 'OPT', udpPayloadSize: 4096, flags: 0, options: [
          { code: 10, data: Buffer.from('0102030405060708aabbccddeeff0011', 'hex') },
          { code: 15, data: Buffer.from('0006', 'hex') },
        ] }],
      } as unknown as dnsPacket.Packet),
    );
    const query = q(clientQuery('www.test', 1));
    const out = relayAnswer(up, scanAnswer(up, query.question.length, query.qname), query, null);
    expect(toHex(out).endsWith('00' + '0029' + '04d0' + '00000000' + '0006' + '000f00020006')).toBe(true);
  });

  test('cuts records after the OPT too when the OPT is not last', () => {
    const up = new Uint8Array(
      dnsPacket.encode({
        type: 'response', id: 5, flags: 0x8180, questions: [{ name: 'www.test', type: 'A' }],
        additionals: [
          { name: 'glue.test', type: 'A', ttl: 5, data: '192.0.2.7' },
          { name: '.', type: 'OPT', udpPayloadSize: 4096, flags: 0, options: [] },
          { name: 'late.test', type: 'A', ttl: 5, data: '192.0.2.8' },
        ],
      } as unknown as dnsPacket.Packet),
    );
    const query = q(plainQuery('www.test'));
    const out = relayAnswer(up, scanAnswer(up, query.question.length, query.qname), query, null);
    const d = dnsPacket.decode(Buffer.from(out));
    expect(d.additionals?.map((a) => a.name)).toEqual(['glue.test']);
  });

  test.each([
    ['no EDNS (512)', plainQuery('many.test'), 27],
    ['EDNS 1232', clientQuery('many.test', 1), 38],
  ])('sends an empty TC answer over UDP when the answer does not fit with %s', (_w, bytes, size) => {
    const { answer } = fixture('many-a');
    const query = q(bytes);
    const scan = scanAnswer(answer, query.question.length, query.qname);
    const out = relayAnswer(answer, scan, query, udpLimit(query));
    expect(out.length).toBe(size);
    const d = dnsPacket.decode(Buffer.from(out));
    expect(d.flag_tc).toBe(true);
    expect(d.answers).toEqual([]);
    expect(d.id).toBe(query.id);
    // Over TCP the same answer goes out whole.
    expect(relayAnswer(answer, scan, query, null).length).toBe(query.edns ? answer.length : scan.opt!.off);
  });

  test.each([
    [null, 512],
    [100, 512],
    [1232, 1232],
    [4096, 1232],
  ])('limits UDP answers when the client advertises %p', (size, limit) => {
    const query = q(size === null ? plainQuery('a.test') : clientQuery('a.test', 1));
    if (size !== null) query.edns!.udpSize = Math.max(512, size);
    expect(udpLimit(query)).toBe(limit);
  });
});
