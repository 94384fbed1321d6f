import { describe, expect, test } from 'bun:test';
import { findShadows } from '../../src/config/check-shadows.ts';
import { matchCondition, parseCondition } from '../../src/policy/condition.ts';
import type { Condition } from '../../src/policy/types.ts';

const rules = (...patterns: string[]) => patterns.map((p) => ({ condition: parseCondition(p) }));

describe('config/check-shadows', () => {
  test.each([
    // [earlier, later] — the later one never wins
    ['*.corp.example', 'www.corp.example'],
    ['*.corp.example', 'corp.example'],
    ['*.corp.example', '*.a.corp.example'],
    ['*.corp.example', '**.corp.example'],
    ['*.corp.example', '**.a.corp.example'],
    ['**.corp.example', 'www.corp.example'],
    ['**.corp.example', '*.a.corp.example'],
    ['**.corp.example', '**.a.corp.example'],
    ['sato.*', 'sato.co.jp'],
    ['sato.*', 'sato.co.*'],
    ['*.biglobe.*', 'www.biglobe.ne.jp'],
    ['*.biglobe.*', '*.biglobe.ne.jp'],
    ['*.biglobe.*', '**.biglobe.ne.jp'],
    ['*.biglobe.*', 'biglobe.ne.*'],
    ['*.biglobe.*', '*.a.biglobe.b.*'],
    ['example', 'example'],
  ])('a rule is dead when an earlier %s matches every name of %s', (first, later) => {
    expect(findShadows(rules(first, later)).map((s) => [s.index, s.by])).toEqual([[1, [0]]]);
  });

  test.each([
    ['**.corp.example', 'corp.example'], // the apex is not under itself
    ['**.corp.example', '*.corp.example'], // the apex again
    ['www.corp.example', '*.corp.example'],
    ['sato.*', 'a.sato.com'],
    ['sato.*', '*.sato.com'],
    ['*.corp.example', 'sato.*'],
    ['*.corp.example', '*.corp.*'],
    ['corp.example.*', '*.corp.example'],
    ['*.a.b.*', '*.a.*'],
  ])('a rule stays live when the earlier %s leaves some of %s to it', (first, later) => {
    expect(findShadows(rules(first, later))).toEqual([]);
  });

  test('names both rules when an exact and a subdomain rule together cover a suffix rule', () => {
    expect(findShadows(rules('**.corp.example', 'corp.example', '*.corp.example'))).toEqual([{ index: 2, by: [0, 1], duplicate: false }]);
  });

  test('flags a rule written twice as a duplicate when the pattern repeats', () => {
    expect(findShadows(rules('*.corp.example', 'x.example', '*.CORP.example.'))).toEqual([{ index: 2, by: [0], duplicate: true }]);
  });

  test('never reports a rule that comes before the one covering it', () => {
    expect(findShadows(rules('www.corp.example', '*.corp.example'))).toEqual([]);
  });

  /**
   * Against the reference semantics: random small tables over a three-label alphabet, every
   * name of up to six labels over that alphabet plus a label no pattern holds. A reported rule
   * must be covered (every name it matches is matched by one of the rules named), and a rule
   * that one earlier rule covers must be reported.
   */
  test('agrees with matchCondition on every name when tables are random', () => {
    const alphabet = ['a', 'b', 'c'];
    const names: string[][] = [[]];
    const all: string[][] = [];
    for (let len = 1; len <= 6; len++) {
      const next: string[][] = [];
      for (const n of names.filter((x) => x.length === len - 1)) for (const l of [...alphabet, 'z']) next.push([...n, l]);
      names.push(...next);
      all.push(...next);
    }
    let seed = 7;
    const rand = (n: number) => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) % n);
    const randomPattern = (): string => {
      const labels = Array.from({ length: 1 + rand(2) }, () => alphabet[rand(3)]!).join('.');
      return [labels, `*.${labels}`, `**.${labels}`, `${labels}.*`, `*.${labels}.*`][rand(5)]!;
    };
    const covers = (a: Condition, b: Condition) => all.every((n) => !matchCondition(b, n) || matchCondition(a, n));
    let reported = 0;
    for (let t = 0; t < 300; t++) {
      const conds = Array.from({ length: 2 + rand(4) }, () => parseCondition(randomPattern()));
      const shadows = new Map(findShadows(conds.map((condition) => ({ condition }))).map((s) => [s.index, s]));
      conds.forEach((b, i) => {
        const s = shadows.get(i);
        if (s) {
          reported++;
          expect(s.by.every((j) => j < i)).toBe(true);
          const uncovered = all.find((n) => matchCondition(b, n) && !s.by.some((j) => matchCondition(conds[j]!, n)));
          expect({ rule: b.pattern, uncovered }).toEqual({ rule: b.pattern, uncovered: undefined });
        } else {
          const single = conds.slice(0, i).find((a) => covers(a, b));
          expect({ rule: b.pattern, coveredBy: single?.pattern }).toEqual({ rule: b.pattern, coveredBy: undefined });
        }
      });
    }
    expect(reported).toBeGreaterThan(50);
  });
});
