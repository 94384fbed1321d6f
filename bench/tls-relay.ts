/**
 * The TLS relay pair on loopback, in one process: a client → relay listener → mTLS 1.3 →
 * acceptor → a sink server that sends N bytes, against the same transfer straight to the sink.
 * Prints MB/s, connect latency (connect → first byte) and on-CPU time per GB (this process:
 * client, relay, acceptor and sink together). The stunnel4 comparison of issue 13 is still to do.
 *   bun bench/tls-relay.ts [MB=200] [connects=200]
 */
import { Metrics } from '../src/ops/metrics.ts';
import { AcceptPolicy } from '../src/tls/accept-policy.ts';
import { TlsAcceptor } from '../src/tls/acceptor.ts';
import { RelayListener } from '../src/tls/relay-listener.ts';
import { TlsRelay } from '../src/tls/relay.ts';
import { TlsMetrics } from '../src/tls/tls-metrics.ts';
import { silentLogger } from '../src/util/log.ts';
import { standardPki } from '../test/tls/pki.ts';
import { since, stamp } from './cpu-clock.ts';

const MB = Number(process.argv[2] ?? 200);
const CONNECTS = Number(process.argv[3] ?? 200);
const CHUNK = new Uint8Array(256 * 1024);
const TOTAL = MB * 1024 * 1024;

// The sink: on connect, sends TOTAL bytes (or 1 byte for the latency runs) and closes.
let size = TOTAL;
function pump(s: import('bun').Socket<{ left: number }>): void {
  while (s.data.left > 0) {
    const n = s.write(CHUNK, 0, Math.min(CHUNK.length, s.data.left));
    if (n <= 0) return;
    s.data.left -= n;
  }
  s.end();
}
const sink = Bun.listen<{ left: number }>({
  hostname: '127.0.0.1',
  port: 0,
  socket: {
    open(s) {
      s.data = { left: size };
      pump(s);
    },
    drain: pump,
    data() {},
  },
});

const pki = standardPki();
const tm = new TlsMetrics(new Metrics());
const acceptor = new TlsAcceptor({
  listen: { host: '127.0.0.1', port: 0 },
  credentials: pki.creds('peer'),
  policy: AcceptPolicy.compile([{ identity: 'router.corp.test', allow: [{ cidrs: ['127.0.0.1/32'], ports: [sink.port] }] }]),
  log: silentLogger,
  metrics: tm,
});
acceptor.start();
const channel = { name: 'bench', kind: 'peer' as const, port: acceptor.port, identity: '%name', credentials: pki.creds('router') };
const listener = new RelayListener({
  listen: { host: '127.0.0.1', port: 0 },
  relay: new TlsRelay({ log: silentLogger, metrics: tm }),
  originalDst: { lookup: () => ({ addr: '127.0.0.1', port: sink.port }) },
  router: { route: () => ({ channel, name: 'peer.partner.test' }) },
  log: silentLogger,
  metrics: tm,
});
listener.start();

/** Connects, counts bytes until close; resolves with [ms to first byte, bytes]. */
function fetchAll(port: number): Promise<[number, number]> {
  const t0 = performance.now();
  let first = 0;
  let got = 0;
  return new Promise((resolve, reject) => {
    Bun.connect({
      hostname: '127.0.0.1',
      port,
      socket: {
        open(s) {
          s.write('go'); // the relay pipelines it behind the CONNECT; the sink ignores it
        },
        data(_s, d) {
          if (!first) first = performance.now() - t0;
          got += d.length;
        },
        close: () => resolve([first, got]),
        connectError: (_s, e) => reject(e),
      },
    }).catch(reject);
  });
}

async function throughput(label: string, port: number): Promise<void> {
  size = TOTAL;
  const t = stamp();
  const [, got] = await fetchAll(port);
  const d = since(t);
  if (got !== TOTAL) throw new Error(`${label}: got ${got} of ${TOTAL} bytes`);
  const gb = TOTAL / 2 ** 30;
  console.log(`${label.padEnd(8)} ${(TOTAL / 2 ** 20 / (d.wall / 1e9)).toFixed(0).padStart(6)} MB/s   on-CPU ${(d.cpu / 1e9 / gb).toFixed(2)} s/GB (wall ${(d.wall / 1e9 / gb).toFixed(2)} s/GB)`);
}

async function latency(label: string, port: number): Promise<void> {
  size = 1;
  const ms: number[] = [];
  for (let i = 0; i < CONNECTS; i++) ms.push((await fetchAll(port))[0]);
  ms.sort((a, b) => a - b);
  const q = (p: number) => ms[Math.min(ms.length - 1, Math.floor(p * ms.length))]!.toFixed(3);
  console.log(`${label.padEnd(8)} connect→first byte  p50 ${q(0.5)} ms  p90 ${q(0.9)} ms  p99 ${q(0.99)} ms  (${CONNECTS} connects)`);
}

console.log(`tls-relay bench: ${MB} MB per transfer, loopback, one process (Bun ${Bun.version})`);
await throughput('direct', sink.port);
await throughput('relay', listener.port);
await latency('direct', sink.port);
await latency('relay', listener.port);
listener.stop(true);
acceptor.stop(true);
sink.stop(true);
pki.cleanup();
