/**
 * SIEVE eviction (Zhang et al., "SIEVE is Simpler than LRU", NSDI '24): a FIFO queue of
 * entries, each with a `visited` bit, and a hand that walks from the oldest entry towards the
 * newest. A hit only sets the bit — no list surgery, unlike LRU's move-to-front. To evict,
 * the hand clears the bit of every visited entry it passes and takes the first unvisited one;
 * new entries go in at the newest end. On web and DNS-like (Zipf) workloads it keeps as many
 * or more hits than LRU at equal size.
 *
 * The list is intrusive: the cache's entries carry the links, so it allocates nothing.
 */
export interface SieveNode {
  /** Towards the newest end (null: this is the newest). */
  newer: SieveNode | null;
  /** Towards the oldest end (null: this is the oldest). */
  older: SieveNode | null;
  visited: boolean;
}

export class Sieve<N extends SieveNode> {
  private newest: N | null = null;
  private oldest: N | null = null;
  /** The next entry the hand looks at (null: start again from the oldest). */
  private hand: N | null = null;
  size = 0;

  /** Adds `n` at the newest end, unvisited. */
  insert(n: N): void {
    n.visited = false;
    n.older = this.newest;
    n.newer = null;
    if (this.newest) this.newest.newer = n;
    else this.oldest = n;
    this.newest = n;
    this.size++;
  }

  remove(n: N): void {
    if (this.hand === n) this.hand = n.newer as N | null;
    if (n.newer) n.newer.older = n.older;
    else this.newest = n.older as N | null;
    if (n.older) n.older.newer = n.newer;
    else this.oldest = n.newer as N | null;
    n.newer = n.older = null;
    this.size--;
  }

  /**
   * The entry to evict, not yet removed (the caller removes it): the first one from the hand on
   * that is unvisited, or that `dead` says is worth nothing any more (expired). Visited entries
   * passed on the way lose their bit. Null only when the list is empty.
   */
  victim(dead: (n: N) => boolean): N | null {
    let o = this.hand ?? this.oldest;
    while (o) {
      if (!o.visited || dead(o)) {
        this.hand = o;
        return o;
      }
      o.visited = false;
      o = (o.newer as N | null) ?? this.oldest;
    }
    return null;
  }

  /** Every entry, oldest first (for clear and tests; removing the current one is allowed). */
  *entries(): IterableIterator<N> {
    for (let o = this.oldest; o; ) {
      const next = o.newer as N | null;
      yield o;
      o = next;
    }
  }

  clear(): void {
    this.newest = this.oldest = this.hand = null;
    this.size = 0;
  }
}
