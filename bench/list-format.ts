/**
 * `dnsseal list` formatting cost: the human table and the JSON for (a) one address held by
 * 20,000 names (a CDN) next to 20,000 one-name rows, and (b) 50,000 one-name rows. Prints the
 * CPU time (median of runs), the output size and the heap growth; not a test.
 *
 *   bun bench/list-format.ts [--runs N]
 */
import { formatList } from '../src/control/format.ts';
import type { ListRow } from '../src/control/list-rows.ts';

const args = process.argv.slice(2);
const runsAt = args.indexOf('--runs');
const runs = runsAt >= 0 ? Number(args[runsAt + 1]) : 9;

function rows(n: number, cdnNames: number): ListRow[] {
  return Array.from({ length: n }, (_, i) => ({
    group: 0,
    table: 'default',
    address: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`,
    channel: 'hub',
    names: i === 0 && cdnNames > 0 ? Array.from({ length: cdnNames }, (_, k) => `edge${k}.cdn.example`) : [`host${i}.corp.example`],
    expiresInS: 299,
    idleS: i % 7 === 0 ? null : 12,
    static: false,
  }));
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;

function measure(label: string, data: ListRow[], fn: (r: ListRow[]) => string): void {
  const times: number[] = [];
  let size = 0;
  Bun.gc(true);
  const heap0 = process.memoryUsage().heapUsed;
  let heapPeak = 0;
  for (let i = 0; i < runs; i++) {
    const t0 = process.cpuUsage();
    const out = fn(data);
    const t = process.cpuUsage(t0);
    times.push((t.user + t.system) / 1000);
    size = out.length;
    heapPeak = Math.max(heapPeak, process.memoryUsage().heapUsed - heap0);
  }
  console.log(`${label.padEnd(44)} cpu ${median(times).toFixed(1).padStart(7)} ms  output ${(size / 1e6).toFixed(2).padStart(6)} MB  heap +${(heapPeak / 1e6).toFixed(1)} MB  (median of ${runs})`);
}

const cdn = rows(20_001, 20_000);
const flat = rows(50_000, 0);
measure('table: 20,000 names on one address + 20,000', cdn, formatList);
measure('json:  20,000 names on one address + 20,000', cdn, (r) => JSON.stringify(r));
measure('table: 50,000 rows', flat, formatList);
measure('json:  50,000 rows', flat, (r) => JSON.stringify(r));
