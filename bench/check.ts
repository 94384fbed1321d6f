/**
 * bench-check: what `dnsseal check` (and `run`, which reads its config through the same check)
 * costs on top of loading, for a rules file of 1,000,000 rules (45% exact, 35% suffix, 10%
 * prefix, 10% infix, as bench-rules; a few hundred of them shadowed): the load alone, the
 * one-pass check (load + warnings), and the shadow analysis alone. Prints figures.
 *
 *   node_modules/.bin/bun bench/check.ts [RULES]
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkConfig } from '../src/config/check.ts';
import { findShadows } from '../src/config/check-shadows.ts';
import { fileDeps, loadConfig } from '../src/config/load.ts';
import { parseCondition } from '../src/policy/condition.ts';
import { since, stamp } from './cpu-clock.ts';
import { rulePattern } from './rule-mix.ts';

const N = Number(process.argv[2] ?? 1_000_000);
const patterns = Array.from({ length: N }, (_, i) => rulePattern(i, { shadowed: true }));
const dir = mkdtempSync(join(tmpdir(), 'dnsseal-bench-check-'));
const rulesPath = join(dir, 'bench.rules');
writeFileSync(rulesPath, patterns.join('\n') + '\n');
const values = new Map([
  ['config', ['none']],
  ['upstream', ['127.0.0.1']],
  ['channel', ['hub=tunnel:192.0.2.1']],
  ['rules-file', [`${rulesPath},channel=hub`]],
]);
const ms = (x: { wall: number; cpu: number }) => `${(x.cpu / 1e6).toFixed(0).padStart(5)} ms on-CPU (${(x.wall / 1e6).toFixed(0)} ms wall)`;
try {
  for (let round = 0; round < 2; round++) {
    Bun.gc(true);
    const a = stamp();
    loadConfig(values, fileDeps);
    const load = since(a);
    Bun.gc(true);
    const b = stamp();
    const r = checkConfig(values, fileDeps);
    const check = since(b);
    Bun.gc(true);
    const b2 = stamp();
    checkConfig(values, fileDeps, { maxShadowRules: 100_000 });
    const checkRun = since(b2);
    const rules = patterns.map((p) => ({ condition: parseCondition(p) }));
    Bun.gc(true);
    const c = stamp();
    const shadows = findShadows(rules);
    const shadow = since(c);
    console.log(`${N} rules, round ${round + 1}:`);
    console.log(`  load (run before)        ${ms(load)}`);
    console.log(`  check (load + warnings)  ${ms(check)}  ${r.warnings.length} warnings, ${r.errors.length} errors`);
    console.log(`  check as run reads it   ${ms(checkRun)}  (tables over 100,000 rules not searched for dead rules)`);
    console.log(`  shadow analysis alone    ${ms(shadow)}  ${shadows.length} shadowed`);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
