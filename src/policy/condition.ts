/**
 * Rule conditions as in the patent's figure 2, parsed from the pattern text:
 *
 *   taro.nec.co.jp     exact   the name itself
 *   *.myfriends.com    suffix  strict subdomains (a.myfriends.com, a.b.myfriends.com); NOT the apex
 *   sato.*             prefix  first label(s) fixed, at least one label after
 *   *.biglobe.*        infix   the label sequence with at least one label before and after
 *
 * `*` stands for one or more whole labels and may only appear as the first and/or last label.
 */
import type { Condition, ConditionKind } from './types.ts';
import { canonicalLabels } from './name.ts';

const LABEL_RE = '[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?';
/** Plain lower-case ASCII patterns (nearly all of them): one regex instead of per-label work. */
const FAST = new RegExp(`^(\\*\\.)?(${LABEL_RE}(?:\\.${LABEL_RE})*?)(\\.\\*)?\\.?$`);

/** Parses a pattern or throws an Error whose message says what is wrong and what to write. */
export function parseCondition(pattern: string): Condition {
  if (typeof pattern !== 'string' || pattern.trim() === '') throw new Error('the pattern is empty');
  const fast = pattern.length <= 257 ? FAST.exec(pattern) : null;
  if (fast && fast[2]!.length <= 253) {
    const kind: ConditionKind = fast[1] ? (fast[3] ? 'infix' : 'suffix') : fast[3] ? 'prefix' : 'exact';
    return { kind, labels: fast[2]!.split('.'), pattern };
  }
  const text = pattern.trim().replace(/\.$/, '');
  if (text === '*' || text === '*.*') {
    throw new Error(`"${pattern}" would match every name; write the domains to protect, e.g. "*.corp.example"`);
  }
  const parts = text.split('.');
  const lead = parts[0] === '*';
  const tail = parts.length > 1 && parts[parts.length - 1] === '*';
  const fixed = parts.slice(lead ? 1 : 0, tail ? parts.length - 1 : parts.length);
  if (fixed.length === 0) throw new Error(`"${pattern}" has no fixed label`);
  for (const p of fixed) {
    if (p.includes('*')) {
      throw new Error(
        `"${pattern}": "*" must be a whole label at the start or end (exact "a.b", suffix "*.b", prefix "a.*", infix "*.a.*")`,
      );
    }
  }
  let labels: string[];
  try {
    labels = canonicalLabels(fixed.join('.'));
  } catch (err) {
    throw new Error(`"${pattern}": ${(err as Error).message}`);
  }
  const kind: ConditionKind = lead ? (tail ? 'infix' : 'suffix') : tail ? 'prefix' : 'exact';
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
      return n > f.length && eqAt(n - f.length);
    case 'prefix':
      return n > f.length && eqAt(0);
    case 'infix':
      for (let at = 1; at + f.length <= n - 1; at++) if (eqAt(at)) return true;
      return false;
  }
}
