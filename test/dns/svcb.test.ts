import { describe, expect, test } from 'bun:test';
import { encodeSvcb, parseSvcb, SVC_KEY_ALPN, SVC_KEY_IPV4HINT, SVC_KEY_IPV6HINT, SVC_KEY_MANDATORY } from '../../src/dns/svcb.ts';
import { WireError } from '../../src/dns/wire.ts';
import { fixture, hex } from './fixtures.ts';

// RFC 9460 Appendix D test vectors (wire format as printed there).
const RFC9460_D2_IPV6HINT =
  '0001' + '00' + '0006' + '0020' + '20010db8000000000000000000000001' + '20010db8000000000000000000530001';
const RFC9460_D2_MANDATORY =
  '0010' +
  '03666f6f076578616d706c65036f726700' +
  '0000' + '0004' + '00010004' +
  '0001' + '0009' + '026832' + '0568332d3139' +
  '0004' + '0004' + 'c0000201';
const RFC9460_D1_ALIAS = '0000' + '03666f6f076578616d706c6503636f6d00';

describe('dns/svcb', () => {
  test('reads RFC 9460 D.2 ipv6hint vector when two addresses are given', () => {
    const b = hex(RFC9460_D2_IPV6HINT);
    expect(parseSvcb(b, 0, b.length)).toEqual({
      priority: 1,
      target: '',
      keys: [SVC_KEY_IPV6HINT],
      ipv4hint: [],
      ipv6hint: ['2001:db8::1', '2001:db8::53:1'],
    });
  });

  test('reads RFC 9460 D.2 mandatory/alpn/ipv4hint vector when keys are sorted', () => {
    const b = hex(RFC9460_D2_MANDATORY);
    expect(parseSvcb(b, 0, b.length)).toEqual({
      priority: 16,
      target: 'foo.example.org',
      keys: [SVC_KEY_MANDATORY, SVC_KEY_ALPN, SVC_KEY_IPV4HINT],
      ipv4hint: ['192.0.2.1'],
      ipv6hint: [],
    });
  });

  test('reads RFC 9460 D.1 AliasMode when there are no params', () => {
    const b = hex(RFC9460_D1_ALIAS);
    expect(parseSvcb(b, 0, b.length)).toMatchObject({ priority: 0, target: 'foo.example.com', keys: [] });
  });

  test('encodes the RFC vectors byte for byte when given the same params', () => {
    const v6 = hex('20010db8000000000000000000000001' + '20010db8000000000000000000530001');
    expect(Buffer.from(encodeSvcb(1, '.', [{ key: 6, value: v6 }])).toString('hex')).toBe(RFC9460_D2_IPV6HINT);
    const enc = encodeSvcb(16, 'foo.example.org.', [
      { key: 0, value: hex('00010004') },
      { key: 1, value: hex('026832' + '0568332d3139') },
      { key: 4, value: hex('c0000201') },
    ]);
    expect(Buffer.from(enc).toString('hex')).toBe(RFC9460_D2_MANDATORY);
  });

  test('round-trips when decoded at an offset inside a larger buffer', () => {
    const rd = encodeSvcb(2, 'svc.example', [{ key: 4, value: hex('c0000214c0000215') }]);
    const big = new Uint8Array(rd.length + 7);
    big.set(rd, 5);
    const parsed = parseSvcb(big, 5, rd.length);
    expect(parsed.ipv4hint).toEqual(['192.0.2.20', '192.0.2.21']);
    expect(encodeSvcb(parsed.priority, parsed.target, [{ key: 4, value: hex('c0000214c0000215') }])).toEqual(rd);
  });

  test('reads the hints of knot HTTPS answer when captured from the test zone', () => {
    const { answer } = fixture('svc-https');
    // The one answer record starts after header (12) + question (svc.test: 10 + 4).
    const rdOff = 12 + 14 + 2 + 10; // owner pointer, type/class/ttl/rdlen
    const rdLen = (answer[rdOff - 2]! << 8) | answer[rdOff - 1]!;
    const svc = parseSvcb(answer, rdOff, rdLen);
    expect(svc.ipv4hint).toEqual(['192.0.2.20', '192.0.2.21']);
    expect(svc.ipv6hint).toEqual(['2001:db8::20']);
  });

  test.each([
    ['rdata shorter than priority + root', '0001'],
    ['a target past the rdata', '0001' + '05616263'],
    ['a compressed target', '0001' + 'c00c'],
    ['keys out of order', '0001' + '00' + '00040004c0000201' + '00010003026832'],
    ['a repeated key', '0001' + '00' + '00040004c0000201' + '00040004c0000202'],
    ['an ipv4hint that is not whole addresses', '0001' + '00' + '00040005c000020101'],
    ['an empty ipv4hint', '0001' + '00' + '00040000'],
    ['an ipv6hint of 15 octets', '0001' + '00' + '0006000f' + '20'.repeat(15)],
    ['a param value past the rdata', '0001' + '00' + '00040008c0000201'],
    ['a param header cut short', '0001' + '00' + '0004'],
  ])('rejects %s', (_what, h) => {
    const b = hex(h);
    expect(() => parseSvcb(b, 0, b.length)).toThrow(WireError);
  });

  test('rejects a length that runs past the buffer when the rdata claims more', () => {
    const b = hex(RFC9460_D2_IPV6HINT);
    expect(() => parseSvcb(b, 0, b.length + 1)).toThrow(WireError);
  });
});
