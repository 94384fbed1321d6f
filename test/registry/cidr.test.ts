import { describe, expect, test } from 'bun:test';
import { ipv6Text } from '../../src/dns/ip-text.ts';
import { canonicalIp, expandCidr, formatV6 } from '../../src/registry/cidr.ts';

describe('registry/cidr', () => {
  test.each([
    ['192.0.2.1', '192.0.2.1'],
    ['2001:DB8:0:0:0:0:0:1', '2001:db8::1'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
    ['2001:0db8:0000:0000:0000:0000:0002:0001', '2001:db8::2:1'],
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'],
    ['::', '::'],
    ['::1', '::1'],
    ['::ffff:192.0.2.1', '::ffff:c000:201'], // no mixed notation, like src/dns/ip-text.ts
    ['0:0:0:0:0:ffff:c000:201', '::ffff:c000:201'],
    ['64:ff9b::192.0.2.33', '64:ff9b::c000:221'],
    ['fe80:0:0:0:1:0:0:0', 'fe80::1:0:0:0'], // tie: the first run is compressed
    ['1:0:0:2:0:0:0:3', '1:0:0:2::3'],
  ])('canonical form of %s is %s', (input, want) => {
    expect(canonicalIp(input)).toBe(want);
  });

  test.each(['256.1.1.1', '1.2.3', '1::2::3', '12345::', 'example.com', '1:2:3:4:5:6:7:8:9'])(
    'canonicalIp returns undefined when given %s',
    (input) => {
      expect(canonicalIp(input)).toBeUndefined();
    },
  );

  test.each([
    ['192.0.2.7', ['192.0.2.7']],
    ['192.0.2.7/32', ['192.0.2.7']],
    ['192.0.2.5/30', ['192.0.2.4', '192.0.2.5', '192.0.2.6', '192.0.2.7']],
    ['2001:db8::/126', ['2001:db8::', '2001:db8::1', '2001:db8::2', '2001:db8::3']],
    ['2001:db8::ffff:fffe/127', ['2001:db8::ffff:fffe', '2001:db8::ffff:ffff']],
  ])('expandCidr(%s) lists every host', (cidr, want) => {
    expect(expandCidr(cidr)).toEqual(want);
  });

  test('a /22 has 1024 addresses when expanded', () => {
    expect(expandCidr('10.1.0.0/22')).toHaveLength(1024);
  });

  test('a /24 has 256 addresses when expanded', () => {
    const all = expandCidr('10.1.2.0/24');
    expect(all).toHaveLength(256);
    expect(all[255]).toBe('10.1.2.255');
  });

  test.each([
    ['10.0.0.0/16', 'covers 65536 addresses'],
    ['10.0.0.0/21', 'covers 2048 addresses'],
    ['2001:db8::/64', 'covers'],
    ['10.0.0.0/33', 'prefix length must be 0..32'],
    ['nonsense/8', 'not an address or CIDR'],
    ['10.0.0.0/8/8', 'not an address or CIDR'],
  ])('expandCidr(%s) throws when the entry is unusable', (cidr, msg) => {
    expect(() => expandCidr(cidr)).toThrow(msg);
  });

  test('IPv6 text agrees with the proxy (src/dns/ip-text.ts) when both format the same address', () => {
    // Deterministic pseudo-random groups, biased to zeros so runs and ties are common.
    let seed = 12345;
    const next = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31);
    for (let n = 0; n < 2000; n++) {
      const g = Array.from({ length: 8 }, () => (next() % 3 === 0 ? next() & 0xffff : next() % 4 === 0 ? 0xffff : 0));
      const bytes = new Uint8Array(16);
      g.forEach((x, i) => {
        bytes[2 * i] = x >> 8;
        bytes[2 * i + 1] = x & 255;
      });
      expect(formatV6(g)).toBe(ipv6Text(bytes, 0));
      expect(canonicalIp(ipv6Text(bytes, 0))).toBe(ipv6Text(bytes, 0));
    }
  });
});
