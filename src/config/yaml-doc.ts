/**
 * A parsed YAML config document with positions: Bun.YAML for the values, yaml-locator for
 * the lines. Parse errors are located by parsing growing prefixes of the text (the first
 * prefix that fails ends on the offending line: an unclosed bracket, a bad indent).
 */
import { ConfigError, errorMessage } from '../util/errors.ts';
import { locateYaml, type KeyPath, type YamlLocations } from './yaml-locator.ts';

export type Obj = Record<string, unknown>;

export function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function parses(text: string): boolean {
  try {
    Bun.YAML.parse(text);
    return true;
  } catch {
    return false;
  }
}

function firstFailingLine(text: string): number {
  const lines = text.split('\n');
  let lo = 1;
  let hi = lines.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (parses(lines.slice(0, mid).join('\n'))) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

export class YamlDoc {
  readonly root: Obj;
  /** Problems collected so far (`section` and `checkKeys` continue past them). */
  readonly errors: ConfigError[] = [];
  private readonly loc: YamlLocations;

  constructor(
    readonly source: string,
    text: string,
  ) {
    this.loc = locateYaml(text);
    let value: unknown;
    try {
      value = Bun.YAML.parse(text);
    } catch (err) {
      const line = firstFailingLine(text);
      const msg = errorMessage(err).replace(/^YAML Parse error:\s*/, '');
      const hint = this.loc.aliasLines.includes(line)
        ? 'a value starting with "*" is YAML alias syntax; quote patterns: match: "*.corp.example"'
        : `YAML syntax error (${msg.toLowerCase()})`;
      throw new ConfigError(`${source}:${line}`, hint, { cause: err });
    }
    if (Array.isArray(value) && text.split('\n').some((l) => l.trim() === '---')) {
      throw new ConfigError(`${source}:1`, 'holds several YAML documents; a config is one mapping');
    }
    if (value === null || value === undefined) value = {};
    if (!isObj(value)) throw new ConfigError(`${source}:1`, 'the config must be a mapping of keys (mode:, listen:, …)');
    const dup = this.loc.duplicates[0];
    if (dup) {
      throw new ConfigError(`${source}:${dup.line}`, `duplicate key "${dup.path.join('.')}" (YAML would silently keep only the last one)`);
    }
    this.root = value;
  }

  /** The key path a line holds (the shortest, when several start there), if any. */
  pathAt(line: number): KeyPath | undefined {
    return this.loc.pathAt(line);
  }

  /** `file:line` for a key path. */
  at(path: KeyPath): string {
    return `${this.source}:${this.loc.lineOf(path)}`;
  }

  /**
   * A mapping's entries in the order they are written. (JavaScript objects list integer-like
   * keys first, so `Object.entries` would reorder `2:` before `hub:`; channel ids follow
   * file order.)
   */
  entries(obj: Obj, path: KeyPath): [string, unknown][] {
    return Object.entries(obj)
      .map(([k, v], i) => ({ k, v, i, line: this.loc.lineOf([...path, k]) }))
      .sort((a, b) => a.line - b.line || a.i - b.i)
      .map(({ k, v }) => [k, v]);
  }

  fail(path: KeyPath, message: string): never {
    throw new ConfigError(this.at(path), message);
  }

  /** Records keys not in `known` as errors (with a did-you-mean) and goes on. */
  checkKeys(obj: Obj, path: KeyPath, known: string[]): void {
    for (const k of Object.keys(obj)) {
      if (known.includes(k)) continue;
      if (path.length === 0 && k === 'serve') {
        // a policy server's file given to `check` or `run`: say which command reads it
        this.errors.push(new ConfigError(this.at([k]), 'unknown key "serve": it is the section of a policy server\'s config, which "dnsseal policy-server --config FILE" reads (and checks when it starts)'));
        continue;
      }
      const near = known.find((n) => distance(n, k) <= 2 || n === k.replace(/-/g, '_'));
      const where = path.length ? ` in ${path.join('.')}` : '';
      this.errors.push(new ConfigError(this.at([...path, k]), `unknown key "${k}"${where}${near ? `; did you mean "${near}"?` : ` (known: ${known.join(', ')})`}`));
    }
  }

  /** Runs one independent part of the document; a ConfigError is recorded, not thrown. */
  section<T>(fn: () => T): T | undefined {
    try {
      return fn();
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      this.errors.push(err);
      return undefined;
    }
  }

  /** Throws every recorded problem at once (in file order), if there are any. */
  throwErrors(): void {
    if (this.errors.length === 0) return;
    const line = (e: ConfigError) => Number(/:(\d+)$/.exec(e.where)?.[1] ?? 0);
    const sorted = [...this.errors].sort((a, b) => line(a) - line(b));
    if (sorted.length === 1) throw sorted[0]!;
    throw new ConfigErrors(sorted);
  }

  str(v: unknown, path: KeyPath, what: string): string {
    if (typeof v === 'number') return String(v);
    if (typeof v !== 'string' || v === '') this.fail(path, `${what} must be a non-empty string`);
    return v;
  }

  strList(v: unknown, path: KeyPath, what: string): string[] {
    if (v === null || v === undefined) return [];
    const list = Array.isArray(v) ? v : [v];
    return list.map((x, i) => this.str(x, Array.isArray(v) ? [...path, i] : path, what));
  }

  oneOf<T extends string>(v: unknown, path: KeyPath, allowed: readonly T[]): T {
    if (typeof v !== 'string' || !allowed.includes(v as T)) {
      this.fail(path, `must be one of ${allowed.join(', ')}, not ${JSON.stringify(v)}`);
    }
    return v as T;
  }

  int(v: unknown, path: KeyPath, min: number, max: number, unit: string): number {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
      // JSON has no Infinity or NaN (`1e400`, `.inf`, `.nan` would read "not null")
      this.fail(path, `must be a whole number of ${unit} between ${min} and ${max}, not ${typeof v === 'number' && !Number.isFinite(v) ? String(v) : JSON.stringify(v)}`);
    }
    return v;
  }
}

/** Several configuration problems; the message has one `where: what` line per problem. */
export class ConfigErrors extends ConfigError {
  constructor(readonly errors: ConfigError[]) {
    super('', errors.map((e) => e.message).join('\n'));
    this.name = 'ConfigErrors';
  }
}

function distance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...new Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
  }
  return d[a.length]![b.length]!;
}
