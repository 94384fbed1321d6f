/**
 * CLI start-up: spawns dnsseal executables (default dist/dnsseal; pass several to compare, e.g.
 * a build of main and one of a branch) with short commands, interleaved, and prints the median
 * wall and on-CPU (user + system) time per run. On a shared machine compare the CPU figures.
 *
 *   bun bench/cli-startup.ts [--runs N] [BIN…]
 */
const args = process.argv.slice(2);
const runsAt = args.indexOf('--runs');
const runs = runsAt >= 0 ? Number(args.splice(runsAt, 2)[1]) : 30;
const bins = args.length ? args : ['dist/dnsseal'];
const COMMANDS = [['version'], ['help', 'run'], ['check', '--config', 'none', '--upstream', '192.0.2.53'], ['flush', '--mode', 'host']];

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;

for (const argv of COMMANDS) {
  const wall = new Map<string, number[]>(bins.map((b) => [b, []]));
  const cpu = new Map<string, number[]>(bins.map((b) => [b, []]));
  for (let i = 0; i < runs; i++) {
    for (const bin of bins) {
      const t0 = Bun.nanoseconds();
      const r = Bun.spawnSync([bin, ...argv], { stdout: 'ignore', stderr: 'ignore' });
      wall.get(bin)!.push((Bun.nanoseconds() - t0) / 1e6);
      cpu.get(bin)!.push(Number(r.resourceUsage?.cpuTime.total ?? NaN) / 1000);
    }
  }
  for (const bin of bins) {
    console.log(`${argv.join(' ').padEnd(48)} ${bin.padEnd(32)} wall ${median(wall.get(bin)!).toFixed(1).padStart(6)} ms  cpu ${median(cpu.get(bin)!).toFixed(1).padStart(6)} ms  (median of ${runs})`);
  }
}
