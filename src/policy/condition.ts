/**
 * Rule conditions as in the patent's figure 2 (¶0057), parsed from the pattern text:
 *
 *   taro.nec.co.jp     exact      the name itself
 *   *.myfriends.com    suffix     myfriends.com itself and every name under it
 *   **.myfriends.com   subdomain  names under myfriends.com only, NOT myfriends.com itself
 *   sato.*             prefix     names whose first label(s) are these, sato itself included
 *   *.biglobe.*        infix      names holding the label sequence anywhere (biglobe.ne.jp, www.biglobe, biglobe)
 *
 * `*` stands for any number of whole labels, none included, and may only be the first and/or
 * last label; `**` (one or more labels) only as the first label of a pattern without a trailing
 * `*`. A name the operator wrote is always covered by the pattern written around it: narrowing
 * (strict subdomains) has to be asked for with `**`.
 */
import type { Condition, ConditionKind } from './types.ts';
import { canonicalLabels } from './name.ts';

const LABEL_RE = '[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?';
/** Plain lower-case ASCII patterns (nearly all of them): one regex instead of per-label work. */
const FAST = new RegExp(`^(\\*\\*?\\.)?(${LABEL_RE}(?:\\.${LABEL_RE})*?)(\\.\\*)?\\.?$`);

/**
 * The kind of a plain lower-case ASCII pattern (nearly all of them) and where its fixed part
 * is, without building anything: what `parseCondition` would give, its labels being
 * `pattern.slice(start, end).split('.')`. Null: not plain — ask `parseCondition` (which may
 * accept it, or say what is wrong).
 */
export function plainPattern(pattern: string): { kind: ConditionKind; start: number; end: number } | null {
  const fast = pattern.length <= 257 ? FAST.exec(pattern) : null;
  if (!fast || fast[2]!.length > 253 || (fast[1] === '**.' && fast[3])) return null;
  const kind: ConditionKind = fast[1] ? (fast[3] ? 'infix' : fast[1] === '**.' ? 'subdomain' : 'suffix') : fast[3] ? 'prefix' : 'exact';
  const start = fast[1]?.length ?? 0;
  return { kind, start, end: start + fast[2]!.length };
}

const KIND_AT: readonly ConditionKind[] = ['exact', 'suffix', 'subdomain', 'prefix', 'infix'];

/** [a-z0-9_] */
const labelEdge = (c: number) => (c >= 97 && c <= 122) || (c >= 48 && c <= 57) || c === 95;

/**
 * `plainPattern` for `text[start, end)` without making a string (a rules file's scan): the
 * kind's index in `['exact', 'suffix', 'subdomain', 'prefix', 'infix']`, or -1 when the
 * pattern is not plain. A randomized test keeps the two equal.
 */
export function plainKindAt(text: string, start: number, end: number): number {
  if (end - start === 0 || end - start > 257) return -1;
  let lead = 0;
  if (text.charCodeAt(start) === 42) {
    if (text.charCodeAt(start + 1) === 46) lead = 2;
    else if (text.charCodeAt(start + 1) === 42 && text.charCodeAt(start + 2) === 46) lead = 3;
    else return -1;
  }
  let fe = end;
  if (text.charCodeAt(fe - 1) === 46) fe--; // a root dot
  const fs = start + lead;
  let tail = false;
  if (fe - 2 > fs && text.charCodeAt(fe - 1) === 42 && text.charCodeAt(fe - 2) === 46) {
    tail = true;
    fe -= 2;
  }
  if (fe <= fs || fe - fs > 253 || (lead === 3 && tail)) return -1;
  // labels: [a-z0-9_] at both ends, [a-z0-9_-] between, 1..63 long
  let ls = fs;
  for (let i = fs; i <= fe; i++) {
    const c = i < fe ? text.charCodeAt(i) : 46;
    if (c !== 46) {
      if (!labelEdge(c) && (c !== 45 || i === ls)) return -1;
      continue;
    }
    if (i === ls || i - ls > 63 || !labelEdge(text.charCodeAt(i - 1))) return -1;
    ls = i + 1;
  }
  return lead ? (tail ? 4 : lead === 3 ? 2 : 1) : tail ? 3 : 0;
}

/** The kind `plainKindAt` returns the index of. */
export function kindAt(index: number): ConditionKind {
  return KIND_AT[index]!;
}

/** Parses a pattern or throws an Error whose message says what is wrong and what to write. */
export function parseCondition(pattern: string): Condition {
  if (typeof pattern !== 'string' || pattern.trim() === '') throw new Error('the pattern is empty');
  const fast = pattern.length <= 257 ? FAST.exec(pattern) : null;
  if (fast && fast[2]!.length <= 253 && !(fast[1] === '**.' && fast[3])) {
    const kind: ConditionKind = fast[1] ? (fast[3] ? 'infix' : fast[1] === '**.' ? 'subdomain' : 'suffix') : fast[3] ? 'prefix' : 'exact';
    return { kind, labels: fast[2]!.split('.'), pattern };
  }
  const text = pattern.trim().replace(/\.$/, '');
  if (text === '*' || text === '*.*') {
    throw new Error(`"${pattern}" would match every name; write the domains to protect, e.g. "*.corp.example"`);
  }
  const parts = text.split('.');
  if (parts[0] === '+') {
    // Other tools write `+.x` for "x and its subdomains" (or for subdomains only): say which is which.
    throw new Error(`"${pattern}": write "*.${parts.slice(1).join('.')}" for ${parts.slice(1).join('.')} and every name under it, or "**.${parts.slice(1).join('.')}" for the names under it only`);
  }
  const strict = parts[0] === '**';
  const lead = strict || parts[0] === '*';
  const tail = parts.length > 1 && parts[parts.length - 1] === '*';
  if (strict && tail) throw new Error(`"${pattern}": "**" (one or more labels) only starts a subdomain pattern like "**.corp.example"; for the label anywhere write "*.${parts.slice(1, -1).join('.')}.*"`);
  const fixed = parts.slice(lead ? 1 : 0, tail ? parts.length - 1 : parts.length);
  if (fixed.length === 0) throw new Error(`"${pattern}" has no fixed label`);
  for (const p of fixed) {
    if (p.includes('*')) {
      throw new Error(
        `"${pattern}": "*" must be a whole label at the start or end (exact "a.b", suffix "*.b", subdomain "**.b", prefix "a.*", infix "*.a.*")`,
      );
    }
  }
  let labels: string[];
  try {
    labels = canonicalLabels(fixed.join('.'));
  } catch (err) {
    throw new Error(`"${pattern}": ${(err as Error).message}`);
  }
  const kind: ConditionKind = lead ? (tail ? 'infix' : strict ? 'subdomain' : 'suffix') : tail ? 'prefix' : 'exact';
  return { kind, labels, pattern: pattern.trim() };
}

/**
 * The reference semantics, one condition against one name's labels (canonical, leftmost
 * first). The indexed matcher must agree with this; tests compare the two.
 */
export function matchCondition(cond: Condition, name: string[]): boolean {
  const f = cond.labels;
  const n = name.length;
  const eqAt = (at: number) => {
    for (let i = 0; i < f.length; i++) if (name[at + i] !== f[i]) return false;
    return true;
  };
  switch (cond.kind) {
    case 'exact':
      return n === f.length && eqAt(0);
    case 'suffix':
      return n >= f.length && eqAt(n - f.length);
    case 'subdomain':
      return n > f.length && eqAt(n - f.length);
    case 'prefix':
      return n >= f.length && eqAt(0);
    case 'infix':
      for (let at = 0; at + f.length <= n; at++) if (eqAt(at)) return true;
      return false;
  }
}
