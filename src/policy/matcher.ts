/**
 * The indexed form of one rule table: answers "which is the first rule (lowest index) whose
 * condition matches this name" without scanning the table.
 *
 * - exact:     hash of the whole name.
 * - suffix:    hash of the dotted suffix ("myfriends.com"); the name probes each of its suffixes,
 *              itself included (a flattened label trie: one probe per label, no per-node objects).
 * - subdomain: the same in its own table, probed with the proper suffixes only.
 * - prefix:    hash of the first label; multi-label prefixes keep a short candidate list.
 * - infix:     hash of the first label of the sequence; the name probes each of its labels.
 * One right-to-left pass over the name computes every suffix and label hash (hash-index.ts),
 * so a match allocates nothing for the single-label kinds. Every kind is consulted and the
 * lowest index wins, so table order decides across kinds. Cost is O(labels) probes,
 * independent of the number of rules.
 *
 * Built from conditions, or from a table's rules (`forRules`: a rules file's rules are read
 * straight from its packed text, no Condition made). `toData`/`fromData`: the built index as
 * typed arrays, so a worker can build it and hand it over without a copy (a reload off the
 * hot path: src/daemon/config-worker.ts).
 */
import type { Condition, ConditionKind, Rule } from './types.ts';
import { normalizeName } from './name.ts';
import { EMPTY_SUFFIX, extend, FNV_INIT, HashIndex, type HashIndexData, labelMix } from './hash-index.ts';
import type { KeyRef } from './packed-rules.ts';
import { packedRuns, type RuleRun } from './rule-list.ts';

interface Candidate {
  labels: string[];
  index: number;
  payload: number;
}

const NONE = 0x7fffffff;
const encoder = new TextEncoder();

/** A built matcher as plain data (`RuleMatcher.toData`); the arrays are transferable. */
export interface MatcherData {
  size: number;
  suffixDepths: number;
  subdomainDepths: number;
  exact: HashIndexData;
  suffix: HashIndexData;
  subdomain: HashIndexData;
  prefix1: HashIndexData;
  infix1: HashIndexData;
  prefixN: Map<string, Candidate[]>;
  infixN: Map<string, Candidate[]>;
}

/** What the index needs of rule i: its kind and where its fixed labels joined by dots are. */
interface RuleKeys {
  length: number;
  kind(i: number): ConditionKind;
  key(i: number, out: KeyRef): void;
}

function whole(out: KeyRef, key: string): void {
  out.src = key;
  out.start = 0;
  out.end = key.length;
}

function conditionKeys(conditions: readonly Condition[]): RuleKeys {
  return { length: conditions.length, kind: (i) => conditions[i]!.kind, key: (i, out) => whole(out, conditions[i]!.labels.join('.')) };
}

function addCandidate(map: Map<string, Candidate[]>, key: string, c: Candidate): void {
  const list = map.get(key);
  if (list) list.push(c); // conditions arrive in index order, so lists stay sorted
  else map.set(key, [c]);
}

export class RuleMatcher {
  private exact: HashIndex;
  private suffix: HashIndex;
  private subdomain: HashIndex;
  private prefix1: HashIndex;
  private infix1: HashIndex;
  private prefixN = new Map<string, Candidate[]>();
  private infixN = new Map<string, Candidate[]>();
  /** Bit k-1 set when some suffix rule has k fixed labels (bit 31: 32 or more). */
  private suffixDepths = 0;
  /** The same for subdomain rules. */
  private subdomainDepths = 0;
  size: number;
  private readonly scratch = new Uint8Array(256);

  /** Payload (24 bits, see HashIndex) of the rule the last `match` returned. */
  payload = 0;

  /**
   * `conditions[i]` is the rule at table index i; `payloads[i]` (optional, 24 bits) comes
   * back in `payload` when that rule wins.
   */
  constructor(conditions: readonly Condition[] | RuleKeys, payloads?: ArrayLike<number>) {
    const rules = Array.isArray(conditions) ? conditionKeys(conditions as readonly Condition[]) : (conditions as RuleKeys);
    this.size = rules.length;
    const count = { exact: 0, suffix: 0, subdomain: 0, prefix: 0, infix: 0 };
    for (let i = 0; i < rules.length; i++) count[rules.kind(i)]++;
    this.exact = new HashIndex(count.exact);
    this.suffix = new HashIndex(count.suffix);
    this.subdomain = new HashIndex(count.subdomain);
    this.prefix1 = new HashIndex(count.prefix);
    this.infix1 = new HashIndex(count.infix);
    const ref: KeyRef = { src: '', start: 0, end: 0 };
    for (let i = 0; i < rules.length; i++) {
      rules.key(i, ref);
      this.add(rules.kind(i), ref, i, payloads ? payloads[i]! : 0);
    }
  }

  /** The matcher of a table's rules; a rules file's are read from its packed text (no rule made). */
  static forRules(rules: readonly Rule[], payloads?: ArrayLike<number>): RuleMatcher {
    const runs = packedRuns(rules);
    if (!runs) return new RuleMatcher(conditionKeys(rules.map((r) => r.condition)), payloads);
    // rule i's run: the rules are asked for in order, so a cursor moves forward
    let r = 0;
    const runOf = (i: number): RuleRun => {
      if (i < runs[r]!.first) r = 0;
      while (r + 1 < runs.length && runs[r + 1]!.first <= i) r++;
      return runs[r]!;
    };
    return new RuleMatcher(
      {
        length: rules.length,
        kind: (i) => {
          const run = runOf(i);
          return 'packed' in run ? run.packed.kind(i - run.first) : run.rule.condition.kind;
        },
        key: (i, out) => {
          const run = runOf(i);
          if ('packed' in run) run.packed.keyAt(i - run.first, out);
          else whole(out, run.rule.condition.labels.join('.'));
        },
      },
      payloads,
    );
  }

  /** The built index as data; transfer `buffers` with it (this matcher must not be used after). */
  toData(): { data: MatcherData; buffers: ArrayBuffer[] } {
    const parts = [this.exact, this.suffix, this.subdomain, this.prefix1, this.infix1].map((h) => h.toData());
    return {
      data: {
        size: this.size,
        suffixDepths: this.suffixDepths,
        subdomainDepths: this.subdomainDepths,
        exact: parts[0]!.data,
        suffix: parts[1]!.data,
        subdomain: parts[2]!.data,
        prefix1: parts[3]!.data,
        infix1: parts[4]!.data,
        prefixN: this.prefixN,
        infixN: this.infixN,
      },
      buffers: parts.flatMap((p) => p.buffers),
    };
  }

  static fromData(d: MatcherData): RuleMatcher {
    const m = new RuleMatcher([]);
    m.size = d.size;
    m.suffixDepths = d.suffixDepths;
    m.subdomainDepths = d.subdomainDepths;
    m.exact = HashIndex.fromData(d.exact);
    m.suffix = HashIndex.fromData(d.suffix);
    m.subdomain = HashIndex.fromData(d.subdomain);
    m.prefix1 = HashIndex.fromData(d.prefix1);
    m.infix1 = HashIndex.fromData(d.infix1);
    m.prefixN = d.prefixN;
    m.infixN = d.infixN;
    return m;
  }

  private add(kind: ConditionKind, k: KeyRef, index: number, payload: number): void {
    switch (kind) {
      case 'exact':
        return this.exact.add(k.src, index, payload, k.start, k.end);
      case 'suffix':
        this.suffixDepths |= 1 << (Math.min(labelCount(k), 32) - 1);
        return this.suffix.add(k.src, index, payload, k.start, k.end);
      case 'subdomain':
        this.subdomainDepths |= 1 << (Math.min(labelCount(k), 32) - 1);
        return this.subdomain.add(k.src, index, payload, k.start, k.end);
      case 'prefix':
      case 'infix': {
        const dot = k.src.indexOf('.', k.start);
        if (dot < 0 || dot >= k.end) return (kind === 'prefix' ? this.prefix1 : this.infix1).add(k.src, index, payload, k.start, k.end);
        const labels = k.src.slice(k.start, k.end).split('.');
        return addCandidate(kind === 'prefix' ? this.prefixN : this.infixN, labels[0]!, { labels, index, payload });
      }
    }
  }

  /**
   * Index of the first matching rule for a name, or -1. Accepts names as they come off the
   * wire or the command line: any case, optional root dot, Unicode (converted to A-labels).
   */
  match(name: string): number {
    // Scan bytes, not the string: a string built by concatenation is a rope in JSC and
    // charCodeAt on it is slow; one encodeInto flattens it into a reused buffer.
    if (name.length === 0 || name.length > 254) return -1;
    const buf = this.scratch;
    let len = encoder.encodeInto(name, buf).written;
    if (len !== name.length) {
      const canonical = normalizeName(name); // non-ASCII: IDN to A-labels, slow path
      if (canonical === null || canonical.length > 253) return -1;
      len = encoder.encodeInto(canonical, buf).written;
    }
    if (buf[len - 1] === 46) len--;
    if (len === 0) return -1;
    const useSuffix = this.suffix.size > 0;
    const useSubdomain = this.subdomain.size > 0;
    const usePrefix = this.prefix1.size > 0;
    const useInfix = this.infix1.size > 0;
    let best = NONE;
    let pay = 0;
    let h = EMPTY_SUFFIX; // hash of the suffix right of the current label
    let lh = FNV_INIT; // running hash of the current label
    let end = len; // end of the current label
    let depth = 0; // labels from the right, including the current one
    for (let i = len - 1; i >= -1; i--) {
      let c = i >= 0 ? buf[i]! : 46;
      if (c !== 46) {
        if (c >= 65 && c <= 90) buf[i] = c += 32; // ASCII lower case, in place
        lh = Math.imul(lh ^ c, 0x01000193);
        continue;
      }
      // a label ends here: name[i+1, end); h becomes the hash of name[i+1, len)
      const start = i + 1;
      if (start === end) return -1; // empty label: not a host name
      const single = labelMix(lh);
      h = extend(h, single);
      const bit = 1 << (Math.min(++depth, 32) - 1);
      // suffix: every suffix of the name, the whole name (the apex) included
      if (useSuffix && (this.suffixDepths & bit) !== 0) {
        const s = this.suffix.find(h, buf, start, len);
        if (s >= 0 && s < best) {
          best = s;
          pay = this.suffix.hitPayload;
        }
      }
      // the hash of the label alone (a one-label key), for infix and prefix
      const lone = useInfix || (usePrefix && start === 0) ? extend(EMPTY_SUFFIX, single) : 0;
      // infix: the label anywhere, first and last position included
      if (useInfix) {
        const x = this.infix1.find(lone, buf, start, end);
        if (x >= 0 && x < best) {
          best = x;
          pay = this.infix1.hitPayload;
        }
      }
      if (start === 0) {
        const e = this.exact.find(h, buf, 0, len);
        if (e >= 0 && e < best) {
          best = e;
          pay = this.exact.hitPayload;
        }
        if (usePrefix) {
          const p = this.prefix1.find(lone, buf, 0, end);
          if (p >= 0 && p < best) {
            best = p;
            pay = this.prefix1.hitPayload;
          }
        }
      } else if (useSubdomain && (this.subdomainDepths & bit) !== 0) {
        // subdomain: proper suffixes only, never the whole name
        const s = this.subdomain.find(h, buf, start, len);
        if (s >= 0 && s < best) {
          best = s;
          pay = this.subdomain.hitPayload;
        }
      }
      lh = FNV_INIT;
      end = i;
    }
    this.payload = pay;
    if (this.prefixN.size > 0 || this.infixN.size > 0) {
      best = this.matchMulti(new TextDecoder().decode(buf.subarray(0, len)).split('.'), best);
    }
    return best === NONE ? -1 : best;
  }

  private matchMulti(labels: string[], best: number): number {
    const n = labels.length;
    const pre = this.prefixN.get(labels[0]!);
    if (pre) {
      for (const c of pre) {
        if (c.index >= best) break;
        if (c.labels.length <= n && startsAt(labels, c.labels, 0)) {
          best = c.index;
          this.payload = c.payload;
          break;
        }
      }
    }
    if (this.infixN.size > 0) {
      for (let at = 0; at < n; at++) {
        const list = this.infixN.get(labels[at]!);
        if (!list) continue;
        for (const c of list) {
          if (c.index >= best) break;
          if (at + c.labels.length <= n && startsAt(labels, c.labels, at)) {
            best = c.index;
            this.payload = c.payload;
            break;
          }
        }
      }
    }
    return best;
  }
}

function labelCount(k: KeyRef): number {
  let n = 1;
  for (let i = k.src.indexOf('.', k.start); i >= 0 && i < k.end; i = k.src.indexOf('.', i + 1)) n++;
  return n;
}

function startsAt(name: string[], fixed: string[], at: number): boolean {
  for (let i = 0; i < fixed.length; i++) if (name[at + i] !== fixed[i]) return false;
  return true;
}
