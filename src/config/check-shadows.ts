/**
 * Rules that can never win: within one table the first rule that matches wins, so a rule is dead
 * when earlier rules of the same table together match every name it matches (for the query
 * name and each CNAME target alike, since every name of a chain is matched the same way).
 * `dnsseal check` warns about them; `run` logs the same warnings.
 *
 * The coverage follows the rule semantics of src/policy/condition.ts (`*` = any number of
 * labels, none included; `**.` = one or more). With g the rule's labels and f an earlier one's:
 *
 *   rule (names)          covered by an earlier rule when
 *   exact g   {g}         it matches g itself (exact g; suffix f / infix f / prefix f where f ends,
 *                         lies in, starts g; subdomain f where g ends with f and is longer)
 *   subdomain g {x.g}     suffix or subdomain f with g ending in f; infix f lying in g
 *   suffix g  {g, x.g}    suffix f with g ending in f; infix f lying in g — or the two halves by two
 *                         rules: g itself (as for exact) and the names under it (as for subdomain)
 *   prefix g  {g.y}       prefix f with g starting with f; infix f lying in g
 *   infix g   {x.g.y}     infix f lying in g
 *
 * Each rule's candidates are looked up among the rules before it (see Earlier), so a table of
 * a million rules is checked in one pass, a few map look-ups per rule.
 */
import { EMPTY_SUFFIX, extend, FNV_INIT, HashIndex, labelMix } from '../policy/hash-index.ts';
import type { Condition, ConditionKind } from '../policy/types.ts';

export interface Shadow {
  /** The dead rule's position in its table. */
  index: number;
  /** The earlier rule(s) that together match every name it matches. */
  by: number[];
  /** Same kind and labels as `by[0]`: written twice. */
  duplicate: boolean;
}

const NONE = Number.MAX_SAFE_INTEGER;

/**
 * One rule's text as bytes, with the hash of each label and of each ending (the labels from k
 * to the last), computed right to left as HashIndex keys are: every candidate of the rule is
 * then a probe, and no substring is built.
 */
class Scan {
  readonly bytes = new Uint8Array(512);
  length = 0;
  count = 0;
  readonly starts = new Int32Array(256);
  readonly ends = new Int32Array(256);
  /** Hash of label k alone, as a key. */
  readonly single = new Int32Array(256);
  /** Hash of labels k..count-1, as a key. */
  readonly ending = new Int32Array(256);

  load(labels: readonly string[]): void {
    let at = 0;
    this.count = labels.length;
    for (let k = 0; k < labels.length; k++) {
      const l = labels[k]!;
      this.starts[k] = at;
      for (let i = 0; i < l.length; i++) this.bytes[at++] = l.charCodeAt(i) & 0xff;
      this.ends[k] = at;
      this.bytes[at++] = 46;
    }
    this.length = at - 1;
    let h = EMPTY_SUFFIX;
    for (let k = labels.length - 1; k >= 0; k--) {
      let lh = FNV_INIT;
      // each label's bytes right to left, as hashKey reads a key
      for (let i = this.ends[k]! - 1; i >= this.starts[k]!; i--) lh = Math.imul(lh ^ this.bytes[i]!, 0x01000193);
      const mixed = labelMix(lh);
      this.single[k] = extend(EMPTY_SUFFIX, mixed);
      h = extend(h, mixed);
      this.ending[k] = h;
    }
  }
}

/**
 * The rules seen so far, by kind, in hash indexes of their text (the first rule of a text
 * stays: later ones are its duplicates). Prefix and infix rules are also chained under their
 * first label, so the ones that can lie at a position of a name are found with one probe.
 */
class Earlier {
  private readonly texts: Record<ConditionKind, HashIndex>;
  /** First label → the first prefix / infix rule with it; `next` chains the others, in order. */
  private readonly heads: { prefix: HashIndex; infix: HashIndex };
  private readonly next: Int32Array;
  private readonly tail: Int32Array;

  constructor(
    private readonly rules: readonly { condition: Condition }[],
    counts: Record<ConditionKind, number>,
  ) {
    this.texts = {
      exact: new HashIndex(counts.exact),
      suffix: new HashIndex(counts.suffix),
      subdomain: new HashIndex(counts.subdomain),
      prefix: new HashIndex(counts.prefix),
      infix: new HashIndex(counts.infix),
    };
    this.heads = { prefix: new HashIndex(counts.prefix), infix: new HashIndex(counts.infix) };
    this.next = new Int32Array(rules.length).fill(-1);
    this.tail = new Int32Array(rules.length);
  }

  /** The earlier rule of the same kind and labels, if any. */
  same(kind: ConditionKind, s: Scan): number {
    return this.find(this.texts[kind], s.ending[0]!, s, 0, s.length);
  }

  private find(index: HashIndex, h: number, s: Scan, start: number, end: number): number {
    if (index.size === 0) return NONE;
    const i = index.find(h, s.bytes, start, end);
    return i < 0 ? NONE : i;
  }

  add(c: Condition, text: string, s: Scan, at: number): void {
    this.texts[c.kind].add(text, at);
    if (c.kind !== 'prefix' && c.kind !== 'infix') return;
    const heads = this.heads[c.kind];
    const head = this.find(heads, s.single[0]!, s, s.starts[0]!, s.ends[0]!);
    if (head === NONE) {
      heads.add(c.labels[0]!, at);
      this.tail[at] = at;
    } else {
      this.next[this.tail[head]!] = at;
      this.tail[head] = at;
    }
  }

  /**
   * Over the endings of the rule (itself, then without its first label, …): the earliest
   * suffix rule, the earliest subdomain rule strictly shorter, and one of the same length.
   */
  endings(s: Scan): { suffix: number; subStrict: number; subSelf: number } {
    let suffix = NONE;
    let subStrict = NONE;
    for (let k = 0; k < s.count; k++) {
      suffix = Math.min(suffix, this.find(this.texts.suffix, s.ending[k]!, s, s.starts[k]!, s.length));
      if (k > 0) subStrict = Math.min(subStrict, this.find(this.texts.subdomain, s.ending[k]!, s, s.starts[k]!, s.length));
    }
    return { suffix, subStrict, subSelf: this.find(this.texts.subdomain, s.ending[0]!, s, 0, s.length) };
  }

  /** The earliest rule of `kind` chained under label k whose labels lie in the rule's at k. */
  private anchoredAt(kind: 'prefix' | 'infix', s: Scan, g: readonly string[], k: number): number {
    for (let r = this.find(this.heads[kind], s.single[k]!, s, s.starts[k]!, s.ends[k]!); r !== NONE && r >= 0; r = this.next[r]!) {
      if (labelsAt(g, this.rules[r]!.condition.labels, k)) return r; // the chain is in rule order
    }
    return NONE;
  }

  /** The earliest prefix rule whose labels start the rule's. */
  startingWith(s: Scan, g: readonly string[]): number {
    return this.heads.prefix.size ? this.anchoredAt('prefix', s, g, 0) : NONE;
  }

  /** The earliest infix rule whose labels lie in the rule's. */
  lyingIn(s: Scan, g: readonly string[]): number {
    if (this.heads.infix.size === 0) return NONE;
    let best = NONE;
    for (let k = 0; k < s.count; k++) best = Math.min(best, this.anchoredAt('infix', s, g, k));
    return best;
  }
}

/** Whether `f` is found in `g` at `at`. */
function labelsAt(g: readonly string[], f: readonly string[], at: number): boolean {
  if (at + f.length > g.length) return false;
  for (let i = 0; i < f.length; i++) if (g[at + i] !== f[i]) return false;
  return true;
}

/** The earlier rules that together match every name `c` matches (none: it can win). */
function coveredBy(c: Condition, s: Scan, earlier: Earlier): number[] {
  const g = c.labels;
  const one = (i: number) => (i === NONE ? [] : [i]);
  switch (c.kind) {
    case 'infix':
      return one(earlier.lyingIn(s, g));
    case 'prefix':
      return one(Math.min(earlier.startingWith(s, g), earlier.lyingIn(s, g)));
    case 'subdomain': {
      const e = earlier.endings(s);
      return one(Math.min(e.suffix, e.subStrict, e.subSelf, earlier.lyingIn(s, g)));
    }
    case 'exact': {
      const e = earlier.endings(s);
      return one(Math.min(e.suffix, e.subStrict, earlier.startingWith(s, g), earlier.lyingIn(s, g)));
    }
    case 'suffix': {
      const e = earlier.endings(s);
      const single = Math.min(e.suffix, earlier.lyingIn(s, g));
      if (single !== NONE) return [single];
      // g itself, and the names under it, by two different rules
      const self = Math.min(earlier.same('exact', s), e.subStrict, earlier.startingWith(s, g));
      const under = Math.min(e.subSelf, e.subStrict);
      if (self === NONE || under === NONE) return [];
      return self === under ? [self] : [Math.min(self, under), Math.max(self, under)];
    }
  }
}

/** The dead rules of one table, in table order. */
export function findShadows(rules: readonly { condition: Condition }[]): Shadow[] {
  const counts: Record<ConditionKind, number> = { exact: 0, suffix: 0, subdomain: 0, prefix: 0, infix: 0 };
  for (const r of rules) counts[r.condition.kind]++;
  const earlier = new Earlier(rules, counts);
  const scan = new Scan();
  const out: Shadow[] = [];
  for (let index = 0; index < rules.length; index++) {
    const c = rules[index]!.condition;
    scan.load(c.labels);
    const same = earlier.same(c.kind, scan);
    if (same !== NONE) out.push({ index, by: [same], duplicate: true });
    else {
      const by = coveredBy(c, scan, earlier);
      if (by.length) out.push({ index, by, duplicate: false });
    }
    earlier.add(c, c.labels.join('.'), scan, index);
  }
  return out;
}
