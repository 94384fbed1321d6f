/**
 * The rule tables the rule benchmarks load (bench/rules.ts, bench/check.ts): N patterns, 45%
 * exact names, 35% suffix zones, 10% prefix and 10% infix (block lists and corporate lists are
 * mostly exact names and zones; prefix and infix rules are rarer), from a seeded generator so
 * every run builds the same table.
 */
let seed = 12345;
export const rand = (): number => {
  seed = (Math.imul(seed ^ (seed >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0;
  return seed / 0x100000000;
};
export const TLDS = ['com', 'net', 'org', 'jp', 'co.jp', 'ne.jp', 'de', 'example', 'io', 'co.uk'];
export const WORDS = ['mail', 'www', 'api', 'cdn', 'git', 'vpn', 'corp', 'shop', 'app', 'login', 'static', 'img'];
export const pick = <T>(a: T[]): T => a[Math.floor(rand() * a.length)]!;
const domain = (i: number) => `d${i.toString(36)}.${pick(TLDS)}`;

/** Rule `i` of the mix; with `shadowed`, one in 4096 names a zone an earlier suffix rule may hold (check's shadow warnings). */
export function rulePattern(i: number, o: { shadowed?: boolean } = {}): string {
  const r = rand();
  if (o.shadowed && i > 0 && (i & 4095) === 0) return `www.d${(i - 1).toString(36)}.com`;
  if (r < 0.45) return `${pick(WORDS)}.${domain(i)}`;
  if (r < 0.8) return `*.${domain(i)}`;
  if (r < 0.9) return `p${i.toString(36)}.*`;
  return `*.x${i.toString(36)}.*`;
}
