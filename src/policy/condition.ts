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
