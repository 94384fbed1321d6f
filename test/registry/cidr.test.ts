import { describe, expect, test } from 'bun:test';
import { expandCidr } from '../../src/registry/cidr.ts';

describe('registry/cidr', () => {
  test.each([
    ['192.0.2.7', ['192.0.2.7']],
    ['192.0.2.7/32', ['192.0.2.7']],
    ['192.0.2.5/30', ['192.0.2.4', '192.0.2.5', '192.0.2.6', '192.0.2.7']],
    ['2001:db8::/126', ['2001:db8::', '2001:db8::1', '2001:db8::2', '2001:db8::3']],
    ['2001:db8::ffff:fffe/127', ['2001:db8::ffff:fffe', '2001:db8::ffff:ffff']],
    ['2001:DB8:0:0:0:0:0:0/127', ['2001:db8::', '2001:db8::1']],
    ['::ffff:192.0.2.0/127', ['::ffff:c000:200', '::ffff:c000:201']],
    ['2001:db8::1:0:0:0/126', ['2001:db8:0:0:1::', '2001:db8::1:0:0:1', '2001:db8::1:0:0:2', '2001:db8::1:0:0:3']],
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
    ['fe80::1%eth0', 'not an address or CIDR'],
  ])('expandCidr(%s) throws when the entry is unusable', (cidr, msg) => {
    expect(() => expandCidr(cidr)).toThrow(msg);
  });
});
