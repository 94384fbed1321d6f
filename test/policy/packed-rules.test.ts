/**
 * Rules files packed (src/policy/packed-rules.ts): a view answers exactly what a parsed rule
 * would; the in-place check of plain patterns agrees with the parser's; digests tell equal rule
 * lists from different ones; packed data and a built matcher survive the trip to another
 * thread (toData/fromData) with every answer unchanged.
 */
import { describe, expect, test } from 'bun:test';
import { parseRulesFile } from '../../src/config/rules-file.ts';
import { kindAt, parseCondition, plainKindAt, plainPattern } from '../../src/policy/condition.ts';
import { RuleMatcher } from '../../src/policy/matcher.ts';
import { PackedRules } from '../../src/policy/packed-rules.ts';
import { sameRules } from '../../src/policy/rule-list.ts';
import type { Rule } from '../../src/policy/types.ts';

const FILE = ['# header', '*.corp.example hub corp', 'git.partner.example partner', '', '**.Lab.Example', 'sato.* hub', '*.biglobe.*   ', '*.bücher.example hub', 'www.x.example.'].join('\n');

const views = (p: PackedRules): Rule[] => Array.from({ length: p.length }, (_, i) => p.view(i, i));

describe('policy/packed-rules', () => {
  test('answers for each rule what parsing its line gives', () => {
    const p = parseRulesFile(FILE, 'r.rules', { channel: 'dflt' });
    expect(p.length).toBe(7);
    const got = views(p).map((r) => ({ condition: r.condition, channel: r.channel, upstream: r.upstream, source: r.source, index: r.index }));
    const lines: Array<[string, string, string | undefined, number]> = [
      ['*.corp.example', 'hub', 'corp', 2],
      ['git.partner.example', 'partner', undefined, 3],
      ['**.Lab.Example', 'dflt', undefined, 5],
      ['sato.*', 'hub', undefined, 6],
      ['*.biglobe.*', 'dflt', undefined, 7],
      ['*.bücher.example', 'hub', undefined, 8],
      ['www.x.example.', 'dflt', undefined, 9],
    ];
    const want = lines.map(([pattern, channel, upstream, line], index) => ({ condition: parseCondition(pattern), channel, upstream, source: `r.rules:${line}`, index }));
    expect(got).toEqual(want);
    expect([0, 2, 5, 6].map((i) => p.key(i))).toEqual(['corp.example', 'lab.example', 'xn--bcher-kva.example', 'www.x.example']);
  });

  test('checks plain patterns in place exactly as the parser does when given random patterns', () => {
    const parts = ['*', '**', 'a', 'b-c', '-x', 'x-', '_', 'A', '0', 'é', '', 'ab'.repeat(40), '.'];
    let seed = 7;
    const rand = (n: number) => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) % n);
    for (let k = 0; k < 20000; k++) {
      const n = 1 + rand(5);
      let pattern = Array.from({ length: n }, () => parts[rand(parts.length)]!).join('.');
      if (rand(4) === 0) pattern += '.';
      const text = `xx ${pattern} yy`;
      const at = plainKindAt(text, 3, 3 + pattern.length);
      const want = plainPattern(pattern);
      expect([pattern, at < 0 ? null : kindAt(at)]).toEqual([pattern, want?.kind ?? null]);
    }
  });

  test('tells equal rule lists from different ones by digest', () => {
    const a = views(parseRulesFile(FILE, 'r.rules', { channel: 'dflt' }));
    const b = views(parseRulesFile(FILE, 'r.rules', { channel: 'dflt' }));
    expect(sameRules(a, b)).toBe(true);
    expect(sameRules(a, views(parseRulesFile(FILE, 'r.rules', { channel: 'other' })))).toBe(false);
    expect(sameRules(a, views(parseRulesFile(FILE.replace('sato.*', 'satoh.*'), 'r.rules', { channel: 'dflt' })))).toBe(false);
    const plain: Rule = { condition: parseCondition('first.example'), channel: 'hub', index: 0 };
    expect(sameRules([plain, ...a], [plain, ...b])).toBe(true);
    expect(sameRules([plain, ...a], [{ ...plain, channel: 'x' }, ...b])).toBe(false);
  });

  test('rebuilds the same rules from its data, as a worker hands it over', () => {
    const p = parseRulesFile(FILE, 'r.rules', { channel: 'dflt' });
    const back = PackedRules.fromData(structuredClone(p.toData().data));
    expect(views(back).map((r) => JSON.stringify(r))).toEqual(views(p).map((r) => JSON.stringify(r)));
    expect(back.digest()).toBe(p.digest());
  });

  test('matches every name the same after the index went through toData and fromData', () => {
    const rules = views(parseRulesFile(FILE, 'r.rules', { channel: 'dflt' }));
    const built = RuleMatcher.forRules(rules, rules.map((_, i) => 100 + i));
    const names = ['a.corp.example', 'corp.example', 'git.partner.example', 'x.lab.example', 'lab.example', 'sato.jp', 'www.biglobe.ne.jp', 'a.xn--bcher-kva.example', 'www.x.example', 'nope.test'];
    const want = names.map((n) => [built.match(n), built.payload]);
    const { data, buffers } = RuleMatcher.forRules(rules, rules.map((_, i) => 100 + i)).toData();
    const copy = RuleMatcher.fromData(structuredClone(data, { transfer: buffers }));
    expect(names.map((n) => [copy.match(n), copy.payload])).toEqual(want);
    expect(want.map((w) => w[0])).toEqual([0, 0, 1, 2, -1, 3, 4, 5, 6, -1]);
  });
});
