import { describe, expect, test } from 'bun:test';
import { matchCondition, parseCondition } from '../../src/policy/condition.ts';
import { normalizeName } from '../../src/policy/name.ts';

const labels = (n: string) => normalizeName(n)!.split('.');

describe('policy/condition', () => {
  test.each([
    ['taro.nec.co.jp', 'exact', ['taro', 'nec', 'co', 'jp']],
    ['*.myfriends.com', 'suffix', ['myfriends', 'com']],
    ['**.myfriends.com', 'subdomain', ['myfriends', 'com']],
    ['**.Bücher.example.', 'subdomain', ['xn--bcher-kva', 'example']],
    ['sato.*', 'prefix', ['sato']],
    ['*.satofamily.*', 'infix', ['satofamily']],
    ['*.biglobe.ne.*', 'infix', ['biglobe', 'ne']],
    ['Taro.NEC.co.jp.', 'exact', ['taro', 'nec', 'co', 'jp']],
    ['*.Bücher.example', 'suffix', ['xn--bcher-kva', 'example']],
    ['_sip._tcp.example.com', 'exact', ['_sip', '_tcp', 'example', 'com']],
  ])('parses %p as %p when written that way', (pattern, kind, fixed) => {
    const c = parseCondition(pattern);
    expect(c.kind).toBe(kind as never);
    expect(c.labels).toEqual(fixed);
  });

  test.each([
    ['', /empty/],
    ['*', /every name/],
    ['*.*', /every name/],
    ['foo*.com', /whole label/],
    ['a.*.com', /whole label/],
    ['a..com', /empty label/],
    ['-a.com', /letters, digits/],
    ['a b.com', /not a valid|letters/],
    [`${'x'.repeat(64)}.com`, /longer than 63/],
    ['+.corp.example', /"\*\.corp\.example" for corp\.example and every name under it, or "\*\*\.corp\.example" for the names under it only/],
    ['**.corp.*', /only starts a subdomain pattern/],
    ['**', /no fixed label/],
    ['a.**.com', /whole label/],
  ])('refuses %p when the pattern is malformed', (pattern, message) => {
    expect(() => parseCondition(pattern)).toThrow(message);
  });

  // The patent's figure 2 CUG table (¶0057), each condition with names it must and must not
  // match: `*` is any number of labels, none included (issue 11 item 11).
  test.each([
    ['taro.nec.co.jp', ['taro.nec.co.jp', 'TARO.Nec.Co.Jp.', 'taro.nec.co.jp.'], ['x.taro.nec.co.jp', 'nec.co.jp', 'taro.nec.co', 'taro.nec.co.jp.x']],
    ['jiro.biglobe.ne.jp', ['jiro.biglobe.ne.jp'], ['jiro.biglobe.ne', 'a.jiro.biglobe.ne.jp', 'jirobiglobe.ne.jp']],
    ['*.myfriends.com', ['myfriends.com', 'a.myfriends.com', 'a.b.myfriends.com', 'A.MyFriends.COM.', 'MyFriends.com.'], ['notmyfriends.com', 'a.myfriends.com.evil', 'myfriends.com.a', 'com']],
    ['*.myfamily.com', ['myfamily.com', 'mother.myfamily.com'], ['mother.myfamily.co']],
    ['**.myfriends.com', ['a.myfriends.com', 'a.b.myfriends.com'], ['myfriends.com', 'notmyfriends.com', 'myfriends.com.a']],
    ['sato.*', ['sato.com', 'sato.co.jp', 'SATO.example.', 'sato'], ['a.sato.com', 'satoh.com']],
    ['*.satofamily.*', ['www.satofamily.com', 'a.b.satofamily.co.jp', 'satofamily.com', 'www.satofamily', 'satofamily'], ['www.xsatofamily.com', 'satofamily-x.com']],
    ['*.biglobe.ne.*', ['biglobe.ne.jp', 'www.biglobe.ne', 'biglobe.ne'], ['biglobe.jp', 'ne.biglobe.jp', 'biglobe.x.ne']],
  ])('%p matches its positives and none of its negatives', (pattern, yes, no) => {
    const c = parseCondition(pattern);
    for (const n of yes) expect([n, matchCondition(c, labels(n))]).toEqual([n, true]);
    for (const n of no) expect([n, matchCondition(c, labels(n))]).toEqual([n, false]);
  });

  // Issue 11 item 11: names the operator meant to protect, which the old reading let go in clear.
  test.each([
    ['*.corp.example', 'corp.example'],
    ['*.biglobe.*', 'biglobe.ne.jp'],
    ['*.biglobe.*', 'www.biglobe'],
    ['*.biglobe.*', 'biglobe'],
  ])('%p covers %p when the wildcard stands for no label', (pattern, name) => {
    expect(matchCondition(parseCondition(pattern), labels(name))).toBe(true);
  });

  test('matches an IDN name as its A-label when the pattern is written in Unicode', () => {
    const c = parseCondition('*.bücher.example');
    expect(matchCondition(c, labels('shop.xn--bcher-kva.example'))).toBe(true);
    expect(matchCondition(c, labels('shop.BÜCHER.example'))).toBe(true);
  });
});
