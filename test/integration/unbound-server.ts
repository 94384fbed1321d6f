/**
 * A real unbound for integration tests: plain DNS, DNS over TLS (`tls-port`) and DNS over
 * HTTPS (`https-port`, `/dns-query`, HTTP/2 through nghttp2) on random loopback ports, with a
 * test certificate, forwarding `test.` to a knotd of the caller's (`do-not-query-localhost: no`)
 * and answering `local.example.` from a local-zone. No root hints are ever needed: nothing
 * else is asked. Loopback only.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Subprocess } from 'bun';
import { randomPort } from './knot-server.ts';

export interface UnboundServer {
  address: string;
  port: number;
  tlsPort: number;
  httpsPort: number;
  stop(): Promise<void>;
}

export function unboundPath(): string | null {
  return Bun.which('unbound', { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' });
}

function conf(dir: string, ports: { plain: number; tls: number; https: number }, certPath: string, keyPath: string, forward?: { address: string; port: number }): string {
  return `server:
  username: ""
  chroot: ""
  directory: "${dir}"
  pidfile: "${dir}/unbound.pid"
  use-syslog: no
  logfile: ""
  verbosity: 0
  num-threads: 1
  so-reuseport: no
  interface: 127.0.0.1@${ports.plain}
  interface: 127.0.0.1@${ports.tls}
  interface: 127.0.0.1@${ports.https}
  tls-port: ${ports.tls}
  https-port: ${ports.https}
  http-endpoint: "/dns-query"
  tls-service-key: "${keyPath}"
  tls-service-pem: "${certPath}"
  do-not-query-localhost: no
  access-control: 127.0.0.0/8 allow
  module-config: "iterator"
  cache-max-ttl: 0
  local-zone: "test." nodefault
  local-zone: "local.example." static
  local-data: "www.local.example. 300 IN A 192.0.2.53"
remote-control:
  control-enable: no
${forward ? `forward-zone:\n  name: "test."\n  forward-addr: ${forward.address}@${forward.port}\n` : ''}`;
}

/** One UDP query for www.local.example; true on any answer. */
async function probe(port: number): Promise<boolean> {
  const q = new Uint8Array([0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 3, 119, 119, 119, 5, 108, 111, 99, 97, 108, 7, 101, 120, 97, 109, 112, 108, 101, 0, 0, 1, 0, 1]);
  const { promise, resolve } = Promise.withResolvers<boolean>();
  const sock = await Bun.udpSocket({ socket: { data: () => resolve(true), error: () => {} } });
  sock.send(q, port, '127.0.0.1');
  const t = setTimeout(() => resolve(false), 200);
  const ok = await promise;
  clearTimeout(t);
  sock.close();
  return ok;
}

/** `cpu` pins unbound to one CPU (benchmarks, BENCHMARKING.md). */
export async function startUnbound(opts: { certPath: string; keyPath: string; forward?: { address: string; port: number }; cpu?: number }): Promise<UnboundServer> {
  const bin = unboundPath();
  if (!bin) throw new Error('unbound not installed');
  const dir = mkdtempSync(join(tmpdir(), 'dnsseal-unbound-'));
  for (let attempt = 0; attempt < 5; attempt++) {
    const ports = { plain: randomPort(), tls: randomPort(), https: randomPort() };
    writeFileSync(join(dir, 'unbound.conf'), conf(dir, ports, opts.certPath, opts.keyPath, opts.forward));
    const cmd = [bin, '-d', '-c', join(dir, 'unbound.conf')];
    const proc: Subprocess = Bun.spawn(opts.cpu !== undefined ? ['taskset', '-c', String(opts.cpu), ...cmd] : cmd, { stdout: 'ignore', stderr: 'pipe' });
    for (let i = 0; i < 50 && proc.exitCode === null; i++) {
      if (await probe(ports.plain)) {
        return {
          address: '127.0.0.1',
          port: ports.plain,
          tlsPort: ports.tls,
          httpsPort: ports.https,
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
  throw new Error('unbound: could not start on loopback ports');
}
