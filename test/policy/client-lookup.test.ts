import { describe, expect, test } from 'bun:test';
import { type Cidr, parseCidr, PrefixTable } from '../../src/policy/cidr.ts';
import { CLIENT_MEMO_CAP, ClientLookup } from '../../src/policy/client-lookup.ts';
import { gen, naiveLookup, randomAddressText, randomCidrTexts } from './client-random.ts';

describe('policy/client-lookup', () => {
  test.each([1, 2, 3, 4, 5, 6, 7, 8])('answers exactly as the uncached lookup when CIDRs and addresses are random (seed %p)', (seed) => {
    const g = gen(seed);
    const mismatches: string[] = [];
    for (let trial = 0; trial < 60; trial++) {
      const cidrs = randomCidrTexts(g, g.int(12)).map((t) => parseCidr(t));
      const entries = cidrs.map((c, i) => [c, `t${i}`] as const);
      const plain = new PrefixTable<string>();
      // a small cap in some trials, so the memo also empties and refills mid-stream
      const cached = new ClientLookup<string>(g.rand() < 0.5 ? 1 + g.int(8) : CLIENT_MEMO_CAP);
      for (const [c, v] of entries) {
        plain.add(c, v);
        cached.add(c, v);
      }
      // a working set of clients asking again and again, as real traffic does
      const clients = Array.from({ length: 40 }, () => randomAddressText(g, cidrs));
      for (let i = 0; i < 400; i++) {
        const ip = g.pick(clients);
        const want = naiveLookup(entries, ip);
        const got = [plain.lookup(ip), cached.lookup(ip)];
        if (got[0] !== want || got[1] !== want) {
          mismatches.push(`seed ${seed} trial ${trial} ${JSON.stringify(ip)} in [${cidrs.map((c) => c.text)}]: want ${want}, table ${got[0]}, cached ${got[1]}`);
        }
      }
    }
    expect(mismatches.slice(0, 5)).toEqual([]);
  });

  test('never holds more than its cap when every query comes from a new source', () => {
    const cap = 64;
    const t = new ClientLookup<string>(cap);
    t.add(parseCidr('10.0.0.0/8'), 'in');
    let most = 0;
    for (let i = 0; i < 20 * cap; i++) {
      const ip = i & 1 ? `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}` : `2001:db8::${i.toString(16)}`;
      expect(t.lookup(ip)).toBe(i & 1 ? 'in' : undefined);
      most = Math.max(most, t.memoSize);
    }
    expect(most).toBe(cap);
    expect(t.memoSize).toBeLessThanOrEqual(cap);
  });

  test('never holds more than the default cap when sources are spoofed', () => {
    const t = new ClientLookup<string>();
    t.add(parseCidr('192.0.2.0/24'), 'lan');
    let most = 0;
    for (let i = 0; i < 3 * CLIENT_MEMO_CAP; i++) {
      t.lookup(`198.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`);
      most = Math.max(most, t.memoSize);
    }
    expect(most).toBe(CLIENT_MEMO_CAP);
  });

  test('forgets what it remembered when a prefix is added', () => {
    const t = new ClientLookup<string>();
    t.add(parseCidr('192.168.0.0/16'), 'home');
    expect(t.lookup('10.1.2.3')).toBeUndefined();
    expect(t.lookup('192.168.1.1')).toBe('home');
    t.add(parseCidr('10.0.0.0/8'), 'ten');
    t.add(parseCidr('192.168.1.0/24'), 'room');
    expect(t.lookup('10.1.2.3')).toBe('ten');
    expect(t.lookup('192.168.1.1')).toBe('room');
  });

  test('remembers nothing when no prefix is configured', () => {
    const t = new ClientLookup<string>();
    for (const ip of ['127.0.0.1', '::1', 'garbage', '']) expect(t.lookup(ip)).toBeUndefined();
    expect(t.memoSize).toBe(0);
  });

  test('answers but does not remember a text longer than any address', () => {
    const t = new ClientLookup<string>();
    t.add(parseCidr('fe80::/10'), 'link');
    const long = `fe80::1%${'z'.repeat(70)}`;
    expect(t.lookup(long)).toBe('link');
    expect(t.lookup('x'.repeat(100))).toBeUndefined();
    expect(t.memoSize).toBe(0);
  });

  test('keeps the first of two equal prefixes, like the table it wraps', () => {
    const t = new ClientLookup<string>();
    const c: Cidr = parseCidr('10.0.0.0/8');
    expect(t.add(c, 'first')).toBe(true);
    expect(t.add(parseCidr('::ffff:10.0.0.0/104'), 'second')).toBe(false);
    expect(t.lookup('::ffff:10.9.9.9')).toBe('first');
  });

  test.each([0, -1, NaN])('refuses a cap of %p', (cap) => {
    expect(() => new ClientLookup<string>(cap)).toThrow(/cap must be at least 1/);
  });
});
