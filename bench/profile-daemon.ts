/**
 * A CPU profile of the daemon under dnsperf load (issue 12, perf work): knot and dnsperf on CPU 0,
 * the daemon from the sources on CPU 1 with Bun's `--cpu-prof-md`, the bench-dns configuration
 * (`--datapath none`, one name in five of the cached file protected). Writes the markdown profile
 * into PROFILE_DIR (default /tmp/dnsseal-prof) and prints dnsperf's summary and the daemon's CPU
 * time per answered query.
 *
 *   bun bench/profile-daemon.ts [cache|nocache] [seconds]
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomPort, startKnot } from '../test/integration/knot-server.ts';

const mode = process.argv[2] ?? 'cache';
const seconds = Number(process.argv[3] ?? 8);
const out = process.env.PROFILE_DIR ?? '/tmp/dnsseal-prof';
mkdirSync(out, { recursive: true });
const knot = await startKnot({ cpu: 0 });
const port = randomPort();
const qfile = join(out, `${mode}.txt`);
writeFileSync(
  qfile,
  Array.from({ length: mode === 'cache' ? 2000 : 20000 }, (_, i) =>
    mode === 'cache' ? (i % 5 === 0 ? `c${i}.p.wild.test A` : `c${i}.wild.test A`) : `q${i}.wild.test A`,
  ).join('\n') + '\n',
);
const prof = process.env.PROFILE === '0' ? [] : ['--cpu-prof-md', `--cpu-prof-dir=${out}`, `--cpu-prof-name=${mode}.md`];
const daemon = Bun.spawn(
  ['taskset', '-c', '1', process.execPath, ...prof, join(import.meta.dir, '..', 'src', 'main.ts'), 'run', '--datapath', 'none',
    '--listen', `127.0.0.1:${port}`, '--upstream', `${knot.address}:${knot.port}`, '--control', join(out, `${mode}.sock`), '--log-level', 'error',
    '--channel', 'hub=tunnel:192.0.2.1', '--protect', '*.corp.test=hub', '--protect', '*.p.wild.test=hub',
    ...(mode === 'cache' ? [] : ['--cache-size', '0'])],
  { stdout: 'inherit', stderr: 'inherit' },
);
const cpu = () => {
  const f = require('node:fs').readFileSync(`/proc/${daemon.pid}/stat`, 'utf8');
  const x = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return (Number(x[11]) + Number(x[12])) / 100;
};
for (let i = 0; i < 100; i++) {
  const r = Bun.spawnSync(['dig', '@127.0.0.1', '-p', String(port), '+tries=1', '+timeout=1', 'www.test', 'A', '+short']);
  if (r.stdout.toString().includes('192.0.2.10')) break;
  await Bun.sleep(100);
}
const perf = (l: number) => Bun.spawnSync(['taskset', '-c', '0', 'dnsperf', '-s', '127.0.0.1', '-p', String(port), '-d', qfile, '-c', '10', '-l', String(l)]).stdout.toString();
perf(2);
const c0 = cpu();
const res = perf(seconds);
const c1 = cpu();
const done = Number(/Queries completed:\s+(\d+)/.exec(res)?.[1] ?? 0);
console.log(res.split('\n').filter((l) => /Queries (sent|completed|lost)|Queries per second|Average Latency/.test(l)).join('\n'));
console.log(`daemon cpu per answered query: ${(((c1 - c0) * 1e6) / Math.max(1, done)).toFixed(2)} µs (${mode}; load ${require('node:fs').readFileSync('/proc/loadavg', 'utf8').trim()})`);
daemon.kill('SIGTERM');
await daemon.exited;
await knot.stop();
