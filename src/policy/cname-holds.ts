/**
 * CNAME holds (issue 11 item 9, the split-DNS CNAME hole): a protected answer whose chain leads
 * to a name no rule covers — `app.corp.example CNAME app.cloudhost.example.` from an internal
 * server that does not chase it — lets the client's stub ask for `app.cloudhost.example` on its
 * own, from any upstream, and that answer would match nothing. So every name of a protected
 * chain after the one that matched is remembered, per client group, with the decision (table,
 * rule, channel) for the TTL of the CNAME that named it (at least `minHoldS`), and an answer
 * for it in that group is protected like the name that brought it.
 *
 * Holds only run downstream: a name protected through a hold holds the names after it, never
 * itself or the name that brought it, so a hold cannot keep itself alive; it ends when the
 * protected name is no longer asked for. Memory is bounded: at most `maxEntries` (group, name)
 * holds, the least recently renewed one goes first (counted in `evicted`).
 *
 * A hold follows the rules as they are now, not as they were: when a local rule brought it, the
 * running policy (`policy`, the daemon's live one) is asked again whether the name that rule
 * matched (`root`: the start of the chain of holds) is still protected, and by which rule and
 * channel — after a reload that dropped the rule the hold protects nothing and goes. A hold a
 * policy server's decision brought (no local rule) keeps that decision until it ends.
 */
import type { Clock } from '../util/clock.ts';
import type { Metrics } from '../ops/metrics.ts';
import type { ChannelSpec, Decision, Rule, TableId } from './types.ts';

export const DEFAULT_MAX_HOLDS = 65536;
/** The floor of a hold when none is given: `min_hold`'s default. */
export const DEFAULT_HOLD_FLOOR_S = 60;

/** What a hold asks of the running policy (src/policy/policy.ts `Policy`, or the daemon's live one). */
export interface HoldPolicy {
  decide(clientIp: string, names: string[]): Decision;
}

export interface CnameHoldOptions {
  clock: Clock;
  /** The running policy; unset: a hold keeps the decision that brought it. */
  policy?: HoldPolicy;
  /** Floor of a hold, seconds (the registry's `min_hold`). */
  minHoldS: number;
  /** At most this many (group, name) holds (default 65536); the oldest goes first. */
  maxEntries?: number;
}

/** One held name. */
export interface CnameHold {
  group: number;
  /** The held name (a CNAME target of a protected chain). */
  name: string;
  /** The protected name whose answer brought the hold. */
  by: string;
  /** The name a rule matched where the holds began (`by`, or the root of `by`'s own hold). */
  root: string;
  /** The decision that brought it (re-asked of the running policy when `rule` is set). */
  table: TableId;
  rule: Rule | null;
  channel: ChannelSpec;
  /** monoMs when the hold ends. */
  expiresMs: number;
}


export class CnameHolds {
  /** name → group → hold: a lookup needs no key string built per query. */
  private readonly byName = new Map<string, Map<number, CnameHold>>();
  /** Every hold, least recently renewed first (eviction order). */
  private readonly order = new Set<CnameHold>();
  private readonly max: number;
  /** Live holds dropped because the table was full. */
  evicted = 0;

  constructor(private readonly opts: CnameHoldOptions) {
    this.max = opts.maxEntries ?? DEFAULT_MAX_HOLDS;
    if (!(this.max >= 1)) throw new RangeError(`policy: cname hold cap must be at least 1, not ${this.max}`);
  }

  get size(): number {
    return this.order.size;
  }

  /**
   * After a protected decision: the names of `chain` after the one the decision matched are
   * held for its group. `chainTtls[i]` is the TTL of the CNAME record that named `chain[i]`.
   */
  hold(decision: Decision, chain: readonly string[], chainTtls: readonly number[]): void {
    const channel = decision.channel;
    if (!channel || chain.length < 2) return;
    const from = matchedAt(decision, chain);
    if (from >= chain.length - 1) return;
    const now = this.opts.clock.monoMs();
    const by = chain[from]!;
    // a decision a hold gave: the new holds start where that one started
    const root = decision.heldBy !== undefined ? (this.find(decision.group, by)?.root ?? by) : by;
    const rule = decision.rule;
    for (let i = from + 1; i < chain.length; i++) {
      const expiresMs = now + Math.max(chainTtls[i] ?? 0, this.opts.minHoldS) * 1000;
      this.put({ group: decision.group, name: chain[i]!, by, root, table: decision.table, rule, channel, expiresMs });
    }
  }

  /**
   * The decision a hold gives the first held name of `names` (query name, then its chain) for
   * `clientIp`, or null. `miss` is the policy's own (unprotected) decision for the client.
   */
  decide(clientIp: string, miss: Decision, names: readonly string[]): Decision | null {
    if (this.order.size === 0) return null;
    for (const name of names) {
      const h = this.find(miss.group, name);
      if (!h) continue;
      const d = this.origin(h, clientIp);
      if (!d) {
        this.remove(h); // the name that began it is not protected any more (a reload)
        continue;
      }
      return { table: d.table, group: h.group, rule: d.rule, channel: d.channel, upstream: miss.upstream, matchedName: h.name, heldBy: h.by };
    }
    return null;
  }

  /** The decision protecting the name that began `h`, as the running policy sees it now (null: none). */
  private origin(h: CnameHold, clientIp: string): { table: TableId; rule: Rule | null; channel: ChannelSpec } | null {
    const policy = this.opts.policy;
    if (!policy || h.rule === null) return h; // a policy server's decision: kept as it came
    const d = policy.decide(clientIp, [h.root]);
    return d.channel ? { table: d.table, rule: d.rule, channel: d.channel } : null;
  }

  /** The live hold on `name` (canonical: lower case, no root dot) for `group`. */
  find(group: number, name: string): CnameHold | undefined {
    const h = this.byName.get(name)?.get(group);
    if (!h) return undefined;
    if (h.expiresMs <= this.opts.clock.monoMs()) {
      this.remove(h);
      return undefined;
    }
    return h;
  }

  /** Whole seconds until `h` ends (0 when it has). */
  remainingS(h: CnameHold): number {
    return Math.max(0, Math.ceil((h.expiresMs - this.opts.clock.monoMs()) / 1000));
  }

  /**
   * For a reload's reconcile of the registry: the channel a live hold gives `name` in `group`
   * under the new rules (`choose(group, name)`: the channel the new policy gives a name in a
   * group, or null), or null when no hold protects it any more.
   */
  channelFor(group: number, name: string, choose: (group: number, name: string) => string | null): string | null {
    const h = this.find(group, name);
    if (!h) return null;
    return h.rule === null ? h.channel.name : choose(group, h.root);
  }

  /** Live holds, oldest first (for `explain`/`list`-style views and tests). */
  list(): CnameHold[] {
    const now = this.opts.clock.monoMs();
    return [...this.order].filter((h) => h.expiresMs > now);
  }

  private put(h: CnameHold): void {
    let groups = this.byName.get(h.name);
    const old = groups?.get(h.group);
    if (old) {
      // renewed: the newest decision, the later end, and to the back of the eviction order
      this.order.delete(old);
      if (old.expiresMs > h.expiresMs && old.expiresMs > this.opts.clock.monoMs()) h.expiresMs = old.expiresMs;
    } else {
      while (this.order.size >= this.max) this.evictOldest();
    }
    if (!groups) this.byName.set(h.name, (groups = new Map()));
    groups.set(h.group, h);
    this.order.add(h);
  }

  private evictOldest(): void {
    const oldest = this.order.values().next().value as CnameHold;
    if (oldest.expiresMs > this.opts.clock.monoMs()) this.evicted++;
    this.remove(oldest);
  }

  private remove(h: CnameHold): void {
    this.order.delete(h);
    const groups = this.byName.get(h.name);
    if (groups?.get(h.group) === h) {
      groups.delete(h.group);
      if (groups.size === 0) this.byName.delete(h.name);
    }
  }
}

/** Position in `chain` of the name the decision matched (0 when it does not say, e.g. a policy server's). */
function matchedAt(decision: Decision, chain: readonly string[]): number {
  const m = decision.matchedName;
  if (m === undefined) return 0;
  const i = chain.indexOf(m);
  return i < 0 ? 0 : i;
}

/** `dnsseal_policy_cname_holds_entries` and `dnsseal_policy_cname_holds_evicted_total`. */
export function exportCnameHolds(holds: CnameHolds, metrics: Metrics): void {
  const entries = metrics.gauge('dnsseal_policy_cname_holds_entries', 'CNAME targets of protected answers held protected for a client group (split-DNS CNAME hole)');
  const evicted = metrics.counter('dnsseal_policy_cname_holds_evicted_total', 'Live CNAME holds dropped because the hold table was full (oldest first)');
  let last = 0;
  metrics.onCollect(() => {
    entries.set(holds.size);
    if (holds.evicted > last) evicted.inc(undefined, holds.evicted - last);
    last = holds.evicted;
  });
}
