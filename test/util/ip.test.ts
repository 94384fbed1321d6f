import { describe, expect, test } from 'bun:test';
import { isIP as nodeIsIP } from 'node:net';
import { canonicalIp, formatIP, formatIPv4At, formatIPv6At, ipv4Number, isIP, parseIP, parseIPv4, parseIPv6 } from '../../src/util/ip.ts';
import { Rng } from '../dns/mutate.ts';

/** The WHATWG URL serializer's text for an IPv6 literal (RFC 5952, like ours): the oracle. */
function urlText(v6: string): string {
  return new URL(`http://[${v6}]/`).hostname.slice(1, -1);
}

/** Random groups, mostly zero so runs, ties and single zero groups are common. */
function randomV6(rng: Rng): Uint8Array {
  const b = new Uint8Array(16);
  for (let g = 0; g < 8; g++) {
    const r = rng.int(6);
    const w = r < 3 ? 0 : r === 3 ? 0xffff : r === 4 ? rng.int(16) : rng.int(0x10000);
    b[2 * g] = w >> 8;
    b[2 * g + 1] = w & 0xff;
  }
  return b;
}

/** The address spelled the long way: every group, random case, random leading zeros, sometimes an IPv4 tail. */
function longSpelling(b: Uint8Array, rng: Rng): string {
  const groups: string[] = [];
  for (let g = 0; g < 8; g++) {
    let h = ((b[2 * g]! << 8) | b[2 * g + 1]!).toString(16);
    h = '0'.repeat(rng.int(5 - h.length)) + h;
    groups.push(rng.int(2) ? h.toUpperCase() : h);
  }
  if (rng.int(4) === 0) return `${groups.slice(0, 6).join(':')}:${b[12]}.${b[13]}.${b[14]}.${b[15]}`;
  return groups.join(':');
}

describe('util/ip', () => {
  test.each([
    ['2001:db8::1', '2001:db8::1'],
    ['2001:DB8:0:0:0:0:0:1', '2001:db8::1'],
    ['2001:0db8:0000:0000:0000:0000:0002:0001', '2001:db8::2:1'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'], // tie: the first run
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'], // one zero group stays
    ['2001:db8:0:0:1:0:0:0', '2001:db8:0:0:1::'], // the longer run wins
    ['0:0:0:0:0:0:0:0', '::'],
    ['0:0:0:0:0:0:0:1', '::1'],
    ['1:0:0:0:0:0:0:0', '1::'],
    ['::ffff:192.0.2.1', '::ffff:c000:201'], // no mixed notation
    ['64:ff9b::192.0.2.33', '64:ff9b::c000:221'],
    ['fe80::1%eth0', 'fe80::1'],
  ])('formats %s as %s when parsed as IPv6 (RFC 5952)', (input, want) => {
    expect(formatIP(parseIPv6(input)!)).toBe(want);
  });

  test.each([
    ['192.0.2.1', '192.0.2.1'],
    ['::ffff:192.0.2.1', '192.0.2.1'],
    ['2001:DB8::1', '2001:db8::1'],
  ])('parseIP folds %s to %s when an IPv4-mapped address is read', (input, want) => {
    expect(formatIP(parseIP(input)!)).toBe(want);
  });

  test.each([
    ['2001:DB8::1', '2001:db8::1'],
    ['::FFFF:192.0.2.1', '::ffff:c000:201'],
    ['192.0.2.1', '192.0.2.1'],
  ])('canonicalIp keeps the family of %s and writes %s', (input, want) => {
    expect(canonicalIp(input)).toBe(want);
  });

  test.each(['256.1.1.1', '1.2.3', '01.2.3.4', '1::2::3', '12345::', 'example.com', '1:2:3:4:5:6:7:8:9', '1.2.3.4::', '1:2:3:4:5:6:7:1.2.3.4', 'fe80::1%eth0', ''])(
    'canonicalIp returns undefined when given %p',
    (input) => {
      expect(canonicalIp(input)).toBeUndefined();
    },
  );

  test('formats at an offset without copying when the address sits inside a message', () => {
    const buf = Uint8Array.from([9, 192, 0, 2, 1, 0x20, 0x01, 0x0d, 0xb8, ...new Array(11).fill(0), 1, 7]);
    expect(formatIPv4At(buf, 1)).toBe('192.0.2.1');
    expect(formatIPv6At(buf, 5)).toBe('2001:db8::1');
  });

  test('refuses a byte string that is neither 4 nor 16 long when asked to format it', () => {
    expect(() => formatIP(new Uint8Array(5))).toThrow(RangeError);
  });

  test('writes 20,000 random IPv6 addresses exactly as the URL serializer does when spelled any way', () => {
    const rng = new Rng(5952);
    for (let n = 0; n < 20_000; n++) {
      const b = randomV6(rng);
      const spelled = longSpelling(b, rng);
      const ours = formatIP(b);
      expect(ours).toBe(urlText(spelled));
      expect(parseIPv6(spelled)).toEqual(b);
      expect(parseIPv6(ours)).toEqual(b);
      expect(canonicalIp(spelled)).toBe(ours);
      expect(nodeIsIP(ours)).toBe(6);
    }
  });

  test('writes 5,000 random IPv4 addresses as the URL parser does and reads them back', () => {
    const rng = new Rng(791);
    for (let n = 0; n < 5000; n++) {
      const b = Uint8Array.from([rng.int(256), rng.int(256), rng.int(256), rng.int(256)]);
      const ours = formatIP(b);
      expect(ours).toBe(new URL(`http://${ours}/`).hostname);
      expect(parseIPv4(ours)).toEqual(b);
      expect(nodeIsIP(ours)).toBe(4);
    }
  });

  test.each([
    ['0.0.0.0', 0],
    ['1.2.3.4', 0x01020304],
    ['255.255.255.255', 0xffffffff],
    ['198.18.10.0', 0xc6120a00],
    ['01.2.3.4', -1],
    ['1.2.3.00', -1],
    ['1.2.3.256', -1],
    ['1.2.3.1000', -1],
    ['1.2.3', -1],
    ['1.2.3.4.5', -1],
    ['1..3.4', -1],
    ['.1.2.3', -1],
    ['1.2.3.', -1],
    ['1.2.3.4 ', -1],
    ['::ffff:1.2.3.4', -1],
    ['', -1],
  ])('ipv4Number reads %p as %d', (text, want) => {
    expect(ipv4Number(text)).toBe(want);
  });

  test('ipv4Number accepts exactly what Node accepts as IPv4 when given 30,000 near-miss dotted quads', () => {
    const rng = new Rng(5113);
    const alphabet = '0123456789.:a ';
    const seeds = ['1.2.3.4', '0.0.0.0', '255.255.255.255', '10.100.200.9', '192.0.2.1'];
    let accepted = 0;
    for (let n = 0; n < 30_000; n++) {
      let t = seeds[rng.int(seeds.length)]!;
      for (let k = 1 + rng.int(3); k > 0; k--) {
        const at = rng.int(t.length + 1);
        const c = alphabet[rng.int(alphabet.length)]!;
        const op = rng.int(3);
        t = op === 0 ? t.slice(0, at) + c + t.slice(at) : op === 1 ? t.slice(0, at) + t.slice(at + 1) : t.slice(0, at) + c + t.slice(at + 1);
      }
      const v = ipv4Number(t);
      if ((v >= 0) !== (nodeIsIP(t) === 4)) throw new Error(`${JSON.stringify(t)}: ours ${v}, node ${nodeIsIP(t)}`);
      if (v >= 0) {
        accepted++;
        expect(Uint8Array.from(t.split('.').map(Number))).toEqual(new Uint8Array([v >>> 24, (v >>> 16) & 255, (v >>> 8) & 255, v & 255]));
      }
    }
    expect(accepted).toBeGreaterThan(3000);
  });

  test('accepts exactly what Node accepts when given 30,000 near-miss address texts', () => {
    const rng = new Rng(4291);
    const alphabet = '0123456789abcdefABCDEF:.';
    const seeds = ['::', '::1', '1.2.3.4', '::ffff:1.2.3.4', '2001:db8::1', '1:2:3:4:5:6:7:8', 'fe80::1:2', '255.255.255.255', '1:2:3:4:5:6:1.2.3.4', '0001:02::3'];
    let accepted = 0;
    for (let n = 0; n < 30_000; n++) {
      let t = rng.int(5) === 0 ? longSpelling(randomV6(rng), rng) : seeds[rng.int(seeds.length)]!;
      for (let k = 1 + rng.int(3); k > 0; k--) {
        const at = rng.int(t.length + 1);
        const c = rng.int(8) === 0 ? '::' : alphabet[rng.int(alphabet.length)]!;
        const op = rng.int(3);
        t = op === 0 ? t.slice(0, at) + c + t.slice(at) : op === 1 ? t.slice(0, at) + t.slice(at + 1) : t.slice(0, at) + c + t.slice(at + 1);
      }
      const node = nodeIsIP(t);
      if (isIP(t) !== (node !== 0)) throw new Error(`${JSON.stringify(t)}: ours ${isIP(t)}, node ${node}`);
      expect(canonicalIp(t) !== undefined).toBe(node !== 0);
      if (node !== 0) accepted++;
    }
    // the mutations must leave enough valid texts for the comparison to mean something
    expect(accepted).toBeGreaterThan(3000);
  });
});
