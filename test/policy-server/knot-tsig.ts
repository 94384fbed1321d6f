/**
 * knotd on a random loopback port serving figure 6's nec.com zone, answering only queries
 * signed with the test key (ACL), and signing its answers. Loopback only.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomPort } from '../integration/knot-server.ts';
import { spawnServer, udpAnswers } from '../integration/spawn-server.ts';
import { SECRET, ZONE_TEXT } from './helpers.ts';

export interface KnotTsig {
  port: number;
  stop(): Promise<void>;
}

export function knotdPath(): string | null {
  return Bun.which('knotd', { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' });
}

const PROBE = new Uint8Array([0x12, 0x34, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 3, 110, 101, 99, 3, 99, 111, 109, 0, 0, 6, 0, 1]);

export async function startKnotTsig(): Promise<KnotTsig> {
  const knotd = knotdPath();
  if (!knotd) throw new Error('knotd not installed');
  const dir = mkdtempSync(join(tmpdir(), 'dnsseal-knot-tsig-'));
  writeFileSync(join(dir, 'nec.com.zone'), ZONE_TEXT);
  const server = await spawnServer('knot (TSIG)', dir, {
    pick: () => {
      const port = randomPort();
      writeFileSync(join(dir, 'knot.conf'), knotConf(dir, port));
      return port;
    },
    command: () => [knotd, '-c', join(dir, 'knot.conf')],
    ready: (port) => udpAnswers('127.0.0.1', port, PROBE),
  });
  return { port: server.ports, stop: server.stop };
}

function knotConf(dir: string, port: number): string {
  return `server:
    rundir: "${dir}"
    listen: 127.0.0.1@${port}
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1
database:
    storage: "${dir}"
log:
  - target: stderr
    any: error
key:
  - id: dnsseal-test
    algorithm: hmac-sha256
    secret: ${SECRET}
  - id: rogue-key
    algorithm: hmac-sha256
    secret: AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=
acl:
  - id: signed-only
    key: dnsseal-test
    action: query
zone:
  - domain: nec.com
    storage: "${dir}"
    file: nec.com.zone
    zonefile-sync: -1
    journal-content: none
    acl: signed-only
`;
}
