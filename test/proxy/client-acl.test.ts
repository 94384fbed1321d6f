/**
 * allow_clients (issue 12): which senders may query — a listed CIDR, IPv4-mapped IPv6 as IPv4,
 * and the default (loopback plus the LAN prefixes) when the setting is empty.
 */
import { describe, expect, test } from 'bun:test';
import { allowedClients, ClientAcl, LOOPBACK } from '../../src/proxy/client-acl.ts';

describe('proxy/client-acl', () => {
  test.each([
    ['127.0.0.1', true],
    ['10.1.2.3', true],
    ['::ffff:10.1.2.3', true],
    ['2001:db8::5', true],
    ['10.2.0.1', false],
    ['2001:db9::5', false],
    ['not an address', false],
  ])('says whether %s may query when loopback, 10.1.0.0/16 and 2001:db8::/32 are allowed', (addr, allowed) => {
    expect(new ClientAcl([...LOOPBACK, '10.1.0.0/16', '2001:db8::/32']).allows(addr)).toBe(allowed);
  });

  test('replaces its list in one go when set, and keeps it when a CIDR does not parse', () => {
    const acl = new ClientAcl(['10.1.0.0/16']);
    acl.set(['192.0.2.0/24']);
    expect([acl.allows('10.1.0.1'), acl.allows('192.0.2.9')]).toEqual([false, true]);
    expect(() => acl.set(['10.0.0.0/33'])).toThrow();
    expect(acl.cidrs).toEqual(['192.0.2.0/24']);
  });

  test('stands for loopback plus the LAN prefixes when empty, and for itself otherwise', () => {
    const lan = () => ['10.1.0.0/24', '2001:db8:1::/64'];
    expect(allowedClients([], lan)).toEqual(['127.0.0.0/8', '::1/128', '10.1.0.0/24', '2001:db8:1::/64']);
    expect(allowedClients(['0.0.0.0/0'], lan)).toEqual(['0.0.0.0/0']);
  });
});
