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

/**
 * The benches' upstream on loopback: answers every query (names `n<index>.…`) with one A record,
 * TTL `ttl`, whose address 10.x.y.z comes from the index, so names differ in address.
 */
export function startIndexedUpstream(ttl: number) {
  return Bun.udpSocket({
    hostname: '127.0.0.1',
    port: 0,
    socket: {
      data(s, q, port, addr) {
        let i = 0;
        for (let p = 14; p < 13 + q[12]!; p++) i = i * 10 + (q[p]! - 48);
        const qEnd = q.length - ((q[10]! << 8) | q[11]!) * 11; // the question ends where our OPT starts
        const a = new Uint8Array(qEnd + 16);
        a.set(q.subarray(0, qEnd));
        a[2] = 0x81;
        a[3] = 0x80;
        a[7] = 1; // ANCOUNT
        a[11] = 0; // ARCOUNT: no OPT echoed
        a.set([0xc0, 12, 0, 1, 0, 1, ttl >>> 24, (ttl >>> 16) & 255, (ttl >>> 8) & 255, ttl & 255, 0, 4, 10, (i >>> 16) & 255, (i >>> 8) & 255, i & 255], qEnd);
        s.send(a, port, addr);
      },
      error() {},
    },
  });
}
