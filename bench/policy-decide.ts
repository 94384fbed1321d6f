/**
 * bench-policy: nanoseconds per `Policy.decide()` call — the lookup every answer with
 * addresses makes (S104; S102 `preDecide` costs the same) — for the client classifications
 * the daemon meets: no `clients:` at all (host mode, and what `make bench-dns` runs), a few
 * client CIDRs with IPv4, IPv6 and IPv4-mapped IPv6 sources, a source in no range, and a
 * flood of spoofed sources (every call a new address: the worst case for a per-address memo).
 * The floor is `decide('', …)`, which skips the client lookup. Prints figures; asserts
 * nothing. Runs against whatever `src/` sits next to it, so the same script measures a
 * before and an after (e.g. on a `git archive` of the older commit).
 *
 *   node_modules/.bin/bun bench/policy-decide.ts
 */
import { Policy } from '../src/policy/policy.ts';
import { parseCondition } from '../src/policy/condition.ts';
import { buildChannel } from '../src/policy/channel.ts';
import type { Config } from '../src/config/types.ts';
import { since, stamp, type Stamp } from './cpu-clock.ts';
import { settingDefaults } from '../src/config/defaults.ts';


/** Calls per round (the spoofed case makes a tenth: each call is the uncached lookup). */
const CALLS = 1_000_000;
const ROUNDS = 15;

const hub = buildChannel('hub', { kind: 'tunnel', gateway: '192.0.2.1' }, 1);
const rule = (p: string, index: number) => ({ condition: parseCondition(p), channel: 'hub', index });
const tables = [
  { id: 'default', group: 0, rules: [rule('*.corp.test', 0), rule('git.example', 1)] },
  { id: 'lab', group: 10, rules: [rule('*.lab.test', 0)] },
  { id: 'office', group: 11, rules: [rule('*.corp.test', 0), rule('sato.*', 1)] },
  { id: 'guests', group: 12, rules: [] },
];
// A small gateway's client ranges, nested so that the longest prefix matters.
const CLIENTS = [
  { cidr: '10.0.0.0/8', table: 'office' },
  { cidr: '10.20.0.0/16', table: 'lab' },
  { cidr: '10.20.30.0/24', table: 'guests' },
  { cidr: '192.168.1.0/24', table: 'office' },
  { cidr: '172.16.0.0/12', table: 'lab' },
  { cidr: '2001:db8::/32', table: 'office' },
  { cidr: '2001:db8:20::/48', table: 'lab' },
  { cidr: 'fd00::/8', table: 'guests' },
];

function policy(clients: Config['clients']): Policy {
  const cfg = {
    ...settingDefaults(),
    source: '<bench>', mode: 'gateway', listen: [], upstreams: [{ name: 'default', servers: [{ transport: 'dns', address: '127.0.0.1', port: 53 }] }],
    datapath: 'none', lan: [], wan: [], control: '', logLevel: 'error', logFormat: 'logfmt', minHoldS: 60, idleS: 300,
    upstreamTimeoutMs: 2000, canary: 'nxdomain', channels: [hub], tables, clients, statics: [], tsigKeys: [], interceptPools: [],
  } satisfies Config;
  return Policy.fromConfig(cfg);
}

// Query names as bench-dns sends them (unique, unprotected) mixed with protected ones.
const chains = Array.from({ length: 1024 }, (_, i) => [i & 1 ? `q${i}.wild.test` : `h${i}.corp.test`]);
const sources = (n: number, f: (i: number) => string) => Array.from({ length: n }, (_, i) => f(i));
const v4 = sources(64, (i) => `10.20.${i & 63}.${(i * 7) & 255}`);
const v6 = sources(64, (i) => `2001:db8:20::${(i * 97).toString(16)}`);
const mapped = v4.map((a) => `::ffff:${a}`);
const outside = sources(64, (i) => `198.51.100.${i}`);
// A fresh address every call, from a pool far larger than any memo.
const spoofed = sources(1 << 20, (i) => `100.${(i >>> 16) & 255}.${(i >>> 8) & 255}.${i & 255}`);
const spoofed6 = sources(1 << 18, (i) => `2001:db8:${(i >>> 16).toString(16)}:${(i & 0xffff).toString(16)}::${(i * 31).toString(16)}`);

function run(p: Policy, clients: string[]): Stamp {
  let found = 0;
  const mask = clients.length - 1;
  const calls = clients.length > 4096 ? CALLS / 10 : CALLS; // spoofed: slow per call
  const start = stamp();
  for (let i = 0; i < calls; i++) if (p.decide(clients[i & mask]!, chains[i & 1023]!).channel) found++;
  const t = since(start, calls);
  if (found < 0) console.log(found);
  return t;
}

const none = policy([]);
const some = policy(CLIENTS);
const cases: Array<[label: string, p: Policy, clients: string[]]> = [
  ['no clients: configured, 127.0.0.1', none, ['127.0.0.1']],
  ['8 CIDRs, 64 IPv4 clients', some, v4],
  ['8 CIDRs, 64 IPv6 clients', some, v6],
  ['8 CIDRs, 64 v4-mapped IPv6 clients', some, mapped],
  ['8 CIDRs, 64 clients in no range', some, outside],
  ['8 CIDRs, spoofed: new IPv4 source a call', some, spoofed],
  ['8 CIDRs, spoofed: new IPv6 source a call', some, spoofed6],
  ['floor: decide("", …), no client lookup', some, ['']],
];
// sanity: the classification the figures are about
if (some.tableFor(v4[5]!).id !== 'lab' || some.tableFor(mapped[5]!).id !== 'lab' || some.tableFor(v6[3]!).id !== 'lab') throw new Error('bench: unexpected table');
if (some.tableFor(outside[0]!).id !== 'default') throw new Error('bench: unexpected table for an outside client');

for (const [, p, c] of cases) for (let i = 0; i < 3; i++) run(p, c); // warm-up: the JIT sees every case
// Interleaved rounds, so that a busy neighbour weighs on every case alike; best and median.
const samples = cases.map(() => [] as Stamp[]);
for (let r = 0; r < ROUNDS; r++) cases.forEach(([, p, c], i) => samples[i]!.push(run(p, c)));
const at = (xs: Stamp[], k: keyof Stamp, q: number) => xs.map((x) => x[k]).sort((a, b) => a - b)[Math.floor(q * (xs.length - 1))]!;

console.log(`decide() per call, ${CALLS} calls (spoofed: ${CALLS / 10}) × ${ROUNDS} rounds; ns on-CPU best / median (wall median)`);
cases.forEach(([label], i) => {
  const s = samples[i]!;
  console.log(`${label.padEnd(42)} ${at(s, 'cpu', 0).toFixed(0).padStart(6)} / ${at(s, 'cpu', 0.5).toFixed(0).padStart(6)}   (${at(s, 'wall', 0.5).toFixed(0)})`);
});
console.log(`machine: load average ${(await Bun.file('/proc/loadavg').text()).split(' ').slice(0, 3).join(' ')} on ${navigator.hardwareConcurrency} CPUs`);
