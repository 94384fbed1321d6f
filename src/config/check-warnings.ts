/**
 * What a configuration says that is valid but almost certainly not meant — `dnsseal check`
 * prints these as warnings (they never fail it), `run` logs them at start and on reload:
 *
 *  - a rule that can never win (an earlier rule of its table matches every name it matches,
 *    or the same pattern written twice: check-shadows.ts) — for protection, among the rules
 *    with a channel (forwarding rules take no part in it); for the upstream, among all rules;
 *  - a protecting rule whose names a forwarding rule above it sends to another upstream than
 *    its own (it still protects them, but its upstream is never asked);
 *  - a setting the mode ignores (`lan` in host mode: the settings table's `modes`);
 *  - an interface (`lan`, `wan`) this machine does not have (a typo protects nothing);
 *  - a listen address reachable from outside (not loopback, not a private range) while no
 *    `allow_clients` restricts who may ask: an open resolver.
 *
 * Each warning is located like an error (`file:line` or `--flag`); check.ts adds the key, so
 * messages do not start with it.
 */
import { parsedListen } from './address.ts';
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

interface SearchRule {
  condition: Condition;
  where: { match: string };
  /** Absent: a forwarding rule. */
  channel?: string | undefined;
  upstream?: string | undefined;
}

/** A table's rules for the shadow search, a rules file's made here (packed in the draft: src/policy/packed-rules.ts). */
function searchable(t: DraftTable): SearchRule[] {
  const out: SearchRule[] = [];
  for (const r of t.rules) {
    if (!(r instanceof PackedRules)) out.push(r);
    else for (let i = 0; i < r.length; i++) out.push({ condition: r.condition(i), where: { match: `${r.source}:${r.line(i)}` }, channel: r.channel(i), upstream: r.upstream(i) });
  }
  return out;
}

/**
 * Rules that never win, by the two steps' own rule (README "Rules"): the upstream is the first
 * rule's of all that match the query name, the protection the first rule's *with a channel* that
 * matches a name of the chain. So a protecting rule is dead when earlier protecting rules cover
 * it; a forwarding rule when any earlier rules do; and a protecting rule that only a forwarding
 * rule covers still protects, but goes to that rule's upstream — said when it is not its own.
 */
function shadowWarnings(d: Draft, maxRules: number): Located[] {
  const out: Located[] = [];
  for (const [id, t] of d.tables) {
    const count = t.rules.reduce((n, r) => n + (r instanceof PackedRules ? r.length : 1), 0);
    if (count > maxRules) {
      out.push({ where: t.where, message: `table "${id}" has ${count} rules: not searched for rules that never win here (about 1 s per million rules) — "dnsseal check" does` });
      continue;
    }
    const rules = searchable(t);
    const label = (i: number) => RULE_LABEL(rules[i]!.condition.pattern, i, rules[i]!.where.match);
    const dead = (index: number, by: number[], duplicate: boolean) => {
      const rule = rules[index]!;
      const names = by.map(label);
      const message = duplicate
        ? `table "${id}" rule #${index} "${rule.condition.pattern}" repeats ${names[0]}: it never wins — remove it`
        : `table "${id}" rule #${index} "${rule.condition.pattern}" never wins: ${names.join(' and ')} ${names.length > 1 ? 'together match' : 'matches'} every name it matches — remove it, or move it above ${names.length > 1 ? 'them' : 'that rule'} if it should win`;
      out.push({ where: rule.where.match, message });
    };
    // the protecting rules alone (as S104 sees the table), under their table index
    const protecting: number[] = [];
    rules.forEach((r, i) => r.channel !== undefined && protecting.push(i));
    const deadProtecting = new Set<number>();
    const hasForwarding = protecting.length < rules.length;
    for (const s of findShadows(hasForwarding ? protecting.map((i) => rules[i]!) : rules)) {
      const index = hasForwarding ? protecting[s.index]! : s.index;
      deadProtecting.add(index);
      dead(index, hasForwarding ? s.by.map((b) => protecting[b]!) : s.by, s.duplicate);
    }
    if (!hasForwarding) continue;
    // every rule (as S102 sees the table)
    for (const s of findShadows(rules)) {
      const rule = rules[s.index]!;
      if (rule.channel === undefined) {
        dead(s.index, s.by, s.duplicate);
        continue;
      }
      if (deadProtecting.has(s.index)) continue;
      const own = rule.upstream ?? 'default';
      const other = s.by.find((b) => (rules[b]!.upstream ?? 'default') !== own);
      if (other === undefined) continue;
      const theirs = rules[other]!.upstream ?? 'default';
      const fix =
        rule.upstream === undefined
          ? `say "upstream: ${theirs}" on it if that is meant, or move it above ${label(other)} to resolve them through "default"`
          : `move it above ${label(other)} if its names should go to "${own}"`;
      out.push({
        where: rule.where.match,
        message:
          `table "${id}" rule #${s.index} "${rule.condition.pattern}" protects its names through "${rule.channel}", but they are resolved through upstream "${theirs}", not "${own}": ` +
          `${label(other)} matches every name it matches first and picks the upstream — ${fix}`,
      });
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

/**
 * A listen address reachable from outside (public, or every address of the machine):
 * - with no `allow_clients`, only loopback and the `lan` prefixes may ask — every other client is
 *   REFUSED, which is rarely what listening there was for: say so;
 * - with `allow_clients` holding a whole family (`0.0.0.0/0`, `::/0`), anyone may ask: an open
 *   resolver, abused for amplification.
 */
function openResolverWarnings(d: Draft): Located[] {
  const allow = d.values.get('allow_clients')?.value;
  const listen = value<string[]>(d, 'listen') ?? [];
  const where = d.values.get('listen')?.where ?? '--listen';
  const open = parsedListen(listen)
    .filter((l) => INTERNAL.lookup(l.address) !== true)
    .map((l) => l.text);
  if (open.length === 0) return [];
  const any = open.some((l) => /^(0\.0\.0\.0|\[::\])(:|$)/.test(l));
  const what = `${open.join(', ')} ${any ? 'answers on every address of this machine, public ones included' : 'is a public address'}`;
  if (!Array.isArray(allow) || allow.length === 0) {
    return [
      {
        where,
        message: `${what}, but with no allow_clients only loopback and the lan interfaces' prefixes may ask: every other client gets REFUSED — set allow_clients to the client ranges to answer`,
      },
    ];
  }
  const everyone = allow.filter((c) => typeof c === 'string' && /\/0$/.test(c.trim()));
  if (everyone.length === 0) return [];
  return [
    {
      where: d.values.get('allow_clients')!.where,
      message: `allow_clients ${everyone.join(', ')} lets anyone ask, and ${what}: an open resolver anyone can use (and abuse for amplification) — set allow_clients to your client ranges`,
    },
  ];
}

/**
 * `[::]:P` next to an IPv4 address on port P: Linux sockets on `::` are dual-stack unless
 * net.ipv6.bindv6only is 1, so `[::]` takes IPv4 port P too and the other bind fails at start.
 */
function dualStackWarnings(d: Draft): Located[] {
  const listen = value<string[]>(d, 'listen') ?? [];
  const where = d.values.get('listen')?.where ?? '--listen';
  const parsed = parsedListen(listen);
  const out: Located[] = [];
  for (const w of parsed.filter((p) => p.address === '::')) {
    const v4 = parsed.filter((o) => o.port === w.port && !o.address.includes(':'));
    if (v4.length === 0) continue;
    out.push({
      where,
      message: `${w.text} also takes IPv4 port ${w.port} on this machine unless net.ipv6.bindv6only is 1 (sockets on :: are dual-stack), so it and ${v4.map((o) => o.text).join(', ')} cannot all be bound (EADDRINUSE at start) — listen on ${w.text} alone to serve both families`,
    });
  }
  return out;
}

/**
 * Every warning for a draft (read from the file and the flags), in the order the checks run.
 * `modeUnknown`: the mode was given but could not be read (an error says so); the checks that
 * depend on the mode are left out rather than run against the default.
 */
export function configWarnings(d: Draft, env: CheckEnv = {}, opts: { modeUnknown?: boolean } = {}): Located[] {
  const mode = value<Mode>(d, 'mode') ?? 'host';
  const byMode = opts.modeUnknown ? [] : [...modeWarnings(d, mode), ...interfaceWarnings(d, mode, env)];
  return [...shadowWarnings(d, env.maxShadowRules ?? Infinity), ...byMode, ...openResolverWarnings(d), ...dualStackWarnings(d)];
}
