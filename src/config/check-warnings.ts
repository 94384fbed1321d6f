/**
 * What a configuration says that is valid but almost certainly not meant — `dnsseal check`
 * prints these as warnings (they never fail it), `run` logs them at start and on reload:
 *
 *  - a rule that can never win (an earlier rule of its table matches every name it matches,
 *    or the same pattern written twice: check-shadows.ts);
 *  - a setting the mode ignores (`lan` in host mode: the settings table's `modes`);
 *  - an interface (`lan`, `wan`) this machine does not have (a typo protects nothing);
 *  - a listen address reachable from outside (not loopback, not a private range) while no
 *    `allow_clients` restricts who may ask: an open resolver.
 *
 * Each warning is located like an error (`file:line` or `--flag`); check.ts adds the key, so
 * messages do not start with it.
 */
import { parseHostPort } from './address.ts';
import { findShadows } from './check-shadows.ts';
import type { Draft, DraftTable } from './draft.ts';
import { PackedRules } from '../policy/packed-rules.ts';
import type { Condition } from '../policy/types.ts';
import { SETTINGS } from './settings.ts';
import { MODES, type Mode } from './setting.ts';
import { parseCidr, PrefixTable } from '../policy/cidr.ts';

export interface Located {
  where: string;
  message: string;
}

/** What the checks need from the machine; absent: that check is skipped. */
export interface CheckEnv {
  /** The network interfaces that exist here (names), or undefined when they cannot be listed. */
  interfaces?: () => readonly string[] | undefined;
  /**
   * Tables with more rules are not searched for rules that never win (a note says so): `run`
   * sets it so that a million-rule table starts as fast as before; `check` searches every table.
   */
  maxShadowRules?: number;
}

/** `rule #3 "*.corp.example" (file:12)`. */
const RULE_LABEL = (pattern: string, index: number, where: string) => `rule #${index} "${pattern}"${where ? ` (${where})` : ''}`;

function value<T>(d: Draft, key: string): T | undefined {
  const v = d.values.get(key)?.value;
  if (v !== undefined) return v as T;
  const s = SETTINGS.find((x) => x.key === key);
  return s?.kind === 'value' ? (s.default as T | undefined) : undefined;
}

/** A table's rules for the shadow search, a rules file's made here (packed in the draft: src/policy/packed-rules.ts). */
function searchable(t: DraftTable): Array<{ condition: Condition; where: { match: string } }> {
  const out: Array<{ condition: Condition; where: { match: string } }> = [];
  for (const r of t.rules) {
    if (!(r instanceof PackedRules)) out.push(r);
    else for (let i = 0; i < r.length; i++) out.push({ condition: r.condition(i), where: { match: `${r.source}:${r.line(i)}` } });
  }
  return out;
}

function shadowWarnings(d: Draft, maxRules: number): Located[] {
  const out: Located[] = [];
  for (const [id, t] of d.tables) {
    const count = t.rules.reduce((n, r) => n + (r instanceof PackedRules ? r.length : 1), 0);
    if (count > maxRules) {
      out.push({ where: t.where, message: `table "${id}" has ${count} rules: not searched for rules that never win here (about 1 s per million rules) — "dnsseal check" does` });
      continue;
    }
    const rules = searchable(t);
    for (const s of findShadows(rules)) {
      const rule = rules[s.index]!;
      const by = s.by.map((i) => RULE_LABEL(rules[i]!.condition.pattern, i, rules[i]!.where.match));
      const message = s.duplicate
        ? `table "${id}" rule #${s.index} "${rule.condition.pattern}" repeats ${by[0]}: it never wins — remove it`
        : `table "${id}" rule #${s.index} "${rule.condition.pattern}" never wins: ${by.join(' and ')} ${by.length > 1 ? 'together match' : 'matches'} every name it matches — remove it, or move it above ${by.length > 1 ? 'them' : 'that rule'} if it should win`;
      out.push({ where: rule.where.match, message });
    }
  }
  return out;
}

function modeWarnings(d: Draft, mode: Mode): Located[] {
  const out: Located[] = [];
  for (const s of SETTINGS) {
    if (s.modes.includes(mode) || s.modes.length === MODES.length) continue;
    let given: { where: string } | undefined;
    if (s.kind === 'value') {
      const v = d.values.get(s.key);
      if (v && v.value !== undefined && !(Array.isArray(v.value) && v.value.length === 0)) given = v;
    }
    if (!given) continue;
    out.push({ where: given.where, message: `mode ${mode} does not use it (only ${s.modes.join(', ')}) — remove it, or set the mode that needs it` });
  }
  return out;
}

function interfaceWarnings(d: Draft, mode: Mode, env: CheckEnv): Located[] {
  const present = env.interfaces?.();
  if (!present) return [];
  const have = new Set(present);
  const list = [...have].sort().join(', ');
  const out: Located[] = [];
  for (const key of ['lan', 'wan'] as const) {
    if (key === 'lan' && mode === 'host') continue; // reported as a setting the mode ignores
    const given = d.values.get(key);
    for (const name of (given?.value as string[] | undefined) ?? []) {
      if (have.has(name)) continue;
      const then = key === 'wan' ? 'the leak guard goes on it when it appears' : 'its clients are marked from when it appears';
      out.push({ where: given!.where, message: `interface "${name}" does not exist here (interfaces: ${list || 'none'}); ${then} — check the name` });
    }
  }
  return out;
}

/** Loopback, private, CGNAT, link-local and ULA ranges: listening there is not reachable from the internet. */
const INTERNAL = (() => {
  const t = new PrefixTable<true>();
  for (const c of ['127.0.0.0/8', '10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '100.64.0.0/10', '169.254.0.0/16', '::1/128', 'fc00::/7', 'fe80::/10']) {
    t.add(parseCidr(c), true);
  }
  return t;
})();

function openResolverWarnings(d: Draft): Located[] {
  const allow = d.values.get('allow_clients')?.value;
  if (Array.isArray(allow) && allow.length > 0) return [];
  const listen = value<string[]>(d, 'listen') ?? [];
  const where = d.values.get('listen')?.where ?? '--listen';
  const open: string[] = [];
  for (const l of listen) {
    let address: string;
    try {
      address = parseHostPort(l, 53).address;
    } catch {
      continue; // reported as an error
    }
    if (INTERNAL.lookup(address) !== true) open.push(l);
  }
  if (open.length === 0) return [];
  const any = open.some((l) => /^(0\.0\.0\.0|\[::\])(:|$)/.test(l));
  return [
    {
      where,
      message:
        `${open.join(', ')} ${any ? 'answers on every address of this machine, public ones included' : 'is a public address'}, and no allow_clients restricts who may ask — ` +
        'an open resolver anyone can use (and abuse for amplification); set allow_clients to your client ranges, or listen on a LAN or loopback address',
    },
  ];
}

/**
 * Every warning for a draft (read from the file and the flags), in the order the checks run.
 * `modeUnknown`: the mode was given but could not be read (an error says so); the checks that
 * depend on the mode are left out rather than run against the default.
 */
export function configWarnings(d: Draft, env: CheckEnv = {}, opts: { modeUnknown?: boolean } = {}): Located[] {
  const mode = value<Mode>(d, 'mode') ?? 'host';
  const byMode = opts.modeUnknown ? [] : [...modeWarnings(d, mode), ...interfaceWarnings(d, mode, env)];
  return [...shadowWarnings(d, env.maxShadowRules ?? Infinity), ...byMode, ...openResolverWarnings(d)];
}
