/**
 * The rules of one rules file, packed: the file's text and, per rule, a few numbers (where its
 * pattern is, its line, kind, channel and upstream) — no object per rule. A table whose rules
 * come from rules files holds them as a `ruleList`: an array to every reader (length, index,
 * iteration, the Array methods) that makes a rule (`PackedRule`, its `Condition` built when
 * asked for) only when one is read; the matcher and the policy read kinds, keys and channels
 * straight from here (`ruleRuns`). 200k rules take about 45 bytes each instead of about 900
 * with a `Rule`, a `Condition`, its label array and strings each (or about 120 with an object
 * per rule); loading is a scan of the text, and the data crosses to and from a worker as typed
 * arrays (`toData` / `fromData`; src/daemon/config-worker.ts).
 *
 * Rules written in the YAML stay plain `Rule` objects; a table may mix both.
 */
import { parseCondition } from './condition.ts';
import type { Condition, ConditionKind, Rule } from './types.ts';

export const KINDS: readonly ConditionKind[] = ['exact', 'suffix', 'subdomain', 'prefix', 'infix'];
const KIND_INDEX: Record<ConditionKind, number> = { exact: 0, suffix: 1, subdomain: 2, prefix: 3, infix: 4 };
const LEAD: Record<ConditionKind, number> = { exact: 0, prefix: 0, suffix: 2, infix: 2, subdomain: 3 };
const TAIL: Record<ConditionKind, number> = { exact: 0, suffix: 0, subdomain: 0, prefix: 2, infix: 2 };

/** Where a key is: `src[start, end)`. */
export interface KeyRef {
  src: string;
  start: number;
  end: number;
}

/** What crosses between threads: plain data, the arrays transferable. */
export interface PackedRulesData {
  source: string;
  text: string;
  start: Int32Array;
  len: Uint16Array;
  line: Int32Array;
  kind: Uint8Array;
  channel: Uint16Array;
  upstream: Uint16Array;
  names: string[];
  keys: Map<number, string>;
  count: number;
}

export class PackedRules {
  private digestText: string | undefined;

  private constructor(private readonly d: PackedRulesData) {}

  static fromData(d: PackedRulesData): PackedRules {
    return new PackedRules(d);
  }

  /** The data, arrays trimmed to the rules; transfer `buffers` with it. */
  toData(): { data: PackedRulesData; buffers: ArrayBuffer[] } {
    const d = this.d;
    return { data: d, buffers: [d.start.buffer, d.len.buffer, d.line.buffer, d.kind.buffer, d.channel.buffer, d.upstream.buffer] as ArrayBuffer[] };
  }

  /** The rules file (sources are `path:line`). */
  get source(): string {
    return this.d.source;
  }

  get length(): number {
    return this.d.count;
  }

  /** Channel and upstream names the rules use (each once). */
  get names(): readonly string[] {
    return this.d.names;
  }

  pattern(i: number): string {
    const s = this.d.start[i]!;
    return this.d.text.slice(s, s + this.d.len[i]!);
  }

  kind(i: number): ConditionKind {
    return KINDS[this.d.kind[i]!]!;
  }

  /** The fixed labels joined by dots, lower case A-labels: what the matcher keys the rule by. */
  key(i: number): string {
    const k = this.d.keys.get(i);
    if (k !== undefined) return k;
    const kind = this.kind(i);
    const s = this.d.start[i]!;
    let e = s + this.d.len[i]!;
    if (this.d.text.charCodeAt(e - 1) === 46) e--; // a root dot
    return this.d.text.slice(s + LEAD[kind], e - TAIL[kind]);
  }

  /** `key(i)` without making it: where it is (`out.src[out.start, out.end)`). */
  keyAt(i: number, out: KeyRef): void {
    const k = this.d.keys.get(i);
    if (k !== undefined) {
      out.src = k;
      out.start = 0;
      out.end = k.length;
      return;
    }
    const kind = KINDS[this.d.kind[i]!]!;
    const s = this.d.start[i]!;
    let e = s + this.d.len[i]!;
    if (this.d.text.charCodeAt(e - 1) === 46) e--;
    out.src = this.d.text;
    out.start = s + LEAD[kind];
    out.end = e - TAIL[kind];
  }

  condition(i: number): Condition {
    const pattern = this.pattern(i);
    return this.d.keys.has(i) ? parseCondition(pattern) : { kind: this.kind(i), labels: this.key(i).split('.'), pattern };
  }

  channel(i: number): string {
    return this.d.names[this.d.channel[i]!]!;
  }

  upstream(i: number): string | undefined {
    const u = this.d.upstream[i]!;
    return u === 0 ? undefined : this.d.names[u - 1];
  }

  line(i: number): number {
    return this.d.line[i]!;
  }

  /** Rule i of the file as the table's rule number `index`. */
  view(i: number, index: number): PackedRule {
    return new PackedRule(this, i, index);
  }

  /** A digest of everything a rule carries (patterns, lines, channels, upstreams): equal digests, equal rules. */
  digest(): string {
    if (this.digestText === undefined) {
      const d = this.d;
      const n = d.count;
      const h: unknown[] = [d.source, Bun.hash(d.text), Bun.hash(d.start.subarray(0, n)), Bun.hash(d.len.subarray(0, n)), Bun.hash(d.line.subarray(0, n)), Bun.hash(d.kind.subarray(0, n))];
      h.push(Bun.hash(d.channel.subarray(0, n)), Bun.hash(d.upstream.subarray(0, n)), d.names.join('\u0000'), JSON.stringify([...d.keys]), n);
      this.digestText = h.join('|');
    }
    return this.digestText;
  }
}

/**
 * A rule of a rules file as a `Rule`, made when it is read from a `ruleList`: three fields, the
 * rest read from the packed file when asked (the condition is built each time — rare:
 * `explain`, the query log, a debug line).
 */
export class PackedRule implements Rule {
  constructor(
    readonly packed: PackedRules,
    readonly at: number,
    readonly index: number,
  ) {}

  get condition(): Condition {
    return this.packed.condition(this.at);
  }

  get channel(): string {
    return this.packed.channel(this.at);
  }

  get upstream(): string | undefined {
    return this.packed.upstream(this.at);
  }

  get source(): string {
    return `${this.packed.source}:${this.packed.line(this.at)}`;
  }

  toJSON(): Rule {
    const r: Rule = { condition: this.condition, channel: this.channel, index: this.index, source: this.source };
    const u = this.upstream;
    if (u !== undefined) r.upstream = u;
    return r;
  }
}

/** Builds the packed rules of one file, line by line. */
export class PackedRulesBuilder {
  private n = 0;
  private start: Int32Array;
  private len: Uint16Array;
  private line: Int32Array;
  private kind: Uint8Array;
  private channel: Uint16Array;
  private upstream: Uint16Array;
  private readonly names: string[] = [];
  private readonly nameIds = new Map<string, number>();
  private readonly keys = new Map<number, string>();

  constructor(
    private readonly source: string,
    private readonly text: string,
    /** Rules expected (the file's lines): the arrays are made this big once. */
    expected = 1024,
  ) {
    this.start = new Int32Array(Math.max(16, expected));
    this.len = new Uint16Array(this.start.length);
    this.line = new Int32Array(this.start.length);
    this.kind = new Uint8Array(this.start.length);
    this.channel = new Uint16Array(this.start.length);
    this.upstream = new Uint16Array(this.start.length);
  }

  private nameId(name: string): number {
    let id = this.nameIds.get(name);
    if (id === undefined) {
      id = this.names.length;
      if (id > 0xfffe) throw new Error('more than 65535 channel and upstream names in one rules file');
      this.names.push(name);
      this.nameIds.set(name, id);
    }
    return id;
  }

  /**
   * One rule: its pattern is `text[start, start + len)`; `key` only when the fixed part is not
   * the pattern's own text (upper case, IDN: parseCondition's canonical labels).
   */
  add(start: number, len: number, line: number, kind: ConditionKind, channel: string, upstream: string | undefined, key?: string): void {
    if (this.n === this.start.length) this.grow();
    const i = this.n++;
    this.start[i] = start;
    this.len[i] = len;
    this.line[i] = line;
    this.kind[i] = KIND_INDEX[kind];
    this.channel[i] = this.nameId(channel);
    this.upstream[i] = upstream === undefined ? 0 : this.nameId(upstream) + 1;
    if (key !== undefined) this.keys.set(i, key);
  }

  private grow(): void {
    const cap = this.start.length * 2;
    const more = <T extends Int32Array | Uint16Array | Uint8Array>(a: T): T => {
      const b = new (a.constructor as new (n: number) => T)(cap);
      b.set(a);
      return b;
    };
    this.start = more(this.start);
    this.len = more(this.len);
    this.line = more(this.line);
    this.kind = more(this.kind);
    this.channel = more(this.channel);
    this.upstream = more(this.upstream);
  }

  build(): PackedRules {
    const n = this.n;
    // sized by the line count: comments and blank lines leave little room, keep the arrays as they are
    const fit = <T extends Int32Array | Uint16Array | Uint8Array>(a: T): T => (a.length - n > 4096 + (n >> 3) ? (a.slice(0, n) as T) : a);
    return PackedRules.fromData({
      source: this.source,
      text: this.text,
      start: fit(this.start),
      len: fit(this.len),
      line: fit(this.line),
      kind: fit(this.kind),
      channel: fit(this.channel),
      upstream: fit(this.upstream),
      names: this.names,
      keys: this.keys,
      count: n,
    });
  }
}
