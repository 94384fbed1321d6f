/**
 * The indexed form of one rule table: answers "which is the first rule (lowest index) whose
 * condition matches this name" without scanning the table.
 *
 * - exact:  hash of the whole name.
 * - suffix: hash of the dotted suffix ("myfriends.com"); a name probes each of its proper
 *           suffixes once (a flattened label trie: one probe per label, no per-node objects).
 * - prefix: hash of the first label; multi-label prefixes keep a short candidate list.
 * - infix:  hash of the first label of the sequence; a name probes each inner label.
 * Every kind is consulted and the lowest index wins, so table order decides across kinds.
 * Cost per name is O(labels) hash probes, independent of the number of rules.
 */
import type { Condition } from './types.ts';

interface Candidate {
  labels: string[];
  index: number;
}

const NONE = 0x7fffffff;

function keepFirst(map: Map<string, number>, key: string, index: number): void {
  const had = map.get(key);
  if (had === undefined || index < had) map.set(key, index);
}

function addCandidate(map: Map<string, Candidate[]>, key: string, c: Candidate): void {
  const list = map.get(key);
  if (list) list.push(c); // conditions arrive in index order, so lists stay sorted
  else map.set(key, [c]);
}

export class RuleMatcher {
  private readonly exact = new Map<string, number>();
  private readonly suffix = new Map<string, number>();
  private readonly prefix1 = new Map<string, number>();
  private readonly prefixN = new Map<string, Candidate[]>();
  private readonly infix1 = new Map<string, number>();
  private readonly infixN = new Map<string, Candidate[]>();
  readonly size: number;

  /** `conditions[i]` is the rule at table index i. */
  constructor(conditions: readonly Condition[]) {
    this.size = conditions.length;
    for (let i = 0; i < conditions.length; i++) this.add(conditions[i]!, i);
  }

  private add(c: Condition, index: number): void {
    const l = c.labels;
    switch (c.kind) {
      case 'exact':
        return keepFirst(this.exact, l.join('.'), index);
      case 'suffix':
        return keepFirst(this.suffix, l.join('.'), index);
      case 'prefix':
        if (l.length === 1) return keepFirst(this.prefix1, l[0]!, index);
        return addCandidate(this.prefixN, l[0]!, { labels: l, index });
      case 'infix':
        if (l.length === 1) return keepFirst(this.infix1, l[0]!, index);
        return addCandidate(this.infixN, l[0]!, { labels: l, index });
    }
  }

  /**
   * Index of the first matching rule for a canonical name (lower case, A-labels, no root
   * dot; see normalizeName), or -1.
   */
  match(name: string): number {
    let best = NONE;
    const e = this.exact.get(name);
    if (e !== undefined) best = e;
    const firstDot = name.indexOf('.');
    if (firstDot <= 0) return best === NONE ? -1 : best;

    if (this.suffix.size > 0) {
      for (let dot = firstDot; dot >= 0; dot = name.indexOf('.', dot + 1)) {
        const s = this.suffix.get(name.substring(dot + 1));
        if (s !== undefined && s < best) best = s;
      }
    }
    if (this.prefix1.size > 0) {
      const p = this.prefix1.get(name.substring(0, firstDot));
      if (p !== undefined && p < best) best = p;
    }
    if (this.infix1.size > 0) {
      // inner labels only: at least one label before and one after
      let start = firstDot + 1;
      for (let dot = name.indexOf('.', start); dot >= 0; dot = name.indexOf('.', start)) {
        const x = this.infix1.get(name.substring(start, dot));
        if (x !== undefined && x < best) best = x;
        start = dot + 1;
      }
    }
    if (this.prefixN.size > 0 || this.infixN.size > 0) best = this.matchMulti(name.split('.'), best);
    return best === NONE ? -1 : best;
  }

  private matchMulti(labels: string[], best: number): number {
    const n = labels.length;
    const pre = this.prefixN.get(labels[0]!);
    if (pre) {
      for (const c of pre) {
        if (c.index >= best) break;
        if (c.labels.length < n && startsAt(labels, c.labels, 0)) {
          best = c.index;
          break;
        }
      }
    }
    if (this.infixN.size > 0) {
      for (let at = 1; at < n - 1; at++) {
        const list = this.infixN.get(labels[at]!);
        if (!list) continue;
        for (const c of list) {
          if (c.index >= best) break;
          if (at + c.labels.length <= n - 1 && startsAt(labels, c.labels, at)) {
            best = c.index;
            break;
          }
        }
      }
    }
    return best;
  }
}

function startsAt(name: string[], fixed: string[], at: number): boolean {
  for (let i = 0; i < fixed.length; i++) if (name[at + i] !== fixed[i]) return false;
  return true;
}
