/**
 * An open-addressing hash table from dotted label sequences ("myfriends.com") to the lowest
 * rule index, in flat typed arrays: no per-entry objects, so 1M entries load fast and a probe
 * touches one or two cache lines. Keys are hashed label-wise from the right with
 * `labelHash`/`extend`, so a matcher scanning a name right to left gets the hash of every
 * suffix (and of every single label) in one pass, without building substrings.
 */

const SEED = 0x2f6b1e3d;

/** Finalises one label's running FNV-1a state. */
export function labelMix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/** Hash of (label + "." + suffix) from the label's hash and the suffix's hash. */
export function extend(suffixHash: number, labelHash: number): number {
  return labelMix((Math.imul(suffixHash, 0x9e3779b1) ^ labelHash) >>> 0);
}

export const FNV_INIT = 0x811c9dc5;
export const EMPTY_SUFFIX = SEED;

/** Hash of a dotted key, computed exactly as a right-to-left name scan computes it. */
export function hashKey(key: string): number {
  let h = EMPTY_SUFFIX;
  let lh = FNV_INIT;
  for (let i = key.length - 1; i >= -1; i--) {
    const c = i >= 0 ? key.charCodeAt(i) : 46;
    if (c === 46) {
      h = extend(h, labelMix(lh));
      lh = FNV_INIT;
    } else {
      lh = Math.imul(lh ^ c, 0x01000193);
    }
  }
  return h >>> 0;
}

/**
 * Slots are 4 ints each — [hash, rule index + 1 (0 = empty), key offset, key length | payload << 8]
 * — so a probe reads one cache line; key bytes live in one ASCII pool (canonical names are
 * ASCII), so verifying a hit is one more read, not a chain of string-object pointers. The
 * 24-bit payload rides along with the index (the policy stores channel and upstream there, so
 * a hit needs no further lookups).
 */
export class HashIndex {
  private mask: number;
  private slots: Int32Array;
  private pool: Uint8Array;
  private poolLen = 0;
  /**
   * A one-hash Bloom filter over the keys, ~16 bits per expected key (6% false positives).
   * It stays cache-resident where the slot array does not, so most probes for absent keys
   * (the common case: a name probes several suffixes, at most one is present) cost an L2/L3
   * read instead of a DRAM miss.
   */
  private readonly bloom: Uint32Array;
  private readonly bloomShift: number;
  size = 0;
  /** Payload of the entry the last successful `find` returned. */
  hitPayload = 0;

  constructor(expected = 16) {
    let cap = 16;
    while (cap < expected * 2) cap *= 2;
    this.mask = cap - 1;
    this.slots = HashIndex.emptySlots(cap);
    this.pool = new Uint8Array(Math.max(64, expected * 16));
    let bits = 10;
    while (bits < 26 && 1 << bits < expected * 16) bits++;
    this.bloom = new Uint32Array(1 << (bits - 5));
    this.bloomShift = 32 - bits;
  }

  private bloomBit(h: number): number {
    return Math.imul(h, 0x9e3779b1) >>> this.bloomShift;
  }

  private static emptySlots(cap: number): Int32Array {
    return new Int32Array(cap * 4); // zeroed: every slot empty
  }

  /**
   * Inserts `key` (ASCII, ≤ 255 bytes) → `index` with a 24-bit payload, keeping the lower
   * index (and its payload) when the key is already present.
   */
  add(key: string, index: number, payload = 0): void {
    if ((this.size + 1) * 2 > this.mask + 1) this.grow();
    const h = hashKey(key) | 0;
    let slot = h & this.mask;
    for (;;) {
      const at = slot * 4;
      const v = this.slots[at + 1]! - 1;
      if (v < 0) {
        const b = this.bloomBit(h);
        this.bloom[b >>> 5] = this.bloom[b >>> 5]! | (1 << (b & 31));
        this.slots[at] = h;
        this.slots[at + 1] = index + 1;
        this.slots[at + 2] = this.store(key);
        this.slots[at + 3] = key.length | (payload << 8);
        this.size++;
        return;
      }
      if (this.slots[at] === h && this.equalsText(at, key)) {
        if (index < v) {
          this.slots[at + 1] = index + 1;
          this.slots[at + 3] = key.length | (payload << 8);
        }
        return;
      }
      slot = (slot + 1) & this.mask;
    }
  }

  /** Rule index stored for the ASCII bytes `name[start, end)` (whose hashKey is `h`), or -1. */
  find(h: number, name: Uint8Array, start: number, end: number): number {
    h |= 0;
    const b = this.bloomBit(h);
    if ((this.bloom[b >>> 5]! & (1 << (b & 31))) === 0) return -1;
    let slot = h & this.mask;
    for (;;) {
      const at = slot * 4;
      const v = this.slots[at + 1]! - 1;
      if (v < 0) return -1;
      if (this.slots[at] === h && this.equals(at, name, start, end)) {
        this.hitPayload = this.slots[at + 3]! >>> 8;
        return v;
      }
      slot = (slot + 1) & this.mask;
    }
  }

  private equals(at: number, name: Uint8Array, start: number, end: number): boolean {
    const len = end - start;
    if ((this.slots[at + 3]! & 0xff) !== len) return false;
    const off = this.slots[at + 2]!;
    const pool = this.pool;
    for (let i = 0; i < len; i++) if (pool[off + i] !== name[start + i]) return false;
    return true;
  }

  private equalsText(at: number, key: string): boolean {
    if ((this.slots[at + 3]! & 0xff) !== key.length) return false;
    const off = this.slots[at + 2]!;
    for (let i = 0; i < key.length; i++) if (this.pool[off + i] !== key.charCodeAt(i)) return false;
    return true;
  }

  private store(key: string): number {
    if (this.poolLen + key.length > this.pool.length) {
      const bigger = new Uint8Array(Math.max(this.pool.length * 2, this.poolLen + key.length));
      bigger.set(this.pool.subarray(0, this.poolLen));
      this.pool = bigger;
    }
    const off = this.poolLen;
    for (let i = 0; i < key.length; i++) this.pool[off + i] = key.charCodeAt(i);
    this.poolLen += key.length;
    return off;
  }

  private grow(): void {
    const old = this.slots;
    const cap = (this.mask + 1) * 2;
    this.mask = cap - 1;
    this.slots = HashIndex.emptySlots(cap);
    for (let at = 0; at < old.length; at += 4) {
      if (old[at + 1] === 0) continue;
      let slot = old[at]! & this.mask;
      while (this.slots[slot * 4 + 1] !== 0) slot = (slot + 1) & this.mask;
      this.slots.set(old.subarray(at, at + 4), slot * 4);
    }
  }
}
