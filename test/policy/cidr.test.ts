import { describe, expect, test } from 'bun:test';
import { formatIP, parseCidr, parseIP, PrefixTable } from '../../src/policy/cidr.ts';

describe('policy/cidr', () => {
  test.each([
    ['1.2.3.4', '1.2.3.4'],
    ['2001:db8::1', '2001:db8::1'],
    ['2001:DB8:0:0:0:0:0:1', '2001:db8::1'],
    ['::', '::'],
    ['::ffff:1.2.3.4', '1.2.3.4'],
    ['fe80::1%eth0', 'fe80::1'],
  ])('parses %p to %p when the address is valid', (text, canon) => {
    expect(formatIP(parseIP(text)!)).toBe(canon);
  });

  test.each(['1.2.3', '1.2.3.256', '01.2.3.4', '1::2::3', '1:2:3:4:5:6:7:8:9', 'g::1', '', 'example.com'])(
    'rejects %p when it is not an address',
    (text) => expect(parseIP(text)).toBeNull(),
  );

  test.each([
    ['10.0.0.0/8', '10.0.0.0/8'],
    ['1.2.3.4', '1.2.3.4/32'],
    ['2001:db8::/32', '2001:db8::/32'],
  ])('parses CIDR %p as %p', (text, canon) => expect(parseCidr(text).text).toBe(canon));

  test.each([
    ['10.0.0.1/8', /host bits set; did you mean 10.0.0.0\/8/],
    ['10.0.0.0/33', /0..32/],
    ['nope/8', /not an IPv4 or IPv6/],
  ])('refuses CIDR %p when it is wrong', (text, msg) => expect(() => parseCidr(text)).toThrow(msg));

  test('picks the longest prefix when prefixes nest, for IPv4 and IPv6', () => {
    const t = new PrefixTable<string>();
    t.add(parseCidr('10.0.0.0/8'), 'wide');
    t.add(parseCidr('10.1.0.0/16'), 'narrow');
    t.add(parseCidr('0.0.0.0/0'), 'any4');
    t.add(parseCidr('2001:db8::/32'), 'v6');
    t.add(parseCidr('2001:db8:1::/48'), 'v6narrow');
    expect(t.lookup('10.1.2.3')).toBe('narrow');
    expect(t.lookup('10.2.2.3')).toBe('wide');
    expect(t.lookup('192.0.2.1')).toBe('any4');
    expect(t.lookup('::ffff:10.1.0.9')).toBe('narrow');
    expect(t.lookup('2001:db8:1::5')).toBe('v6narrow');
    expect(t.lookup('2001:db8:2::5')).toBe('v6');
    expect(t.lookup('2001:db9::1')).toBeUndefined();
    expect(t.lookup('garbage')).toBeUndefined();
  });
});
