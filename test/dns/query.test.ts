import { describe, expect, test } from 'bun:test';
import dnsPacket from 'dns-packet';
import { parseQuery, RCODE_BADVERS } from '../../src/dns/query.ts';
import { RCODE_FORMERR, RCODE_NOTIMP, RCODE_REFUSED } from '../../src/dns/wire.ts';
import { clientQuery, withEdnsOptions } from '../fixtures/dns/capture.ts';
import { hex } from './fixtures.ts';

function encode(p: object): Uint8Array {
  return new Uint8Array(dnsPacket.encode(p as dnsPacket.Packet));
}

describe('dns/query', () => {
  test('reads id, flags, question and EDNS when a stub sends a plain query', () => {
    const r = parseQuery(clientQuery('WwW.Test', 1, true, 0xbeef));
    expect(r.kind).toBe('ok');
    if (r.kind !== 'ok') return;
    expect(r.query).toMatchObject({
      id: 0xbeef,
      flags: 0x0100,
      opcode: 0,
      qname: 'www.test',
      qtype: 1,
      qclass: 1,
      edns: { udpSize: 1232, version: 0, dnssecOk: true },
    });
    expect(Buffer.from(r.query.question).toString('hex')).toBe('03577757045465737400' + '0001' + '0001');
  });

  test.each([
    ['no option', [], null],
    ['a cookie only', [[10, [1, 2, 3, 4, 5, 6, 7, 8]]], null],
    ['a client subnet after a cookie', [[10, [1, 2, 3, 4, 5, 6, 7, 8]], [8, [0, 1, 32, 0, 192, 168, 1, 7]]], [0, 1, 32, 0, 192, 168, 1, 7]],
    ['two client subnets', [[8, [0, 1, 32, 0, 192, 168, 1, 7]], [8, [0, 1, 32, 0, 192, 168, 1, 8]]], 'malformed'],
  ] as const)('reads the EDNS Client Subnet option when the query carries %s', (_what, options, want) => {
    const r = parseQuery(withEdnsOptions(clientQuery('a.test', 1), options as unknown as Array<[number, number[]]>));
    expect(r.kind).toBe('ok');
    const got = r.kind === 'ok' ? r.query.edns!.clientSubnet : undefined;
    expect(got instanceof Uint8Array ? Array.from(got) : got).toEqual(want as never);
  });

  test('reads the client subnet as malformed when the option list breaks off after it', () => {
    const q = withEdnsOptions(clientQuery('a.test', 1), [[8, [0, 1, 32, 0, 192, 168, 1, 7]]]);
    // then an option claiming 4 octets of which only 2 are there
    const broken = Uint8Array.from([...q, 0, 12, 0, 4, 0, 0]);
    const rdLenLow = q.length - 12 - 1; // the OPT's rdlen sits just before its 12 option octets
    broken[rdLenLow] = broken[rdLenLow]! + 6;
    const r = parseQuery(broken);
    expect(r.kind === 'ok' && r.query.edns!.clientSubnet).toBe('malformed');
  });

  test('has no EDNS and floors a tiny payload size when the client sends none or 100', () => {
    const plain = parseQuery(encode({ type: 'query', id: 1, questions: [{ name: 'a.test', type: 'A' }] }));
    expect(plain.kind === 'ok' && plain.query.edns).toBeNull();
    const small = parseQuery(
      encode({ type: 'query', id: 1, questions: [{ name: 'a.test', type: 'A' }], additionals: [{ type: 'OPT', name: '.', udpPayloadSize: 100 }] }),
    );
    expect(small.kind === 'ok' && small.query.edns?.udpSize).toBe(512);
  });

  test.each([
    ['shorter than a header', '0001020304', 'drop'],
    ['a response (QR set)', '12348180000100000000000000', 'drop'],
  ])('drops %s', (_w, h, kind) => {
    expect(parseQuery(hex(h)).kind).toBe(kind as 'drop');
  });

  test.each([
    ['no question', '123401000000000000000000', RCODE_FORMERR, false],
    ['two questions', '1234010000020000000000000161000001000101610000010001', RCODE_FORMERR, false],
    ['a question cut short', '12340100000100000000000003777777', RCODE_FORMERR, false],
    ['a question without type/class', '1234010000010000000000000161000001', RCODE_FORMERR, false],
    ['a compressed question name', '123401000001000000000000c00c00010001', RCODE_FORMERR, false],
    ['an absurd additional count', '12340100000100000000ffff0161000001000100', RCODE_FORMERR, true],
    ['two OPT records', '12340100000100000000000201610000010001' + '0000290200000000000000' + '0000290200000000000000', RCODE_FORMERR, true],
    ['an OPT not owned by the root', '12340100000100000000000101610000010001' + '016100' + '00290200000000000000', RCODE_FORMERR, true],
    ['opcode STATUS', '12341100000100000000000001610000010001', RCODE_NOTIMP, true],
    ['an AXFR', '1234010000010000000000000161000' + '0fc0001', RCODE_REFUSED, true],
    ['EDNS version 1', '12340100000100000000000101610000010001' + '0000290200000100000000', RCODE_BADVERS, true],
  ])('answers an error when the query has %s', (_w, h, rcode, hasQuestion) => {
    const r = parseQuery(hex(h));
    expect(r.kind).toBe('error');
    if (r.kind !== 'error') return;
    expect(r.rcode).toBe(rcode);
    expect(r.query !== null).toBe(hasQuestion);
  });

  test('escapes odd label bytes so different wire names never read the same', () => {
    const a = parseQuery(hex('1234010000010000000000000161' + '03612e62' + '00' + '00010001'));
    const b = parseQuery(hex('1234010000010000000000000161' + '0161' + '0162' + '00' + '00010001'));
    expect(a.kind === 'ok' && b.kind === 'ok').toBe(true);
    if (a.kind === 'ok' && b.kind === 'ok') {
      expect(a.query.qname).toBe('a.a\\046b');
      expect(b.query.qname).toBe('a.a.b');
    }
  });
});
