/**
 * Random client CIDR sets and client address texts for the client-lookup tests, and the
 * obviously-correct reference they are checked against: a linear scan for the longest
 * covering prefix (the first one added wins a tie), on `parseIP`'s bytes.
 */
import { type Cidr, formatIP, parseCidr, parseIP } from '../../src/policy/cidr.ts';

/** A small seeded PRNG (mulberry32), so a failure names a seed that reproduces it. */
export function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 0x100000000;
  };
}

export interface Gen {
  rand: () => number;
  int(n: number): number;
  pick<T>(xs: readonly T[]): T;
}

export function gen(seed: number): Gen {
  const rand = prng(seed);
  const int = (n: number) => Math.floor(rand() * n);
  return { rand, int, pick: (xs) => xs[int(xs.length)]! };
}

function randomBytes(g: Gen, n: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = g.int(256);
  // a few fixed shapes so that random CIDRs meet the same neighbourhoods
  if (n === 4 && g.rand() < 0.5) b[0] = g.pick([10, 192, 172, 0, 255]);
  if (n === 16 && g.rand() < 0.5) [b[0], b[1], b[2], b[3]] = g.pick([[0x20, 0x01, 0x0d, 0xb8], [0xfd, 0, 0, 0], [0xfe, 0x80, 0, 0], [0, 0, 0, 0]]);
  return b;
}

function mask(b: Uint8Array, prefix: number): Uint8Array {
  const out = new Uint8Array(b.length);
  for (let i = 0; i < b.length; i++) {
    const bits = Math.max(0, Math.min(8, prefix - i * 8));
    out[i] = bits === 0 ? 0 : b[i]! & (0xff << (8 - bits));
  }
  return out;
}

/** Bytes inside `c`: its network bytes with random host bits. */
function inside(g: Gen, c: Cidr): Uint8Array {
  const r = randomBytes(g, c.bytes.length);
  const out = new Uint8Array(c.bytes.length);
  for (let i = 0; i < out.length; i++) {
    const bits = Math.max(0, Math.min(8, c.prefix - i * 8));
    const keep = bits === 0 ? 0 : (0xff << (8 - bits)) & 0xff;
    out[i] = (c.bytes[i]! & keep) | (r[i]! & ~keep & 0xff);
  }
  return out;
}

/** CIDR texts as an operator writes them: IPv4, IPv6, IPv4-mapped IPv6, nested, duplicated. */
export function randomCidrTexts(g: Gen, n: number): string[] {
  const out: string[] = [];
  const made: Cidr[] = [];
  for (let i = 0; i < n; i++) {
    let c: Cidr;
    const r = g.rand();
    if (made.length > 0 && r < 0.35) {
      // nested in (or equal to) an earlier one
      const outer = g.pick(made);
      const max = outer.bytes.length * 8;
      const prefix = Math.min(max, outer.prefix + g.int(max - outer.prefix + 1));
      c = parseCidr(`${formatIP(mask(inside(g, outer), prefix))}/${prefix}`);
    } else {
      const v4 = g.rand() < 0.55;
      const prefix = v4 ? g.pick([0, 1, 7, 8, 12, 16, 20, 24, 25, 31, 32, g.int(33)]) : g.pick([0, 3, 8, 16, 32, 48, 56, 64, 96, 127, 128, g.int(129)]);
      c = parseCidr(`${formatIP(mask(randomBytes(g, v4 ? 4 : 16), prefix))}/${prefix}`);
    }
    made.push(c);
    // IPv4 ranges are sometimes written IPv4-mapped (::ffff:10.0.0.0/104)
    out.push(c.bytes.length === 4 && g.rand() < 0.2 ? `::ffff:${formatIP(c.bytes)}/${c.prefix + 96}` : c.text);
  }
  return out;
}

function fullV6(b: Uint8Array): string {
  const w: string[] = [];
  for (let i = 0; i < 16; i += 2) w.push(((b[i]! << 8) | b[i + 1]!).toString(16).padStart(g4(i), '0'));
  return w.join(':');
}
const g4 = (i: number) => (i % 4 === 0 ? 4 : 1); // some groups zero-padded, some not

/** One address text: inside a CIDR of the set (usually) or anywhere, in one of the forms sockets and users produce, or not an address at all. */
export function randomAddressText(g: Gen, cidrs: readonly Cidr[]): string {
  const r = g.rand();
  if (r < 0.05) return g.pick(['', 'garbage', '1.2.3', '1.2.3.256', '01.2.3.4', '1::2::3', 'g::1', '::ffff:1.2.3', '10.0.0.1/8', 'x'.repeat(100)]);
  const b = cidrs.length > 0 && r < 0.75 ? inside(g, g.pick(cidrs)) : randomBytes(g, g.rand() < 0.5 ? 4 : 16);
  if (b.length === 4) {
    switch (g.int(5)) {
      case 0:
        return `::ffff:${formatIP(b)}`; // what a dual-stack socket reports
      case 1:
        return `::FFFF:${formatIP(b)}`;
      case 2:
        return `0:0:0:0:0:ffff:${((b[0]! << 8) | b[1]!).toString(16)}:${((b[2]! << 8) | b[3]!).toString(16)}`;
      default:
        return formatIP(b);
    }
  }
  switch (g.int(6)) {
    case 0:
      return fullV6(b);
    case 1:
      return formatIP(b).toUpperCase();
    case 2:
      return `${formatIP(b)}%eth${g.int(3)}`;
    case 3:
      return `${formatIP(b)}%${'z'.repeat(70)}`; // a valid address in a text too long to remember
    default:
      return formatIP(b);
  }
}

/** The reference: longest covering prefix by linear scan; the first of equal prefixes wins. */
export function naiveLookup<V>(entries: ReadonlyArray<readonly [Cidr, V]>, ip: string): V | undefined {
  const b = parseIP(ip);
  if (!b) return undefined;
  let best: V | undefined;
  let bestLen = -1;
  for (const [c, v] of entries) {
    if (c.bytes.length !== b.length || c.prefix <= bestLen) continue;
    const m = mask(b, c.prefix);
    if (m.every((x, i) => x === c.bytes[i])) {
      best = v;
      bestLen = c.prefix;
    }
  }
  return best;
}
