/**
 * The intercept-address pool (#6, the patent's third embodiment): one intercept address per
 * (client group, real address), handed to the client in place of the real address.
 *
 * Rules:
 * - the same (group, real) gets the same intercept address while its mapping lives;
 * - one real address per intercept address, always (across groups too: an address is never
 *   shared, so a quoted ICMP error or a long-lived flow can never be mistranslated);
 * - a mapping lives while its hold runs (served TTL, floored by min_hold) OR packets used it
 *   within `idle` (the NAT programs stamp last_seen); only then may its address be reused;
 * - a new address is taken round-robin from a cursor, so a just-freed address is the last
 *   one handed out again; exhaustion throws `pool_exhausted` (the pipeline answers SERVFAIL),
 *   never reuses a live address;
 * - mappings are persisted in the store (pinned eBPF maps); `InterceptPool.open()` rebuilds the
 *   pool from it, so a restart keeps every mapping (no reset of the pool).
 */
import type { Clock } from '../util/clock.ts';
import { DnssealError } from '../util/errors.ts';
import type { Logger } from '../util/log.ts';
import { addrFromBytes, type Family, fromBig, inRange, isMapped, parseAddr, parseRange, type Range, toBig } from './address.ts';
import type { InterceptStore, StoredMapping } from './store.ts';

/** Shown for mappings rebuilt after a restart (names live only in memory). */
export const ADOPTED_NAME = '(adopted)';

export interface InterceptPoolOptions {
  /** Pool CIDRs, either family (config `intercept_pools`). */
  pools: string[];
  store: InterceptStore;
  clock: Clock;
  /** Floor of every hold past the served TTL, ms. */
  minHoldMs: number;
  /** A mapping past its hold is kept until no packet used it for this long, ms. */
  idleMs: number;
  /** Last packet through a mapping (monoMs); default: the store's stamps. */
  lastSeen?: (group: number, intercept: string) => number | undefined;
  log?: Logger;
}

export interface InterceptRow {
  group: number;
  intercept: string;
  real: string;
  names: string[];
  expiresMs: number;
  lastSeenMs?: number;
}

interface Mapping {
  group: number;
  intercept: string;
  real: string;
  family: Family;
  expiresMs: number;
  names: Set<string>;
}

interface Cursor {
  range: number;
  offset: bigint;
}

const rkey = (group: number, real: string) => `${group}/${real}`;

export class InterceptPool {
  private readonly ranges: Record<Family, Range[]> = { 4: [], 6: [] };
  private readonly cursor: Record<Family, Cursor> = { 4: { range: 0, offset: 0n }, 6: { range: 0, offset: 0n } };
  /** (group, real) → mapping */
  private readonly byReal = new Map<string, Mapping>();
  /** intercept text → mapping (addresses are unique across groups) */
  private readonly byIntercept = new Map<string, Mapping>();
  private readonly used: Record<Family, bigint> = { 4: 0n, 6: 0n };
  private readonly lastSeenFn: (group: number, intercept: string) => number | undefined;

  private constructor(private readonly opts: InterceptPoolOptions) {
    for (const cidr of opts.pools) {
      const r = parseRange(cidr);
      this.ranges[r.family].push(r);
    }
    this.lastSeenFn = opts.lastSeen ?? ((g, i) => opts.store.lastSeen(g, i));
  }

  /** Builds the pool and rebuilds every mapping the store holds (a restart keeps them all). */
  static open(opts: InterceptPoolOptions): InterceptPool {
    const pool = new InterceptPool(opts);
    pool.rebuild();
    return pool;
  }

  private rebuild(): void {
    for (const row of this.opts.store.list()) {
      const i = parseAddr(row.intercept);
      const taken = this.byIntercept.get(i.text);
      const dupReal = this.byReal.get(rkey(row.group, row.real));
      if (taken || dupReal) {
        // Cannot happen through this pool; keep the first and drop the contradiction.
        this.opts.log?.warn('intercept: conflicting pinned mapping removed', { group: row.group, intercept: row.intercept, real: row.real });
        this.opts.store.remove(row);
        if (taken) this.opts.store.put(taken);
        if (dupReal) this.opts.store.put(dupReal);
        continue;
      }
      const m: Mapping = { group: row.group, intercept: i.text, real: row.real, family: i.family, expiresMs: row.expiresMs, names: new Set([ADOPTED_NAME]) };
      if (row.half) this.opts.store.put(m); // crash between the two writes: complete it
      this.index(m);
      if (!this.ranges[i.family].some((r) => inRange(r, i))) {
        this.opts.log?.info('intercept: adopted mapping outside the configured pools; kept until it expires and idles', { intercept: i.text });
      }
    }
    // Continue handing out after the highest adopted address, not at the start of the pool.
    for (const m of this.byIntercept.values()) this.advancePast(parseAddr(m.intercept));
    if (this.byIntercept.size) this.opts.log?.info('intercept: mappings adopted from the pinned maps', { count: this.byIntercept.size });
  }

  private index(m: Mapping): void {
    this.byReal.set(rkey(m.group, m.real), m);
    this.byIntercept.set(m.intercept, m);
    this.used[m.family]++;
  }

  private unindex(m: Mapping): void {
    this.byReal.delete(rkey(m.group, m.real));
    this.byIntercept.delete(m.intercept);
    this.used[m.family]--;
  }

  private advancePast(a: ReturnType<typeof parseAddr>): void {
    const rs = this.ranges[a.family];
    const v = toBig(a.bytes);
    for (let ri = 0; ri < rs.length; ri++) {
      const r = rs[ri]!;
      if (v < r.base || v >= r.base + r.size) continue;
      const c = this.cursor[a.family];
      const off = v - r.base + 1n;
      if (ri > c.range || (ri === c.range && off > c.offset)) {
        c.range = off >= r.size ? (ri + 1) % rs.length : ri;
        c.offset = off >= r.size ? 0n : off;
      }
    }
  }

  /** Pool addresses of a family (sum of its ranges). */
  size(family: Family): bigint {
    return this.ranges[family].reduce((n, r) => n + r.size, 0n);
  }

  hasFamily(family: Family): boolean {
    return this.ranges[family].length > 0;
  }

  /**
   * The intercept address for each real address (canonical texts), allocating what is missing.
   * All or nothing: when one cannot be had, the mappings this call created are removed again and
   * the error (`pool_exhausted`, `no_pool`, `map_full`, …) is thrown. Existing mappings have their
   * hold extended (never shortened) and gain `names`.
   */
  allocate(group: number, reals: string[], servedTtlS: number, names: string[] = []): Map<string, string> {
    const now = this.opts.clock.monoMs();
    const expiresMs = now + Math.max(servedTtlS * 1000, this.opts.minHoldMs);
    const out = new Map<string, string>();
    const created: Mapping[] = [];
    try {
      for (const text of reals) {
        const real = parseAddr(text);
        if (out.has(real.text)) continue;
        let m = this.byReal.get(rkey(group, real.text));
        if (m) {
          if (expiresMs > m.expiresMs) {
            this.opts.store.put({ group, intercept: m.intercept, real: m.real, expiresMs });
            m.expiresMs = expiresMs;
          }
        } else {
          if (isMapped(real)) throw new DnssealError('intercept', 'unsupported_address', `IPv4-mapped address ${real.text} cannot be intercepted`);
          const intercept = this.take(real.family, now);
          m = { group, intercept, real: real.text, family: real.family, expiresMs, names: new Set() };
          this.opts.store.put({ group, intercept, real: real.text, expiresMs });
          this.index(m);
          created.push(m);
        }
        for (const n of names) m.names.add(n);
        m.names.delete(ADOPTED_NAME);
        if (m.names.size === 0) m.names.add(ADOPTED_NAME);
        out.set(real.text, m.intercept);
      }
    } catch (err) {
      for (const m of created) {
        this.unindex(m);
        try {
          this.opts.store.remove(m);
        } catch (e) {
          this.opts.log?.error('intercept: rollback of a new mapping failed', { intercept: m.intercept, err: (e as Error).message });
        }
      }
      throw err;
    }
    return out;
  }

  /** A free address of `family`: round-robin from the cursor; reclaims expired+idle ones when none is free. */
  private take(family: Family, now: number): string {
    const rs = this.ranges[family];
    if (rs.length === 0) throw new DnssealError('intercept', 'no_pool', `no IPv${family} intercept pool configured`);
    const free = this.scanFree(family);
    if (free) return free;
    if (this.reclaim(now, family) > 0) {
      const again = this.scanFree(family);
      if (again) return again;
    }
    throw new DnssealError('intercept', 'pool_exhausted', `IPv${family} intercept pool exhausted (${this.size(family)} addresses, all in use)`);
  }

  /** At most (used + 1) candidates are looked at: if the pool is larger than what is used, one is free. */
  private scanFree(family: Family): string | undefined {
    const rs = this.ranges[family];
    const c = this.cursor[family];
    const total = this.size(family);
    const used = this.used[family];
    const limit = used + 1n < total ? used + 1n : total;
    for (let n = 0n; n < limit; n++) {
      const r = rs[c.range]!;
      const text = addrFromBytes(fromBig(r.base + c.offset, family === 4 ? 4 : 16)).text;
      c.offset++;
      if (c.offset >= r.size) {
        c.offset = 0n;
        c.range = (c.range + 1) % rs.length;
      }
      if (!this.byIntercept.has(text)) return text;
    }
    return undefined;
  }

  private reclaimable(m: Mapping, now: number): boolean {
    if (now < m.expiresMs) return false;
    const seen = this.lastSeenFn(m.group, m.intercept);
    return seen === undefined || now - seen >= this.opts.idleMs;
  }

  /** Removes mappings past their hold and idle (of one family, or all); returns how many. */
  private reclaim(now: number, family?: Family): number {
    let n = 0;
    for (const m of [...this.byIntercept.values()]) {
      if (family !== undefined && m.family !== family) continue;
      if (!this.reclaimable(m, now)) continue;
      this.opts.store.remove(m);
      this.unindex(m);
      n++;
    }
    return n;
  }

  /** Periodic sweep (the daemon runs it with the registry's gc): frees expired, idle mappings. */
  gc(): number {
    const n = this.reclaim(this.opts.clock.monoMs());
    if (n) this.opts.log?.debug('intercept: mappings freed', { count: n });
    return n;
  }

  /** The intercept address of (group, real), if mapped. */
  lookup(group: number, real: string): string | undefined {
    return this.byReal.get(rkey(group, parseAddr(real).text))?.intercept;
  }

  /** The real address behind an intercept address (any group), if mapped. */
  realOf(intercept: string): { group: number; real: string } | undefined {
    const m = this.byIntercept.get(parseAddr(intercept).text);
    return m ? { group: m.group, real: m.real } : undefined;
  }

  /** `dnsseal list`: intercept ↔ real ↔ names ↔ group. */
  list(): InterceptRow[] {
    return [...this.byIntercept.values()].map((m) => {
      const row: InterceptRow = { group: m.group, intercept: m.intercept, real: m.real, names: [...m.names], expiresMs: m.expiresMs };
      const seen = this.lastSeenFn(m.group, m.intercept);
      if (seen !== undefined) row.lastSeenMs = seen;
      return row;
    });
  }

  stats(): { used: number; size: Record<'v4' | 'v6', string> } {
    return { used: this.byIntercept.size, size: { v4: String(this.size(4)), v6: String(this.size(6)) } };
  }
}

export type { StoredMapping };
