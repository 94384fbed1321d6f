/**
 * bench-rules: 1,000,000 generated rules (a mix of the four condition kinds), load time,
 * memory (RSS delta) and nanoseconds per match for hits and misses. Prints figures; asserts
 * nothing. Targets (issue #2): load ≤ 2 s, match ≤ 1 µs per name.
 *
 *   node_modules/.bin/bun bench/rules.ts [RULES]
 */
import { Policy } from '../src/policy/policy.ts';
import { parseCondition } from '../src/policy/condition.ts';
import { buildChannel } from '../src/policy/channel.ts';
import type { Rule } from '../src/policy/types.ts';
import type { Config } from '../src/config/types.ts';
import { loadConfig } from '../src/config/load.ts';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { since, stamp, type Stamp } from './cpu-clock.ts';
import { settingDefaults } from '../src/config/defaults.ts';
import { pick, rand, rulePattern, TLDS, WORDS } from './rule-mix.ts';

const N = Number(process.argv[2] ?? 1_000_000);

const LOOKUPS = 1_000_000;


const rssMB = () => process.memoryUsage().rss / 1048576;
Bun.gc(true);
const patterns = Array.from({ length: N }, (_, i) => rulePattern(i));
Bun.gc(true);
const rss0 = rssMB();

const t0 = stamp();
const rules: Rule[] = patterns.map((p, index) => ({ condition: parseCondition(p), channel: 'hub', index }));
const parseT = since(t0);
const t1 = stamp();
const cfg = {
  ...settingDefaults(),
    source: '<bench>', mode: 'host', listen: [], upstreams: [{ name: 'default', servers: [{ transport: 'dns', address: '127.0.0.1', port: 53 }] }],
  datapath: 'none', lan: [], wan: [], control: '', logLevel: 'error', logFormat: 'logfmt', minHoldS: 60, idleS: 300,
  upstreamTimeoutMs: 2000, canary: 'nxdomain', channels: [buildChannel('hub', { kind: 'tunnel', gateway: '192.0.2.1' }, 1)],
  tables: [{ id: 'default', group: 0, rules }], clients: [], statics: [], tsigKeys: [], interceptPools: [],
} satisfies Config;
const policy = Policy.fromConfig(cfg);
const indexT = since(t1);
Bun.gc(true);
const rss1 = rssMB();

// Query names: hits built from the patterns (a name each kind matches), misses from the same
// shape of names under domains that no rule covers.
function hitFor(p: string): string {
  if (p.startsWith('*.') && p.endsWith('.*')) return `www.${p.slice(2, -2)}.example.com`;
  if (p.startsWith('*.')) return `host.${p.slice(2)}`;
  if (p.endsWith('.*')) return `${p.slice(0, -2)}.example.org`;
  return p;
}
const hits = Array.from({ length: 4096 }, () => hitFor(patterns[Math.floor(rand() * N)]!));
const misses = Array.from({ length: 4096 }, (_, i) => `${pick(WORDS)}.m${i.toString(36)}.${pick(WORDS)}.nope.${pick(TLDS)}`);
for (const h of hits) if (!policy.decide('', [h]).rule) throw new Error(`bench: expected a hit for ${h}`);
for (const m of misses) if (policy.decide('', [m]).rule) throw new Error(`bench: unexpected hit for ${m}`);

// The machine is shared: report the best and the median of several rounds (the best is
// what the code costs, the median what a busy neighbour made of it).
const ROUNDS = 15;
function nsPer(names: string[]): { wall: number; cpu: number } {
  let found = 0;
  const n = LOOKUPS / 10;
  const start = stamp();
  // reads what the pipeline reads (group, channel); `rule` is fetched only on demand
  for (let i = 0; i < n; i++) if (policy.decide('', [names[i & 4095]!]).channel) found++;
  const t = since(start, n);
  if (found < 0) console.log(found);
  return t;
}
function chainNs(): { wall: number; cpu: number } {
  const chain = [misses[1]!, misses[2]!, hits[3]!];
  const n = LOOKUPS / 10;
  const start = stamp();
  for (let i = 0; i < n; i++) {
    chain[0] = misses[i & 4095]!;
    chain[2] = hits[(i * 7) & 4095]!;
    policy.decide('', chain);
  }
  return since(start, n);
}
// warm-up on a mixed stream, so the JIT's profile has seen hits and misses alike
const mixed = hits.map((h, i) => (i & 1 ? h : misses[i]!));
for (let i = 0; i < 3; i++) nsPer(mixed);
chainNs();
// interleaved, so that a busy neighbour weighs on all three alike
// 4096 distinct protected names spread over 1M rules touch 4096 random pages per table:
// TLB- and DRAM-bound. Real traffic is skewed (a few names get most queries): "hot" repeats
// 64 names, which shows the compute cost without the memory stalls.
const hot = Array.from({ length: 4096 }, (_, i) => hits[i & 63]!);
const samples = { hit: [] as Stamp[], hot: [] as Stamp[], miss: [] as Stamp[], chain: [] as Stamp[] };
for (let r = 0; r < ROUNDS; r++) {
  samples.hit.push(nsPer(hits));
  samples.hot.push(nsPer(hot));
  samples.miss.push(nsPer(misses));
  samples.chain.push(chainNs());
}
const summary = (xs: Stamp[]) => {
  const med = (k: 'wall' | 'cpu') => [...xs].map((x) => x[k]).sort((a, b) => a - b)[xs.length >> 1]!;
  return { wall: med('wall'), cpu: med('cpu') };
};
const hitNs = summary(samples.hit);
const hotNs = summary(samples.hot);
const missNs = summary(samples.miss);
const chainStats = summary(samples.chain);
const fmt = (x: { wall: number; cpu: number }) => `${x.cpu.toFixed(0)} ns on-CPU (${x.wall.toFixed(0)} ns wall), median of ${ROUNDS} rounds`;
const ms = (x: { wall: number; cpu: number }) => `${(x.cpu / 1e6).toFixed(0)} ms on-CPU (${(x.wall / 1e6).toFixed(0)} ms wall)`;

// End to end as an operator would load them: a rules file through the config loader
// (`--rules-file`), then the policy built from the Config.
const dir = mkdtempSync(join(tmpdir(), 'dnsseal-bench-'));
const rulesPath = join(dir, 'bench.rules');
writeFileSync(rulesPath, patterns.join('\n') + '\n');
const f0 = stamp();
const fileCfg = loadConfig(
  new Map([
    ['config', ['none']],
    ['upstream', ['127.0.0.1']],
    ['channel', ['hub=tunnel:192.0.2.1']],
    ['rules-file', [`${rulesPath},channel=hub`]],
  ]),
  { readFile: (p) => readFileSync(p, 'utf8'), resolvTexts: () => [] },
);
const fileLoadT = since(f0);
const f1 = stamp();
const filePolicy = Policy.fromConfig(fileCfg);
const filePolicyT = since(f1);
rmSync(dir, { recursive: true });
if (filePolicy.decide('', [hits[0]!]).rule === null) throw new Error('bench: file policy misses a hit');

const gcStart = stamp();
Bun.gc(true);
const gcT = since(gcStart);

const kinds = new Map<string, number>();
for (const r of rules) kinds.set(r.condition.kind, (kinds.get(r.condition.kind) ?? 0) + 1);
console.log(`rules:            ${N} (${[...kinds].map(([k, v]) => `${k} ${v}`).join(', ')})`);
console.log(`load:             ${ms({ wall: parseT.wall + indexT.wall, cpu: parseT.cpu + indexT.cpu })}: parse ${ms(parseT)} + index ${ms(indexT)}; target <= 2000 ms`);
console.log(`load from file:   ${ms({ wall: fileLoadT.wall + filePolicyT.wall, cpu: fileLoadT.cpu + filePolicyT.cpu })}: --rules-file through the config loader ${ms(fileLoadT)} + Policy.fromConfig ${ms(filePolicyT)}`);
console.log(`memory:           ${(rss1 - rss0).toFixed(0)} MB RSS delta (rules + index), ${(((rss1 - rss0) * 1048576) / N).toFixed(0)} B/rule`);
console.log(`match hit:        ${fmt(hitNs)} per name (Policy.decide, 4096 distinct names)  target <= 1000 ns`);
console.log(`match hit (hot):  ${fmt(hotNs)} per name (the same 64 names again and again)`);
console.log(`match miss:       ${fmt(missNs)} per name`);
console.log(`match chain of 3: ${fmt(chainStats)} per decision (query name + 2 CNAMEs, last one hits)`);
console.log(`full GC:          ${ms(gcT)} with the rules live (a pause the daemon sees now and then, not per query)`);
console.log(`machine:          load average ${(await Bun.file('/proc/loadavg').text()).split(' ').slice(0, 3).join(' ')} on ${navigator.hardwareConcurrency} CPUs`);
