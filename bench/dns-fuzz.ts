/**
 * The long fuzz target for the DNS readers and writers: the same property as
 * test/dns/mutation.test.ts, for N mutations (default 2,000,000) from a random or given seed.
 *   bun bench/dns-fuzz.ts [N] [SEED]
 * Prints the seed so a failure can be replayed; exits non-zero on the first violation.
 */
import { checkOne } from '../test/dns/mutation-check.ts';
import { Rng } from '../test/dns/mutate.ts';

const n = Number(process.argv[2] ?? 2_000_000);
const seed = Number(process.argv[3] ?? (Math.random() * 2 ** 32) >>> 0);
const rng = new Rng(seed);
const t0 = performance.now();
for (let i = 0; i < n; i++) {
  const v = checkOne(rng);
  if (v) {
    console.error(`dns-fuzz: seed ${seed}, case ${i}: ${v}`);
    process.exit(1);
  }
  if (i % 500_000 === 499_999) console.log(`dns-fuzz: ${i + 1} cases, ${((performance.now() - t0) / 1000).toFixed(1)} s`);
}
console.log(`dns-fuzz: seed ${seed}: ${n} mutated queries and answers, no violation (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
