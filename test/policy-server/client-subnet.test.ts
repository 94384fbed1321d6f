import { describe, expect, test } from 'bun:test';
import { decodeClientSubnet, encodeClientSubnet, namedClient } from '../../src/policy-server/client-subnet.ts';

describe('policy-server/client-subnet', () => {
  test.each<[string, number[], { family: 4 | 6; sourcePrefix: number; address: string }]>([
    ['an IPv4 /32', [0, 1, 32, 0, 127, 0, 0, 2], { family: 4, sourcePrefix: 32, address: '127.0.0.2' }],
    ['an IPv4 /24', [0, 1, 24, 0, 10, 1, 2], { family: 4, sourcePrefix: 24, address: '10.1.2.0' }],
    ['an IPv4 /0', [0, 1, 0, 0], { family: 4, sourcePrefix: 0, address: '0.0.0.0' }],
    ['an IPv6 /56', [0, 2, 56, 0, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0x12], { family: 6, sourcePrefix: 56, address: '2001:db8:0:1200::' }],
  ])('decodes the golden bytes of %s', (_n, bytes, want) => {
    expect(decodeClientSubnet(Uint8Array.from(bytes))).toEqual(want);
  });

  test('encodes the golden bytes when given an IPv4 /24', () => {
    expect([...encodeClientSubnet(Uint8Array.from([10, 1, 2, 3]), 24)]).toEqual([0, 1, 24, 0, 10, 1, 2]);
  });

  test.each<[string, number[]]>([
    ['too short', [0, 1, 32]],
    ['an unknown family', [0, 3, 8, 0, 1]],
    ['a prefix past the address', [0, 1, 33, 0, 1, 2, 3, 4, 5]],
    ['too few address octets', [0, 1, 32, 0, 127, 0, 0]],
    ['too many address octets', [0, 1, 8, 0, 127, 0]],
    ['bits past the prefix', [0, 1, 23, 0, 10, 1, 3]],
  ])('refuses %s when decoding', (_n, bytes) => {
    expect(() => decodeClientSubnet(Uint8Array.from(bytes))).toThrow(/^policy-server: client subnet option:/);
  });

  // What a trusted forwarder's option says about who asked (issue 11 item 8).
  test.each<[string, number[], ReturnType<typeof namedClient>]>([
    ['an IPv4 /32 (dnsmasq --add-subnet=32)', [0, 1, 32, 0, 192, 168, 1, 7], { kind: 'client', address: '192.168.1.7' }],
    ['an IPv6 /128 (dnsmasq --add-subnet=…,128)', [0, 2, 128, 0, 0x20, 0x01, 0x0d, 0xb8, ...new Array<number>(11).fill(0), 7], { kind: 'client', address: '2001:db8::7' }],
    ['an IPv4 /24', [0, 1, 24, 0, 192, 168, 1], { kind: 'partial' }],
    ['an IPv6 /56', [0, 2, 56, 0, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0x12], { kind: 'partial' }],
    ['an IPv4 /0', [0, 1, 0, 0], { kind: 'partial' }],
    ['a /32 with a scope set', [0, 1, 32, 24, 192, 168, 1, 7], { kind: 'malformed' }],
    ['a /32 short of an octet', [0, 1, 32, 0, 192, 168, 1], { kind: 'malformed' }],
    ['an unknown family', [0, 3, 32, 0, 192, 168, 1, 7], { kind: 'malformed' }],
  ])('names %s as %p', (_n, bytes, want) => {
    expect(namedClient(Uint8Array.from(bytes))).toEqual(want);
  });
});
