/**
 * Random mutations of real packets for the property test (CI) and the longer fuzz target
 * (bench/dns-fuzz.ts). Deterministic from a seed, so a failure can be replayed.
 */

/** xorshift32: small, fast, seedable. */
export class Rng {
  constructor(private s: number) {
    if (this.s === 0) this.s = 0x9e3779b9;
  }
  next(): number {
    let x = this.s;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.s = x >>> 0;
    return this.s;
  }
  int(n: number): number {
    return this.next() % n;
  }
}

/** One to four edits: flip bits, set bytes to edge values, truncate, splice, insert pointers, duplicate. */
export function mutate(src: Uint8Array, rng: Rng): Uint8Array {
  let b = src.slice();
  const edits = 1 + rng.int(4);
  for (let e = 0; e < edits; e++) {
    const at = b.length ? rng.int(b.length) : 0;
    switch (rng.int(8)) {
      case 0:
        if (b.length) b[at] = b[at]! ^ (1 << rng.int(8));
        break;
      case 1:
        if (b.length) b[at] = [0, 0xff, 0xc0, 0x3f, 0x40, 0x01, 0x29][rng.int(7)]!;
        break;
      case 2:
        b = b.slice(0, at);
        break;
      case 3: {
        // a compression pointer anywhere (loops, forward references, into the header)
        if (b.length > 1) {
          b[at] = 0xc0 | rng.int(0x40);
          if (at + 1 < b.length) b[at + 1] = rng.int(256);
        }
        break;
      }
      case 4: {
        // absurd counts
        const c = 4 + 2 * rng.int(4);
        if (b.length > c + 1) {
          b[c] = rng.int(256);
          b[c + 1] = rng.int(256);
        }
        break;
      }
      case 5: {
        // duplicate a slice (repeated records, two OPTs)
        const from = rng.int(b.length + 1);
        const len = rng.int(Math.min(40, b.length - from) + 1);
        const out = new Uint8Array(b.length + len);
        out.set(b.subarray(0, at));
        out.set(b.subarray(from, from + len), at);
        out.set(b.subarray(at), at + len);
        b = out;
        break;
      }
      case 6: {
        // random garbage appended
        const n = rng.int(16);
        const out = new Uint8Array(b.length + n);
        out.set(b);
        for (let i = b.length; i < out.length; i++) out[i] = rng.int(256);
        b = out;
        break;
      }
      default:
        if (b.length) b[at] = rng.int(256);
    }
  }
  return b;
}
