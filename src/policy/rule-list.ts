/**
 * A table's rules when some come from rules files (packed-rules.ts): `ruleList` gives them as
 * an array to every reader — length, index, iteration, the Array methods — that makes a rule
 * (`PackedRule`) only when one is read, so no object per rule is kept; `ruleRuns` and
 * `forEachTarget` let the matcher, the policy, comparisons and the reload worker walk the
 * runs (a plain rule, or a whole file) instead. Tables without a rules file are plain arrays.
 */
import { PackedRule, PackedRules } from './packed-rules.ts';
import type { Rule } from './types.ts';

/**
 * A table's rules as runs, in order: plain rules one by one, a rules file's as one run (a file is
 * inserted whole). What the matcher, the policy, comparisons and the worker walk instead of
 * making every rule.
 */
export type RuleRun = { rule: Rule; first: number } | { packed: PackedRules; first: number };

const RUNS = Symbol('dnsseal.ruleRuns');

function isIndex(prop: string): boolean {
  const c = prop.charCodeAt(0);
  return c >= 48 && c <= 57 && (prop === '0' || c !== 48) && /^\d+$/.test(prop);
}

/**
 * The rules of a table made of plain rules and rules files: a plain array when there is no
 * rules file, else a read-only array whose elements are made when read (no object per rule
 * is kept). Index `i` is rule `i` of the table (`index` = `i`).
 */
export function ruleList(items: ReadonlyArray<Rule | PackedRules>): Rule[] {
  if (!items.some((x) => x instanceof PackedRules)) return items as Rule[];
  const runs: RuleRun[] = [];
  let n = 0;
  for (const x of items) {
    if (x instanceof PackedRules) {
      runs.push({ packed: x, first: n });
      n += x.length;
    } else {
      runs.push({ rule: x, first: n++ });
    }
  }
  const starts = runs.map((r) => r.first);
  const at = (i: number): Rule => {
    // the last run starting at or before i (binary search: a table has few runs)
    let lo = 0;
    let hi = starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (starts[mid]! <= i) lo = mid;
      else hi = mid - 1;
    }
    const r = runs[lo]!;
    return 'packed' in r ? new PackedRule(r.packed, i - r.first, i) : r.rule;
  };
  const target: Rule[] = [];
  target.length = n;
  const readOnly = () => {
    throw new TypeError('policy: a table of rules files is read-only');
  };
  return new Proxy(target, {
    get: (t, prop, receiver) => {
      if (prop === RUNS) return runs;
      if (prop === 'length') return n;
      if (typeof prop === 'string' && isIndex(prop)) {
        const i = Number(prop);
        return i < n ? at(i) : undefined;
      }
      return Reflect.get(t, prop, receiver);
    },
    has: (t, prop) => (typeof prop === 'string' && isIndex(prop) ? Number(prop) < n : Reflect.has(t, prop)),
    getOwnPropertyDescriptor: (t, prop) => {
      if (typeof prop === 'string' && isIndex(prop)) {
        const i = Number(prop);
        return i < n ? { value: at(i), writable: false, enumerable: true, configurable: true } : undefined;
      }
      return Reflect.getOwnPropertyDescriptor(t, prop);
    },
    ownKeys: (t) => [...Array.from({ length: n }, (_, i) => String(i)), ...Reflect.ownKeys(t).filter((k) => !(typeof k === 'string' && isIndex(k)))],
    set: readOnly,
    defineProperty: readOnly,
    deleteProperty: readOnly,
  });
}

/** A `ruleList`'s runs; undefined for a plain array of rules. */
export function packedRuns(rules: readonly Rule[]): RuleRun[] | undefined {
  return (rules as unknown as Record<symbol, RuleRun[] | undefined>)[RUNS];
}

export function ruleRuns(rules: readonly Rule[]): RuleRun[] {
  return packedRuns(rules) ?? rules.map((rule, first) => ({ rule, first }));
}

/** Calls `fn` for every rule's channel and upstream name, in table order, without making rules. */
export function forEachTarget(rules: readonly Rule[], fn: (index: number, channel: string, upstream: string | undefined) => void): void {
  const runs = packedRuns(rules);
  if (!runs) {
    for (let i = 0; i < rules.length; i++) fn(i, rules[i]!.channel, rules[i]!.upstream);
    return;
  }
  for (const run of runs) {
    if ('rule' in run) {
      fn(run.first, run.rule.channel, run.rule.upstream);
      continue;
    }
    const p = run.packed;
    for (let i = 0; i < p.length; i++) fn(run.first + i, p.channel(i), p.upstream(i));
  }
}

/** Whether two rule lists hold the same rules (packed files by digest, plain rules field by field). */
export function sameRules(a: readonly Rule[], b: readonly Rule[]): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  const ra = ruleRuns(a);
  const rb = ruleRuns(b);
  if (ra.length !== rb.length) return false;
  for (let i = 0; i < ra.length; i++) {
    const x = ra[i]!;
    const y = rb[i]!;
    if ('packed' in x || 'packed' in y) {
      if (!('packed' in x) || !('packed' in y) || x.packed.length !== y.packed.length || x.packed.digest() !== y.packed.digest()) return false;
    } else if (!Bun.deepEquals(x.rule, y.rule)) {
      return false;
    }
  }
  return true;
}
