/**
 * What the benches that run a whole daemon share (bench/reload.ts, bench/soak.ts): its config
 * (host mode, `none` data path, one tunnel channel `hub`, the given rules) and its figures
 * from /proc.
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { Subprocess } from 'bun';

export interface BenchConfig {
  listenPort: number;
  upstreamPort: number;
  control: string;
  /** Items of the default table, YAML lines (each starting `    - `). */
  rules: string[];
}

/** Writes the daemon's config to `path`. */
export function writeBenchConfig(path: string, c: BenchConfig): void {
  writeFileSync(
    path,
    [
      'mode: host',
      `listen: [127.0.0.1:${c.listenPort}]`,
      `upstreams: { default: 127.0.0.1:${c.upstreamPort} }`,
      'datapath: none',
      `control: ${c.control}`,
      'log_level: warn',
      'channels:',
      '  hub: { kind: tunnel, gateway: 192.0.2.1 }',
      'tables:',
      '  default:',
      ...c.rules,
      '',
    ].join('\n'),
  );
}

/** A `/proc/PID/status` size field (VmRSS, VmHWM) in MB. */
export function statusMb(pid: number, key: string): number {
  const m = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

/**
 * Starts `cmd` on CPU 1 (`taskset`, when given: this process was put on CPU 0) and returns it
 * with the cleanup that stops it and removes `dir`; Ctrl-C runs the cleanup too.
 */
export function spawnBenchDaemon(cmd: string[], taskset: string | null, dir: string): { daemon: Subprocess; cleanup: () => void } {
  const daemon = Bun.spawn(taskset ? [taskset, '-c', '1', ...cmd] : cmd, { stdout: 'inherit', stderr: 'inherit' });
  const cleanup = () => {
    daemon.kill('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  };
  process.on('SIGINT', () => {
    cleanup();
    process.exit(130);
  });
  return { daemon, cleanup };
}
