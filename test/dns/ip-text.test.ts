import { describe, expect, test } from 'bun:test';
import { ipv4Text, ipv6Text } from '../../src/dns/ip-text.ts';
import { WireError } from '../../src/dns/wire.ts';
import { hex } from './fixtures.ts';

describe('dns/ip-text', () => {
  test.each([
    ['20010db8000000000000000000000001', '2001:db8::1'],
    ['00000000000000000000000000000000', '::'],
    ['00000000000000000000000000000001', '::1'],
    ['20010db8000000010000000000000001', '2001:db8:0:1::1'], // the longer run wins
    ['20010db8000000000001000000000001', '2001:db8::1:0:0:1'], // first run on a tie
    ['20010db8000100010001000100010001', '2001:db8:1:1:1:1:1:1'],
    ['20010db8000000010001000100010001', '2001:db8:0:1:1:1:1:1'], // a single zero group is not compressed
    ['fe800000000000000000000000abcdef', 'fe80::ab:cdef'],
    ['00000000000000000000ffffc0000201', '::ffff:c000:201'],
    ['2001'+'0db8'+'0000'.repeat(5)+'abcd', '2001:db8::abcd'],
  ])('formats %s as RFC 5952 %s', (h, text) => {
    expect(ipv6Text(hex(h), 0)).toBe(text);
  });

  test('formats IPv4 as a dotted quad when at an offset', () => {
    expect(ipv4Text(hex('00c0000201'), 1)).toBe('192.0.2.1');
  });

  test('rejects addresses cut short', () => {
    expect(() => ipv4Text(hex('c00002'), 0)).toThrow(WireError);
    expect(() => ipv6Text(hex('20010db8'), 0)).toThrow(WireError);
  });
});
