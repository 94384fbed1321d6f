import { describe, expect, test } from 'bun:test';
import { RuleMatcher } from '../../src/policy/matcher.ts';
import { matchCondition, parseCondition } from '../../src/policy/condition.ts';

const FIG2 = ['taro.nec.co.jp', 'jiro.biglobe.ne.jp', '*.myfriends.com', '*.myfamily.com', 'sato.*', '*.satofamily.*'];

/** The slow, obviously right answer: scan in order. */
function reference(patterns: string[], name: string): number {
  const conds = patterns.map(parseCondition);
  const l = name.split('.');
  return conds.findIndex((c) => matchCondition(c, l));
}

/** Deterministic PRNG so a failure reproduces. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s ^ (s >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0;
    return s / 0x100000000;
  };
}

describe('policy/matcher', () => {
  test.each([
    ['taro.nec.co.jp', 0],
    ['jiro.biglobe.ne.jp', 1],
    ['a.myfriends.com', 2],
    ['myfriends.com', 2],
    ['satofamily', 5],
    ['satofamily.com', 5],
    ['www.satofamily', 5],
    ['sato', 4],
    ['x.y.myfamily.com', 3],
    ['sato.example.org', 4],
    ['www.satofamily.net', 5],
    ['sato.satofamily.com', 4],
    ['example.com', -1],
    ['', -1],
  ])('finds rule index for %p as %p when matched against figure 2', (name, want) => {
    expect(new RuleMatcher(FIG2.map(parseCondition)).match(name)).toBe(want);
  });

  test('returns the first rule in table order when several kinds match', () => {
    const m = new RuleMatcher(['*.b.*', 'a.*', '*.c', 'a.b.c'].map(parseCondition));
    expect(m.match('a.b.c')).toBe(0);
    const m2 = new RuleMatcher(['a.b.c', '*.c', 'a.*', '*.b.*'].map(parseCondition));
    expect(m2.match('a.b.c')).toBe(0);
    const m3 = new RuleMatcher(['x.*', '*.c', 'a.*'].map(parseCondition));
    expect(m3.match('a.b.c')).toBe(1);
  });

  // Issue 11 item 11: the apex of a suffix rule and the label sequence at either end of the
  // name are covered (they went out in clear before); `**.` keeps the strict reading.
  test.each([
    [['*.corp.example'], 'corp.example', 0],
    [['*.corp.example'], 'CORP.example.', 0],
    [['**.corp.example'], 'corp.example', -1],
    [['**.corp.example'], 'a.corp.example', 0],
    [['**.corp.example', '*.corp.example'], 'corp.example', 1],
    [['**.corp.example', '*.corp.example'], 'x.corp.example', 0],
    [['*.biglobe.*'], 'biglobe.ne.jp', 0],
    [['*.biglobe.*'], 'www.biglobe', 0],
    [['*.biglobe.*'], 'biglobe', 0],
    [['*.biglobe.ne.*'], 'biglobe.ne.jp', 0],
    [['*.biglobe.ne.*'], 'www.biglobe.ne', 0],
    [['*.biglobe.ne.*'], 'biglobe.ne', 0],
    [['sato.co.*'], 'sato.co', 0],
    [['x.*', 'a.b.*', '*.c.d'], 'c.d', 2],
  ])('%p matches %p at rule %p when the wildcard stands for no label', (patterns, name, want) => {
    expect(new RuleMatcher(patterns.map(parseCondition)).match(name)).toBe(want);
  });

  test('keeps the earliest of duplicate patterns and its payload when a pattern repeats', () => {
    const m = new RuleMatcher(['zz.example', '*.example', '*.example', 'zz.example'].map(parseCondition), [10, 11, 12, 13]);
    expect([m.match('zz.example'), m.payload]).toEqual([0, 10]);
    expect([m.match('yy.example'), m.payload]).toEqual([1, 11]);
  });

  test.each([
    ['A.MyFriends.COM.', 0],
    ['a.myfriends.com', 0],
    ['shop.BÜCHER.example', 1],
    ['a..myfriends.com', -1],
    ['.', -1],
  ])('normalises %p itself when the name comes raw', (name, want) => {
    const m = new RuleMatcher(['*.myfriends.com', '*.bücher.example'].map(parseCondition));
    expect(m.match(name)).toBe(want);
  });

  test('agrees with the linear reference when rules and names are random', () => {
    const r = rng(42);
    const alphabet = ['a', 'b', 'c', 'd'];
    const randName = (min: number, max: number) => {
      const n = min + Math.floor(r() * (max - min + 1));
      return Array.from({ length: n }, () => alphabet[Math.floor(r() * alphabet.length)]).join('.');
    };
    for (let round = 0; round < 40; round++) {
      const patterns: string[] = [];
      for (let i = 0; i < 12; i++) {
        const fixed = randName(1, 3);
        const k = Math.floor(r() * 5);
        patterns.push(k === 0 ? fixed : k === 1 ? `*.${fixed}` : k === 2 ? `${fixed}.*` : k === 3 ? `*.${fixed}.*` : `**.${fixed}`);
      }
      const m = new RuleMatcher(patterns.map(parseCondition), patterns.map((_, i) => 1000 + i));
      for (let j = 0; j < 60; j++) {
        const name = randName(1, 6);
        const want = reference(patterns, name);
        const got = m.match(name);
        expect([patterns, name, got]).toEqual([patterns, name, want]);
        if (got >= 0) expect([name, m.payload]).toEqual([name, 1000 + got]);
      }
    }
  });
});

describe('policy/hash-index', () => {
  test('keeps every entry findable when the table grows past its expected size', async () => {
    const { HashIndex, hashKey } = await import('../../src/policy/hash-index.ts');
    const idx = new HashIndex(4);
    // short keys (inline in the slot), long ones (spilling into the pool), and near twins
    const keys = Array.from({ length: 500 }, (_, i) =>
      i % 3 === 0 ? `k${i}.example` : i % 3 === 1 ? `a-rather-long-label-${i}.example.org` : `a-rather-long-label-${i - 1}.example.orh`,
    );
    keys.forEach((k, i) => idx.add(k, i, i % 7));
    keys.forEach((k, i) => {
      const bytes = new TextEncoder().encode(k);
      expect([k, idx.find(hashKey(k), bytes, 0, bytes.length), idx.hitPayload]).toEqual([k, i, i % 7]);
    });
    for (const m of ['nope.example', 'a-rather-long-label-1.example.orx', 'b-rather-long-label-1.example.org', 'k3.exampl']) {
      const bytes = new TextEncoder().encode(m);
      expect([m, idx.find(hashKey(m), bytes, 0, bytes.length)]).toEqual([m, -1]);
    }
  });
});
