import { afterAll, describe, expect, test } from 'bun:test';
import { curl, httpServer } from './rig.ts';
import { NodeProc } from './node-proc.ts';
import { standardPki } from './pki.ts';
import { waitFor } from './endpoint-pairs.ts';
import { RelayListener } from '../../src/tls/relay-listener.ts';
import { TlsRelay } from '../../src/tls/relay.ts';
import { TlsMetrics } from '../../src/tls/tls-metrics.ts';
import { Metrics } from '../../src/ops/metrics.ts';
import { silentLogger } from '../../src/util/log.ts';

const pki = standardPki();
afterAll(() => pki.cleanup());

const IDLE = 10_000;

describe('tls acceptor under a flood', () => {
  test('10k idle connections are closed and relayed requests are served meanwhile', async () => {
    const http = httpServer();
    const acc = await NodeProc.start({
      role: 'acceptor',
      listen: { host: '127.0.0.1', port: 0 },
      creds: { cert: pki.path('peer.crt'), key: pki.path('peer.key'), ca: pki.path('ca.crt') },
      clients: [{ identity: 'router.corp.test', allow: [{ cidrs: ['127.0.0.1/32'], ports: [http.port] }] }],
      limits: { handshakeTimeoutMs: 3000, maxPending: 1024 },
    });
    const tm = new TlsMetrics(new Metrics());
    const channel = { name: 'partner', kind: 'peer' as const, port: acc.port, identity: '%name', credentials: pki.creds('router') };
    const listener = new RelayListener({
      listen: { host: '127.0.0.1', port: 0 },
      relay: new TlsRelay({ log: silentLogger, metrics: tm }),
      originalDst: { lookup: () => ({ addr: '127.0.0.1', port: http.port }) },
      router: { route: () => ({ channel, name: 'peer.partner.test' }) },
      log: silentLogger,
      metrics: tm,
    });
    listener.start();
    let closed = 0;
    const socks: Array<{ end(): void }> = [];
    try {
      let served = 0;
      for (let batch = 0; batch < IDLE / 500; batch++) {
        const opened = await Promise.all(
          Array.from({ length: 500 }, () =>
            Bun.connect({ hostname: '127.0.0.1', port: acc.port, socket: { data() {}, close: () => void closed++, end: () => {} } }),
          ),
        );
        socks.push(...opened);
        if (batch % 4 === 3) {
          const res = await curl(listener.port, '/small');
          expect(new TextDecoder().decode(res.body)).toBe('hello from the server\n');
          served++;
        }
      }
      expect(served).toBe(IDLE / 2000);
      await waitFor(() => closed === IDLE, `all ${IDLE} idle connections to be closed (closed ${closed})`, 60_000);
      const res = await curl(listener.port, '/small');
      expect(new TextDecoder().decode(res.body)).toBe('hello from the server\n');
      let m = '';
      const until = performance.now() + 10_000;
      while (!/dnsseal_tls_accept_connections_total\{outcome="ok"\} 6\n/.test(m) && performance.now() < until) m = await acc.metrics();
      expect(m).toMatch(/dnsseal_tls_accept_connections_total\{outcome="ok"\} 6\n/);
      expect(m).toMatch(/dnsseal_tls_connections\{state="pending"\} 0\n/);
      expect(m).toMatch(/dnsseal_tls_connections\{state="accept"\} 0\n/);
      expect(m).toMatch(/dnsseal_tls_handshake_failures_total\{reason="timeout",side="accept"\} 10000\n/);
    } finally {
      for (const s of socks) s.end();
      listener.stop(true);
      acc.stop();
      http.server.stop(true);
    }
  }, 120_000);
});
