/**
 * Client address text → value (the client's table, figure 6), on the per-query path.
 *
 * `PrefixTable.lookup` parses the address text and probes every configured prefix length:
 * 0.3–0.7 µs per query with a handful of client CIDRs (IPv6 text is the slow part; it was
 * 1.6–4.8 µs before the table's keys were made numeric), and about 100 ns even with none,
 * where the answer is known without looking. Clients are few and ask many times, so the answer is
 * memoised per address text. Sources are spoofable over UDP, so the memo is bounded: when it
 * holds `cap` addresses it is emptied and refills with whoever asks next (a flood of
 * spoofed sources costs the uncached lookup per query, never memory). Texts longer than any
 * address with a zone id (`MAX_KEY`) are not kept.
 *
 * The memo never changes an answer: a hit returns what `PrefixTable.lookup` returned for the
 * same text, and `add` empties it. It lives inside the `Policy` built per config, so a reload
 * (which swaps the whole Policy) starts with an empty one.
 */
import { type Cidr, PrefixTable } from './cidr.ts';

/** Distinct client addresses remembered before the memo starts over. */
export const CLIENT_MEMO_CAP = 4096;
/** `ffff:…:255.255.255.255` is 45 characters, an interface name (zone id) at most 15 more. */
const MAX_KEY = 64;
/** Marks a remembered miss (no prefix covers the address, or the text is not an address). */
const MISS: unique symbol = Symbol('miss');

export class ClientLookup<V> {
  private readonly prefixes = new PrefixTable<V>();
  private readonly memo = new Map<string, V | typeof MISS>();

  constructor(private readonly cap = CLIENT_MEMO_CAP) {
    if (!(cap >= 1)) throw new RangeError(`policy: client memo cap must be at least 1, not ${cap}`);
  }

  /** As `PrefixTable.add` (false: the prefix was already present; the first one stays). */
  add(cidr: Cidr, value: V): boolean {
    this.memo.clear();
    return this.prefixes.add(cidr, value);
  }

  /** Exactly `PrefixTable.lookup(ip)` for the prefixes added so far. */
  lookup(ip: string): V | undefined {
    if (this.prefixes.size === 0) return undefined;
    const known = this.memo.get(ip);
    if (known !== undefined) return known === MISS ? undefined : known;
    const found = this.prefixes.lookup(ip);
    if (ip.length <= MAX_KEY) {
      if (this.memo.size >= this.cap) this.memo.clear();
      this.memo.set(ip, found === undefined ? MISS : found);
    }
    return found;
  }

  /** Addresses remembered now (never more than the cap). */
  get memoSize(): number {
    return this.memo.size;
  }
}
