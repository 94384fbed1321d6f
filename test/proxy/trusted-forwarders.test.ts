import { describe, expect, test } from 'bun:test';
import { parseQuery, type ParsedQuery } from '../../src/dns/query.ts';
import { newProxyCounters } from '../../src/proxy/proxy-counters.ts';
import { TrustedForwarders } from '../../src/proxy/trusted-forwarders.ts';
import { clientQuery, withEdnsOptions } from '../fixtures/dns/capture.ts';

function query(ecs?: number[]): ParsedQuery {
  const r = parseQuery(ecs ? withEdnsOptions(clientQuery('a.test', 1), [[8, ecs]]) : clientQuery('a.test', 1));
  if (r.kind !== 'ok') throw new Error('bad query');
  return r.query;
}

const V4_32 = [0, 1, 32, 0, 192, 168, 1, 7];
const V6_128 = [0, 2, 128, 0, 0x20, 0x01, 0x0d, 0xb8, ...new Array<number>(11).fill(0), 7];

describe('proxy/trusted-forwarders', () => {
  test.each([
    ['a trusted forwarder names an IPv4 client', '127.0.0.1', V4_32, '192.168.1.7', 'used'],
    ['a trusted forwarder names an IPv6 client', '::1', V6_128, '2001:db8::7', 'used'],
    ['a trusted forwarder sends a /24', '127.0.0.1', [0, 1, 24, 0, 192, 168, 1], '127.0.0.1', 'partial'],
    ['a trusted forwarder sends a scope', '127.0.0.1', [0, 1, 32, 8, 192, 168, 1, 7], '127.0.0.1', 'malformed'],
    ['a trusted forwarder sends none', '127.0.0.1', undefined, '127.0.0.1', 'absent'],
    ['an untrusted sender names another client', '192.168.1.50', V4_32, '192.168.1.50', 'untrusted'],
  ] as const)('classifies by %s', (_what, sender, ecs, want, counted) => {
    const counters = newProxyCounters();
    const t = new TrustedForwarders(['127.0.0.1/32', '::1'], counters.clientSubnet);
    expect(t.clientOf(query(ecs as number[] | undefined), sender)).toBe(want);
    expect(Object.entries(counters.clientSubnet).filter(([, n]) => n > 0)).toEqual([[counted, 1]]);
  });

  test('counts nothing when an untrusted sender sends no option', () => {
    const counters = newProxyCounters();
    expect(new TrustedForwarders(['127.0.0.1'], counters.clientSubnet).clientOf(query(), '10.0.0.9')).toBe('10.0.0.9');
    expect(Object.values(counters.clientSubnet).every((n) => n === 0)).toBe(true);
  });

  test('refuses a forwarder that is not a CIDR when built', () => {
    expect(() => new TrustedForwarders(['dnsmasq'], newProxyCounters().clientSubnet)).toThrow(/^proxy: trusted forwarder "dnsmasq"/);
  });
});
