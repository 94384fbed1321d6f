/**
 * A real unbound for integration tests: plain DNS, DNS over TLS (`tls-port`) and DNS over
 * HTTPS (`https-port`, `/dns-query`, HTTP/2 through nghttp2) on random loopback ports, with a
 * test certificate, forwarding `test.` to a knotd of the caller's (`do-not-query-localhost: no`)
 * and answering `local.example.` from a local-zone. No root hints are ever needed: nothing
 * else is asked. Loopback only.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomPort } from './knot-server.ts';
import { spawnServer, udpAnswers } from './spawn-server.ts';

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

/** A query for www.local.example (the readiness probe). */
const PROBE = new Uint8Array([0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 3, 119, 119, 119, 5, 108, 111, 99, 97, 108, 7, 101, 120, 97, 109, 112, 108, 101, 0, 0, 1, 0, 1]);

/** `cpu` pins unbound to one CPU (benchmarks, BENCHMARKING.md). */
export async function startUnbound(opts: { certPath: string; keyPath: string; forward?: { address: string; port: number }; cpu?: number }): Promise<UnboundServer> {
  const bin = unboundPath();
  if (!bin) throw new Error('unbound not installed');
  const dir = mkdtempSync(join(tmpdir(), 'dnsseal-unbound-'));
  const server = await spawnServer('unbound', dir, {
    pick: () => {
      const ports = { plain: randomPort(), tls: randomPort(), https: randomPort() };
      writeFileSync(join(dir, 'unbound.conf'), conf(dir, ports, opts.certPath, opts.keyPath, opts.forward));
      return ports;
    },
    command: () => [bin, '-d', '-c', join(dir, 'unbound.conf')],
    ready: (ports) => udpAnswers('127.0.0.1', ports.plain, PROBE),
    cpu: opts.cpu,
  });
  const { plain, tls, https } = server.ports;
  return { address: '127.0.0.1', port: plain, tlsPort: tls, httpsPort: https, stop: server.stop };
}
