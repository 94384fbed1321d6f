/**
 * `dnsseal check`: every problem of a configuration in one pass — syntax, values, references,
 * files, flags — as `file:line: key: what is wrong — what to do`, plus the warnings
 * (check-warnings.ts). `run` and `reload` read their configuration through here too, so their
 * errors read the same and their warnings are logged.
 *
 * The loader stops at the first kind of problem (a YAML error hides an unknown channel); here
 * the file and flags are read as far as they can be (load.ts `readDraft` with a reporter) and the
 * whole-configuration checks (finalize.ts) run on what was read. Errors that only follow from
 * an earlier one are left out: a rule naming a channel whose definition could not be read is
 * not also "unknown channel", and checks against a setting whose value could not be read are
 * not reported against its default.
 */
import type { Config } from './types.ts';
import { ConfigError } from '../util/errors.ts';
import { finalize } from './finalize.ts';
import { readDraft, type LoadDeps } from './load.ts';
import { ConfigErrors, isObj, type YamlDoc } from './yaml-doc.ts';
import type { KeyPath } from './yaml-locator.ts';
import { SETTINGS } from './settings.ts';
import { configWarnings, type CheckEnv, type Located } from './check-warnings.ts';

export type { CheckEnv } from './check-warnings.ts';

/** One error or warning, as `check --json` prints it. */
export interface Problem {
  /** The file it is in; null for a flag. */
  file: string | null;
  /** 1-based; null for a flag. */
  line: number | null;
  /** The key path (`tables.default[2].channel`) or the flag (`--listen`); null when neither is known. */
  key: string | null;
  /** What is wrong and what to do. */
  message: string;
}

export interface CheckResult {
  /** The configuration, when there is no error. */
  config?: Config;
  errors: Problem[];
  warnings: Problem[];
}

/** `file:line: key: message` (the parts that are known). */
export function problemText(p: Problem): string {
  const at = p.file !== null ? `${p.file}${p.line !== null ? `:${p.line}` : ''}: ` : '';
  return `${at}${p.key !== null ? `${p.key}: ` : ''}${p.message}`;
}

/** `tables.default[2].channel`. */
export function keyText(path: KeyPath): string {
  return path.map((s, i) => (typeof s === 'number' ? `[${s}]` : i === 0 ? s : `.${s}`)).join('');
}

/** ConfigErrors (and a rules file's several `where: what` lines in one error) → one entry each. */
function flatten(err: ConfigError, out: Located[]): void {
  if (err instanceof ConfigErrors) {
    for (const e of err.errors) flatten(e, out);
    return;
  }
  if (err.where === '' && err.message.includes('\n')) {
    for (const line of err.message.split('\n')) {
      const m = /^(\S.*?:\d+|--[\w-]+): (.*)$/.exec(line);
      out.push(m ? { where: m[1]!, message: m[2]! } : { where: '', message: line });
    }
    return;
  }
  const prefix = `${err.where}: `;
  out.push({ where: err.where, message: err.where && err.message.startsWith(prefix) ? err.message.slice(prefix.length) : err.message });
}

/** A located message → a Problem; the key comes from the line of the config file (`doc`). */
function toProblem(l: Located, doc: YamlDoc | undefined): Problem {
  const m = /^(.*):(\d+)$/.exec(l.where);
  if (!m) {
    return { file: null, line: null, key: l.where || null, message: l.message };
  }
  const file = m[1]!;
  const line = Number(m[2]);
  const path = doc && file === doc.source ? doc.pathAt(line) : undefined;
  if (!path) return { file, line, key: null, message: l.message };
  const key = keyText(path);
  // messages often begin with the key already (`listen: "5" is not …`): say it once
  const leaf = [...path].reverse().find((s) => typeof s === 'string');
  let message = l.message;
  for (const k of [key, leaf]) if (k !== undefined && message.startsWith(`${k}: `)) message = message.slice(k.length + 2);
  return { file, line, key, message };
}

/** Config file first (by line), then other files (rules files, by name and line), then flags. */
function order(ps: Problem[], source: string): Problem[] {
  const rank = (p: Problem) => (p.file === source ? 0 : p.file !== null ? 1 : 2);
  return ps
    .map((p, i) => ({ p, i }))
    .sort((a, b) => rank(a.p) - rank(b.p) || (a.p.file ?? '').localeCompare(b.p.file ?? '') || (a.p.line ?? 0) - (b.p.line ?? 0) || a.i - b.i)
    .map((x) => x.p);
}

/** What `reference` in a message points at and where such names are defined in the file. */
const REFERENCES: Array<[RegExp, string]> = [
  [/unknown channel "([^"]+)"/, 'channels'],
  [/unknown upstream "([^"]+)"/, 'upstreams'],
  [/unknown tsig key "([^"]+)"/, 'tsig_keys'],
  [/unknown table "([^"]+)"/, 'tables'],
];

/**
 * Errors that only follow from another: a reference to a name the file defines but that could
 * not be read (its own error says why), and whole-configuration checks about a value setting
 * whose value could not be read (they ran against its default).
 */
function consequential(l: Located, root: Record<string, unknown> | undefined, unread: string[]): boolean {
  for (const [re, section] of REFERENCES) {
    const m = re.exec(l.message);
    const defined = root?.[section];
    if (m && isObj(defined) && m[1]! in defined) return true;
  }
  return unread.some((k) => l.message.includes(k));
}

export function checkConfig(values: Map<string, string[]>, deps: LoadDeps, env: CheckEnv = {}): CheckResult {
  const read: ConfigError[] = [];
  const r = readDraft(values, deps, (e) => read.push(e));
  const located: Located[] = [];
  for (const e of read) flatten(e, located);
  const root = r.doc?.root;
  // value settings given in the file or by a flag that could not be read (each has its own error)
  const unread = SETTINGS.filter((s) => {
    if (s.kind !== 'value') return false;
    const got = r.draft.values.get(s.key);
    return (root !== undefined && s.key in root && !got) || (s.flag !== null && values.has(s.flag.name) && got?.where !== `--${s.flag.name}`);
  }).map((s) => s.key);
  const whole: Located[] = [];
  let config: Config | undefined;
  // an unreadable or unparsable file leaves nothing to check the flags against
  const fileRead = r.text !== undefined && r.doc !== undefined;
  if (fileRead) {
    try {
      config = finalize(r.draft, deps);
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      flatten(err, whole);
    }
  }
  for (const l of whole) if (located.length === 0 || !consequential(l, root, unread)) located.push(l);
  const warned = fileRead ? configWarnings(r.draft, env, { modeUnknown: unread.includes('mode') }) : [];
  const errors = order(located.map((l) => toProblem(l, r.doc)), r.source);
  // a warning where an error already stands says nothing new
  const at = new Set(errors.filter((e) => e.line !== null).map((e) => `${e.file}:${e.line}`));
  const warnings = order(
    warned.map((l) => toProblem(l, r.doc)).filter((w) => w.line === null || !at.has(`${w.file}:${w.line}`)),
    r.source,
  );
  return errors.length === 0 ? { config: config!, errors, warnings } : { errors, warnings };
}
