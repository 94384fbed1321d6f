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
export function hashKey(key: string, start = 0, end = key.length): number {
  let h = EMPTY_SUFFIX;
  let lh = FNV_INIT;
  for (let i = end - 1; i >= start - 1; i--) {
    const c = i >= start ? key.charCodeAt(i) : 46;
    if (c === 46) {
      h = extend(h, labelMix(lh));
      lh = FNV_INIT;
    } else {
      lh = Math.imul(lh ^ c, 0x01000193);
    }
  }
  return h >>> 0;
}

/** Ints per slot: 32 bytes, so with the array page-aligned a slot never straddles a cache line. */
const SLOT = 8;
/** Key bytes kept inside the slot; longer keys keep the rest in the pool. */
const INLINE = 16;

/** A HashIndex as plain data (`toData`); the arrays are transferable. */
export interface HashIndexData {
  mask: number;
  slots: Int32Array;
  pool: Uint8Array;
  poolLen: number;
  bloom: Uint32Array;
  bloomShift: number;
  size: number;
}

/**
 * Slots are 8 ints — [hash, rule index + 1 (0 = empty), pool offset, key length | payload << 8,
 * first 16 key bytes] — so a probe, and the check that the key really is the name (not just
 * the hash), usually touch one cache line. Bytes past the 16th live in one ASCII pool
 * (canonical names are ASCII). The 24-bit payload rides along with the index (the policy
 * stores channel and upstream there, so a hit needs no further lookups).
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
  private bloom: Uint32Array;
  private bloomShift: number;
  size = 0;
  /** Payload of the entry the last successful `find` returned. */
  hitPayload = 0;

  constructor(expected = 16) {
    let cap = 16;
    while (cap < expected * 2) cap *= 2;
    this.mask = cap - 1;
    this.slots = new Int32Array(cap * SLOT); // zeroed: every slot empty
    this.pool = new Uint8Array(Math.max(64, expected * 8));
    let bits = 10;
    while (bits < 26 && 1 << bits < expected * 16) bits++;
    this.bloom = new Uint32Array(1 << (bits - 5));
    this.bloomShift = 32 - bits;
  }

  /** The table as data; transfer `buffers` with it (this index must not be used after). */
  toData(): { data: HashIndexData; buffers: ArrayBuffer[] } {
    return {
      data: { mask: this.mask, slots: this.slots, pool: this.pool, poolLen: this.poolLen, bloom: this.bloom, bloomShift: this.bloomShift, size: this.size },
      buffers: [this.slots.buffer, this.pool.buffer, this.bloom.buffer] as ArrayBuffer[],
    };
  }

  static fromData(d: HashIndexData): HashIndex {
    const h = new HashIndex(0);
    h.mask = d.mask;
    h.slots = d.slots;
    h.pool = d.pool;
    h.poolLen = d.poolLen;
    h.bloom = d.bloom;
    h.bloomShift = d.bloomShift;
    h.size = d.size;
    return h;
  }

  private bloomBit(h: number): number {
    return Math.imul(h, 0x9e3779b1) >>> this.bloomShift;
  }

  /**
   * Inserts `key` (ASCII, ≤ 255 bytes) → `index` with a 24-bit payload, keeping the lower
   * index (and its payload) when the key is already present. The key is `key[start, end)`: a
   * rules file's keys are read in place from its text (no string per rule).
   */
  add(key: string, index: number, payload = 0, start = 0, end = key.length): void {
    if ((this.size + 1) * 2 > this.mask + 1) this.grow();
    const h = hashKey(key, start, end) | 0;
    const len = end - start;
    let slot = h & this.mask;
    for (;;) {
      const at = slot * SLOT;
      const v = this.slots[at + 1]! - 1;
      if (v < 0) {
        const b = this.bloomBit(h);
        this.bloom[b >>> 5] = this.bloom[b >>> 5]! | (1 << (b & 31));
        this.slots[at] = h;
        this.slots[at + 1] = index + 1;
        this.slots[at + 3] = len | (payload << 8);
        for (let i = 0; i < Math.min(INLINE, len); i++) {
          const w = at + 4 + (i >> 2);
          this.slots[w] = this.slots[w]! | ((key.charCodeAt(start + i) & 0xff) << ((i & 3) * 8));
        }
        this.slots[at + 2] = len > INLINE ? this.store(key, start, end) : 0;
        this.size++;
        return;
      }
      if (this.slots[at] === h && this.equalsText(at, key, start, end)) {
        if (index < v) {
          this.slots[at + 1] = index + 1;
          this.slots[at + 3] = len | (payload << 8);
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
      const at = slot * SLOT;
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
    const slots = this.slots;
    if ((slots[at + 3]! & 0xff) !== len) return false;
    // the inline part, four bytes at a time (unused bytes are zero on both sides)
    const inline = len < INLINE ? len : INLINE;
    for (let w = 0; w < inline; w += 4) {
      let word = 0;
      for (let i = 0; i < 4 && w + i < inline; i++) word |= name[start + w + i]! << (i * 8);
      if (slots[at + 4 + (w >> 2)] !== word) return false;
    }
    if (len <= INLINE) return true;
    const off = slots[at + 2]!;
    const pool = this.pool;
    for (let i = INLINE; i < len; i++) if (pool[off + i - INLINE] !== name[start + i]) return false;
    return true;
  }

  /** The same comparison for a key being added (`key[start, end)`, a string, not yet bytes). */
  private equalsText(at: number, key: string, start: number, end: number): boolean {
    const len = end - start;
    const slots = this.slots;
    if ((slots[at + 3]! & 0xff) !== len) return false;
    for (let i = 0; i < len; i++) {
      const c = key.charCodeAt(start + i);
      const stored = i < INLINE ? (slots[at + 4 + (i >> 2)]! >>> ((i & 3) * 8)) & 0xff : this.pool[slots[at + 2]! + i - INLINE];
      if (stored !== c) return false;
    }
    return true;
  }

  /** Appends the bytes of `key[start, end)` past the inline part to the pool; returns their offset. */
  private store(key: string, start: number, end: number): number {
    const n = end - start - INLINE;
    if (this.poolLen + n > this.pool.length) {
      const bigger = new Uint8Array(Math.max(this.pool.length * 2, this.poolLen + n));
      bigger.set(this.pool.subarray(0, this.poolLen));
      this.pool = bigger;
    }
    const off = this.poolLen;
    for (let i = 0; i < n; i++) this.pool[off + i] = key.charCodeAt(start + INLINE + i);
    this.poolLen += n;
    return off;
  }

  private grow(): void {
    const old = this.slots;
    const cap = (this.mask + 1) * 2;
    this.mask = cap - 1;
    this.slots = new Int32Array(cap * SLOT);
    for (let at = 0; at < old.length; at += SLOT) {
      if (old[at + 1] === 0) continue;
      let slot = old[at]! & this.mask;
      while (this.slots[slot * SLOT + 1] !== 0) slot = (slot + 1) & this.mask;
      this.slots.set(old.subarray(at, at + SLOT), slot * SLOT);
    }
  }
}
