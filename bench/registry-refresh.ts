/**
 * The registration alone, in-process (issue 12, protected path): a real Registry holding NAMES
 * entries (one tunnel channel, TTL 300, as bench/protected.ts has them), registered again and
 * again the way the pipeline does it with every name protected and the cache off — a new
 * Registration per answer, its address text formatted from the answer's bytes and its name
 * built fresh (as the parser gives them). What is left is the registry's JavaScript and the map
 * write: no sockets, no DNS. Prints ns per registration (on-CPU and wall, median of ROUNDS) for
 *   - `stub`: a data path that takes every write and does nothing (the registry's own work);
 *   - `ebpf` (root): the real eBPF backend on a scratch pin root, maps only (nothing attached).
 * The registry's clock moves STEP_MS (default 1000) each time through the names, so every
 * refresh moves the entry's expiry to a later second and writes the map (0: the real clock, and
 * refreshes within a second write nothing; the daemon at 46k qps over 20k names is in between).
 * PROFILE=1 prints the hottest lines of the last round of each (bun:jsc sampling profiler).
 *   node_modules/.bin/bun bench/registry-refresh.ts [rounds]
 * Env: NAMES (20000), PER_ROUND (200000), TARGETS (stub,ebpf). Asserts nothing.
 */
import { profile } from 'bun:jsc';
import type { ChannelRowInput, Datapath, DestEntry, DestKey, DestValue } from '../src/datapath/datapath.ts';
import { createEbpfDatapath } from '../src/datapath/ebpf/index.ts';
import { teardown } from '../src/datapath/teardown.ts';
import { ipv4Text } from '../src/dns/ip-text.ts';
import { Metrics } from '../src/ops/metrics.ts';
import type { ChannelSpec } from '../src/policy/types.ts';
import { Registry } from '../src/registry/registry.ts';
import type { Registration } from '../src/registry/types.ts';
import { type Clock, realClock } from '../src/util/clock.ts';
import { silentLogger } from '../src/util/log.ts';
import { since, stamp, type Stamp } from './cpu-clock.ts';

const ROUNDS = Number(process.argv[2] ?? 7);
const NAMES = Number(process.env.NAMES ?? 20000);
const PER_ROUND = Number(process.env.PER_ROUND ?? 200_000);
const TARGETS = (process.env.TARGETS ?? 'stub,ebpf').split(',');
const STEP_MS = Number(process.env.STEP_MS ?? 1000);
let registrations = 0;
/** STEP_MS per pass through the names (see above), else the real clock. */
const clock: Clock = STEP_MS > 0 ? { nowMs: () => Date.now(), monoMs: () => 1e6 + Math.floor((registrations * STEP_MS) / NAMES) } : realClock;
const HUB: ChannelSpec = { name: 'hub', id: 1, mark: 0x5e510001, protocol: 'ipsec', kind: 'tunnel', gateway: '192.0.2.1', identity: 'hub', esp: 'aes256gcm16' };

/** Takes every write, keeps nothing: the registry's own cost. */
class StubDatapath implements Datapath {
  readonly kind = 'stub';
  writes = 0;
  upsert(_key: DestKey, _value: DestValue, _known?: boolean): void {
    this.writes++;
  }
  remove(): void {}
  list(): DestEntry[] {
    return [];
  }
  lastSeen(): number | undefined {
    return undefined;
  }
  setClientGroups(): void {}
  setChannels(_c: ChannelRowInput[]): void {}
  health(): string | undefined {
    return undefined;
  }
  close(): void {}
}

/** The answer's address bytes, one 198.18.x.y per name (the bench's zone). */
const wire = new Uint8Array(4 * NAMES);
for (let i = 0; i < NAMES; i++) wire.set([198, 18, (i >> 8) & 255, i & 255], 4 * i);
const labels = Array.from({ length: NAMES }, (_, i) => `p${i}`);

/** One registration as the pipeline builds it: fresh strings, a new object. */
function registration(i: number): Registration {
  const name = `${labels[i]!}.p.bench.test`;
  const addr = ipv4Text(wire, 4 * i);
  return { group: 0, channel: HUB, names: [name], addrs: [addr], ttlS: 300, queryName: name };
}

function runRound(reg: Registry, n: number): void {
  for (let k = 0; k < n; k++, registrations++) reg.registerNow(registration(k % NAMES));
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;

async function bench(target: string): Promise<void> {
  const root = `/sys/fs/bpf/dnsseal-bench-reg-${process.pid}`;
  let dp: Datapath;
  if (target === 'ebpf') {
    if (process.getuid?.() !== 0) {
      console.log('ebpf: needs root; skipped');
      return;
    }
    dp = createEbpfDatapath({
      cfg: { mode: 'gateway', lan: [], wan: [], channels: [HUB] },
      log: silentLogger,
      clock,
      metrics: new Metrics(),
      pinRoot: root,
      attach: false,
      pollMs: 0,
    });
  } else dp = new StubDatapath();
  try {
    const reg = new Registry({ datapath: dp, clock, log: silentLogger, metrics: new Metrics(), minHoldMs: 60_000, idleMs: 300_000, channels: [HUB] });
    runRound(reg, NAMES); // every entry in
    runRound(reg, PER_ROUND); // warm the JIT
    const cpu: number[] = [];
    const wall: number[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      const last = r === ROUNDS - 1 && process.env.PROFILE === '1';
      let s: Stamp | undefined;
      if (last) {
        const p = profile(() => runRound(reg, PER_ROUND), 100);
        const self = new Map<string, number>();
        let n = 0;
        for (const t of p.stackTraces.traces) {
          const f = t.frames[0];
          if (!f) continue;
          n++;
          const k = `${f.name || '(anon)'} ${(f.sourceURL ?? '').replace(/.*\/(src|bench)\//, '$1/')}:${f.line === 4294967295 ? '' : f.line}`;
          self.set(k, (self.get(k) ?? 0) + 1);
        }
        console.log(`${target}: profile of the last round (self, by line; ${n} samples):`);
        for (const [k, v] of [...self].sort((a, b) => b[1] - a[1]).slice(0, 25)) console.log(`  ${((100 * v) / n).toFixed(1).padStart(5)}%  ${k}`);
        continue;
      }
      s = stamp();
      runRound(reg, PER_ROUND);
      const d = since(s, PER_ROUND);
      cpu.push(d.cpu);
      wall.push(d.wall);
    }
    console.log(`${target.padEnd(5)} ${NAMES} entries: ${median(cpu).toFixed(0)} ns on-CPU, ${median(wall).toFixed(0)} ns wall per registration (median of ${cpu.length} rounds of ${PER_ROUND})`);
  } finally {
    dp.close();
    if (target === 'ebpf') await teardown(silentLogger, { pinRoot: root });
  }
}

for (const t of TARGETS) await bench(t);
console.log(`load average ${(await Bun.file('/proc/loadavg').text()).split(' ').slice(0, 3).join(' ')}`);
