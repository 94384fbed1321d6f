/**
 * Forwarding rules in the config (issue 12, conditional forwarding): `{match, upstream}` without
 * a channel, `--forward PATTERN=UPSTREAM`, `PATTERN - UPSTREAM` in a rules file; the refusals at
 * their line; and the check warnings about how they shadow protecting rules.
 */
import { describe, expect, test } from 'bun:test';
import { checkConfig, problemText, type Problem } from '../../src/config/check.ts';
import { loadConfig } from '../../src/config/load.ts';
import { deps, flags } from './fixtures.ts';

const HEAD = 'upstreams:\n  default: 192.0.2.53\n  lan: 192.168.1.1\n  corp: 10.0.0.53\nchannels:\n  hub: {kind: tunnel, gateway: 192.0.2.1}\ntables:\n  default:\n';
// HEAD has 8 lines: the first rule is on line 9

function check(rules: string, extra: Map<string, string[]> = new Map(), files: Record<string, string> = {}) {
  return checkConfig(new Map([['config', ['c.yaml']], ...extra]), deps({ 'c.yaml': HEAD + rules, ...files }));
}

const texts = (ps: Problem[]) => ps.map(problemText);
const shape = (rules: readonly { condition: { pattern: string }; channel?: string; upstream?: string }[]) =>
  rules.map((r) => [r.condition.pattern, r.channel ?? null, r.upstream ?? null]);

describe('config/forwarding rules', () => {
  test('reads a rule with an upstream and no channel as a forwarding rule when the YAML has one', () => {
    const r = check('    - {match: "*.lan", upstream: lan}\n    - match: nas.lan\n      channel: hub\n');
    expect(r.errors).toEqual([]);
    expect(shape(r.config!.tables[0]!.rules)).toEqual([
      ['*.lan', null, 'lan'],
      ['nas.lan', 'hub', null],
    ]);
    expect(r.config!.tables[0]!.rules[0]).not.toHaveProperty('channel');
  });

  test('refuses a rule with neither channel nor upstream at its line', () => {
    const r = check('    - {match: "*.lan", channel: hub}\n    - match: "x.lan"\n');
    expect(texts(r.errors)).toEqual(['c.yaml:10: tables.default[1]: rule has neither "channel" (protect the names) nor "upstream" (forward them to that upstream, protecting nothing)']);
  });

  test('refuses a forwarding rule naming an unknown upstream at its line', () => {
    const r = check('    - {match: "*.lan", channel: hub}\n    - match: "x.lan"\n      upstream: lna\n');
    expect(texts(r.errors)).toEqual(['c.yaml:11: tables.default[1].upstream: table "default" rule 1 (x.lan): unknown upstream "lna" (defined: default, lan, corp)']);
  });

  test('appends --forward rules to default before the --protect ones when both flags are given', () => {
    const c = loadConfig(
      flags(['config', 'none'], ['upstream', 'default=192.0.2.53'], ['upstream', 'lan=192.168.1.1'], ['channel', 'hub=tunnel:192.0.2.1'], ['protect', 'nas.lan=hub'], ['forward', '*.lan=lan'], ['forward', '*.home.arpa=lan']),
      deps(),
    );
    expect(shape(c.tables[0]!.rules)).toEqual([
      ['*.lan', null, 'lan'],
      ['*.home.arpa', null, 'lan'],
      ['nas.lan', 'hub', null],
    ]);
    expect(c.tables[0]!.rules[0]!.source).toBe('--forward');
  });

  test.each([
    ['*.lan', /"\*\.lan" is not PATTERN=UPSTREAM/],
    ['*.lan=nope', /unknown upstream "nope"/],
    ['*.*=lan', /would match every name/],
  ])('refuses --forward %p', (text, why) => {
    const f = flags(['config', 'none'], ['upstream', 'default=192.0.2.53'], ['upstream', 'lan=192.168.1.1'], ['forward', text]);
    expect(() => loadConfig(f, deps())).toThrow(why);
  });

  test('reads "-" as no channel in a rules file, and a line without one as forwarding when the item names an upstream', () => {
    const r = check('    - rules_file: f.rules\n    - rules_file: g.rules\n      upstream: lan\n', new Map(), {
      'f.rules': '*.lan - lan\nnas.lan hub\nx.corp hub corp\n',
      'g.rules': 'printer.lan\nsafe.lan hub\n',
    });
    expect(r.errors).toEqual([]);
    expect(shape(r.config!.tables[0]!.rules)).toEqual([
      ['*.lan', null, 'lan'],
      ['nas.lan', 'hub', null],
      ['x.corp', 'hub', 'corp'],
      ['printer.lan', null, 'lan'],
      ['safe.lan', 'hub', 'lan'],
    ]);
  });

  test('refuses a rules file line with neither channel nor upstream at its line', () => {
    const r = check('    - rules_file: f.rules\n', new Map(), { 'f.rules': '# comment\n*.lan - lan\nx.lan -\ny.lan\n' });
    expect(texts(r.errors)).toEqual([
      'f.rules:3: "x.lan" has neither a channel nor an upstream (give a channel on the line or "channel:" on the rules_file item to protect it, or "- UPSTREAM" to forward it)',
      'f.rules:4: "y.lan" has neither a channel nor an upstream (give a channel on the line or "channel:" on the rules_file item to protect it, or "- UPSTREAM" to forward it)',
    ]);
  });

  test('refuses a rules file forwarding line naming an unknown upstream at its line', () => {
    const r = check('    - rules_file: f.rules\n', new Map(), { 'f.rules': '*.lan - lan\nx.home - hom\n' });
    expect(texts(r.errors)).toEqual(['f.rules:2: table "default" rule 1 (x.home): unknown upstream "hom" (defined: default, lan, corp)']);
  });
});

describe('config/forwarding rules check warnings', () => {
  test('warns that a protecting rule under a forwarding rule goes to its upstream when it names none', () => {
    const r = check('    - {match: "*.lan", upstream: lan}\n    - {match: nas.lan, channel: hub}\n');
    expect(texts(r.warnings)).toEqual([
      'c.yaml:10: tables.default[1]: table "default" rule #1 "nas.lan" protects its names through "hub", but they are resolved through upstream "lan", not "default": ' +
        'rule #0 "*.lan" (c.yaml:9) matches every name it matches first and picks the upstream — say "upstream: lan" on it if that is meant, or move it above rule #0 "*.lan" (c.yaml:9) to resolve them through "default"',
    ]);
  });

  test('warns that the upstream of a protecting rule under a forwarding rule is never asked when they differ', () => {
    const r = check('    - {match: "*.lan", upstream: lan}\n    - {match: "*.nas.lan", channel: hub, upstream: corp}\n');
    expect(texts(r.warnings)).toEqual([
      'c.yaml:10: tables.default[1]: table "default" rule #1 "*.nas.lan" protects its names through "hub", but they are resolved through upstream "lan", not "corp": ' +
        'rule #0 "*.lan" (c.yaml:9) matches every name it matches first and picks the upstream — move it above rule #0 "*.lan" (c.yaml:9) if its names should go to "corp"',
    ]);
  });

  test('does not warn when the protecting rule under a forwarding rule names the same upstream', () => {
    const r = check('    - {match: "*.lan", upstream: lan}\n    - {match: nas.lan, channel: hub, upstream: lan}\n');
    expect(r.warnings).toEqual([]);
  });

  test('warns that a forwarding rule never wins when a rule above it matches every name it matches', () => {
    const r = check('    - {match: "*.corp.example", channel: hub, upstream: corp}\n    - {match: db.corp.example, upstream: lan}\n');
    expect(texts(r.warnings)).toEqual([
      'c.yaml:10: tables.default[1]: table "default" rule #1 "db.corp.example" never wins: rule #0 "*.corp.example" (c.yaml:9) matches every name it matches — remove it, or move it above that rule if it should win',
    ]);
  });

  test('still warns that a protecting rule never wins when a protecting rule covers it past a forwarding one', () => {
    const r = check('    - {match: "*.lan", upstream: lan}\n    - {match: "*.corp", channel: hub}\n    - {match: x.corp, channel: hub}\n');
    expect(texts(r.warnings)).toEqual([
      'c.yaml:11: tables.default[2]: table "default" rule #2 "x.corp" never wins: rule #1 "*.corp" (c.yaml:10) matches every name it matches — remove it, or move it above that rule if it should win',
    ]);
  });

  test('warns about a protecting rule under a forwarding rule of a rules file at the file line', () => {
    const r = check('    - rules_file: f.rules\n', new Map(), { 'f.rules': '*.lan - lan\nnas.lan hub\n' });
    expect(r.warnings.map((w) => [w.file, w.line])).toEqual([['f.rules', 2]]);
    expect(r.warnings[0]!.message).toContain('resolved through upstream "lan", not "default"');
  });
});
