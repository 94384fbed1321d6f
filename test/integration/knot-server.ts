/**
 * A real authoritative server for integration tests and benchmarks: knotd on a random
 * loopback port, serving test/fixtures/dns/test.zone and a DNSSEC-signed signed.test
 * (knot signs it on load with its default automatic policy). Loopback only.
 */
import { mkdtempSync, rmSync, writeFileSync, copyFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Subprocess } from 'bun';

export const FIXTURES = join(import.meta.dir, '..', 'fixtures', 'dns');

export interface KnotServer {
  address: string;
  port: number;
  dir: string;
  /** Queries knot has received (needs `stats: true`), via `knotc stats`. */
  queryCount(): Promise<number>;
  stop(): Promise<void>;
}

export function haveBinary(name: string): boolean {
  return Bun.which(name) !== null || Bun.which(name, { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' }) !== null;
}

/** A random port in [20000, 60000) — callers retry on a bind failure. */
export function randomPort(): number {
  return 20000 + Math.floor(Math.random() * 40000);
}

function knotConf(dir: string, address: string, port: number, extra: string, stats: boolean): string {
  return `server:
    rundir: "${dir}"
    listen: ${address}@${port}
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1
database:
    storage: "${dir}/db"
log:
  - target: stderr
    any: error
${extra}
${stats ? 'mod-stats:\n  - id: count\n    request-protocol: on\n' : ''}
template:
  - id: default
    storage: "${dir}"
    file: "%s.zone"
    zonefile-sync: -1
    journal-content: none
${stats ? '    global-module: mod-stats/count\n' : ''}
zone:
  - domain: test.
  - domain: signed.test.
    dnssec-signing: on
`;
}

/** Sends one UDP query and waits briefly for any answer (readiness probe). */
async function probe(address: string, port: number): Promise<boolean> {
  const q = new Uint8Array([0x12, 0x34, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 3, 119, 119, 119, 4, 116, 101, 115, 116, 0, 0, 1, 0, 1]);
  const { promise, resolve } = Promise.withResolvers<boolean>();
  const sock = await Bun.udpSocket({ socket: { data: () => resolve(true), error: () => {} } });
  sock.send(q, port, address);
  const t = setTimeout(() => resolve(false), 200);
  const ok = await promise;
  clearTimeout(t);
  sock.close();
  return ok;
}

/**
 * `stats: true` loads knot's mod-stats so `queryCount()` can prove a forwarder does not cache
 * (BENCHMARKING.md: N identical queries must reach the upstream N times).
 */
export async function startKnot(opts: { address?: string; extraConf?: string; cpu?: number; stats?: boolean } = {}): Promise<KnotServer> {
  const address = opts.address ?? '127.0.0.1';
  const dir = mkdtempSync(join(tmpdir(), 'dnsseal-knot-'));
  mkdirSync(join(dir, 'db'));
  copyFileSync(join(FIXTURES, 'test.zone'), join(dir, 'test.zone'));
  copyFileSync(join(FIXTURES, 'signed.test.zone'), join(dir, 'signed.test.zone'));
  const knotd = Bun.which('knotd', { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' }) ?? 'knotd';
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = randomPort();
    writeFileSync(join(dir, 'knot.conf'), knotConf(dir, address, port, opts.extraConf ?? '', opts.stats ?? false));
    const cmd = [knotd, '-c', join(dir, 'knot.conf')];
    const proc: Subprocess = Bun.spawn(opts.cpu !== undefined ? ['taskset', '-c', String(opts.cpu), ...cmd] : cmd, {
      stdout: 'ignore',
      stderr: 'pipe',
    });
    for (let i = 0; i < 50 && proc.exitCode === null; i++) {
      if (await probe(address, port)) {
        // signed.test is signed in the background on first load; wait for its RRSIGs.
        return {
          address,
          port,
          dir,
          queryCount: async () => {
            const knotc = Bun.which('knotc', { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' }) ?? 'knotc';
            const p = Bun.spawn([knotc, '-c', join(dir, 'knot.conf'), 'stats'], { stdout: 'pipe', stderr: 'ignore' });
            const out = await new Response(p.stdout).text();
            await p.exited;
            let n = 0;
            for (const m of out.matchAll(/^mod-stats\.request-protocol\[[a-z0-9]+\] = (\d+)$/gm)) n += Number(m[1]);
            return n;
          },
          stop: async () => {
            proc.kill('SIGTERM');
            await proc.exited;
            rmSync(dir, { recursive: true, force: true });
          },
        };
      }
      await Bun.sleep(100);
    }
    proc.kill('SIGKILL');
    await proc.exited;
  }
  rmSync(dir, { recursive: true, force: true });
  throw new Error('knot: could not start knotd on a loopback port');
}
