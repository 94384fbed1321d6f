/**
 * One end of the relay pair for bench/tls-relay.ts, as its own process (as two nodes would
 * be): `relay` (RelayListener + TlsRelay; one listener per destination, each sending every
 * connection to its fixed destination, like a stunnel client service's `connect`) or `accept`
 * (TlsAcceptor allowing those destinations). Prints `ready PORT…` once listening; runs until
 * killed.
 *   bun bench/tls-pair-node.ts relay PKI_DIR ACCEPT_PORT DST_PORT…
 *   bun bench/tls-pair-node.ts accept PKI_DIR DST_PORT…
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Metrics } from '../src/ops/metrics.ts';
import { AcceptPolicy } from '../src/tls/accept-policy.ts';
import { TlsAcceptor } from '../src/tls/acceptor.ts';
import { checkCredentials } from '../src/tls/credentials.ts';
import { RelayListener } from '../src/tls/relay-listener.ts';
import { TlsRelay } from '../src/tls/relay.ts';
import { TlsMetrics } from '../src/tls/tls-metrics.ts';
import { silentLogger } from '../src/util/log.ts';

const [role, dir, ...nums] = process.argv.slice(2);
const ports = nums.map(Number);
if (!dir || ports.length === 0) throw new Error('usage: tls-pair-node.ts relay PKI_DIR ACCEPT_PORT DST_PORT… | accept PKI_DIR DST_PORT…');

function creds(name: string) {
  const files = { cert: join(dir!, `${name}.crt`), key: join(dir!, `${name}.key`), ca: join(dir!, 'ca.crt') };
  return checkCredentials({ cert: readFileSync(files.cert, 'utf8'), key: readFileSync(files.key, 'utf8'), ca: readFileSync(files.ca, 'utf8') }, files, { nowMs: Date.now() });
}

const tm = new TlsMetrics(new Metrics());
const out: number[] = [];
if (role === 'accept') {
  const acceptor = new TlsAcceptor({
    listen: { host: '127.0.0.1', port: 0 },
    credentials: creds('peer'),
    policy: AcceptPolicy.compile([{ identity: 'router.corp.test', allow: [{ cidrs: ['127.0.0.1/32'], ports }] }]),
    log: silentLogger,
    metrics: tm,
  });
  acceptor.start();
  out.push(acceptor.port);
} else {
  const [acceptPort, ...dsts] = ports;
  const channel = { name: 'bench', kind: 'peer' as const, port: acceptPort!, identity: '%name', credentials: creds('router') };
  const relay = new TlsRelay({ log: silentLogger, metrics: tm });
  for (const d of dsts) {
    const dst = { addr: '127.0.0.1', port: d };
    const listener = new RelayListener({
      listen: { host: '127.0.0.1', port: 0 },
      relay,
      originalDst: { lookup: () => dst },
      router: { route: () => ({ channel, name: 'peer.partner.test' }) },
      log: silentLogger,
      metrics: tm,
    });
    listener.start();
    out.push(listener.port);
  }
}
console.log(`ready ${out.join(' ')}`);
