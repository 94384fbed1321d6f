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

/**
 * A knotd configuration: one worker of each kind, errors to stderr, zones from files `NAME.zone`
 * in `dir` (never written back), its database under `dir/db`. `listen`: knot's `listen:` value
 * (`ADDR@PORT` or a `[ … ]` list); `zones`: the domains, each line may carry more settings after
 * the name (`signed.test.\n    dnssec-signing: on`); `extra`: sections added as they are (keys,
 * ACLs); `stats`: loads mod-stats for every zone. Shared by the tests' and benches' knot servers.
 */
export function knotConf(o: { dir: string; listen: string; zones: readonly string[]; extra?: string; stats?: boolean }): string {
  return `server:
    rundir: "${o.dir}"
    listen: ${o.listen}
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1
database:
    storage: "${o.dir}/db"
log:
  - target: stderr
    any: error
${o.extra ?? ''}
${o.stats ? 'mod-stats:\n  - id: count\n    request-protocol: on\n' : ''}
template:
  - id: default
    storage: "${o.dir}"
    file: "%s.zone"
    zonefile-sync: -1
    journal-content: none
${o.stats ? '    global-module: mod-stats/count\n' : ''}
zone:
${o.zones.map((z) => `  - domain: ${z}`).join('\n')}
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
      writeFileSync(
        join(dir, 'knot.conf'),
        knotConf({ dir, listen: `${address}@${port}`, zones: ['test.', 'signed.test.\n    dnssec-signing: on'], extra: opts.extraConf, stats: opts.stats }),
      );
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
