/**
 * A real authoritative server for integration tests and benchmarks: knotd on a random
 * loopback port, serving test/fixtures/dns/test.zone and a DNSSEC-signed signed.test
 * (knot signs it on load with its default automatic policy). Loopback only.
 */
import { mkdtempSync, rmSync, writeFileSync, copyFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnServer, udpAnswers } from './spawn-server.ts';

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

const PROBE = new Uint8Array([0x12, 0x34, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 3, 119, 119, 119, 4, 116, 101, 115, 116, 0, 0, 1, 0, 1]);

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
  const server = await spawnServer('knot', dir, {
    pick: () => {
      const port = randomPort();
      writeFileSync(join(dir, 'knot.conf'), knotConf(dir, address, port, opts.extraConf ?? '', opts.stats ?? false));
      return port;
    },
    command: () => [knotd, '-c', join(dir, 'knot.conf')],
    ready: (port) => udpAnswers(address, port, PROBE),
    cpu: opts.cpu,
  });
  return {
    address,
    port: server.ports,
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
    stop: server.stop,
  };
}
