/**
 * Runs the real daemon (src/daemon.ts) for the DNS benchmark: `--datapath none`, one example
 * rule (`*.corp.test` → channel hub) so every answer goes through the decision, the given
 * listen address and upstream. Until the CLI (src/main.ts) can be driven the same way, this is
 * what `make bench-dns` measures as "dnsseal".
 *   bun bench/dns-dnsseal.ts LISTEN_ADDR:PORT UPSTREAM_ADDR:PORT CONTROL_SOCKET
 */
import type { Config } from '../src/config/types.ts';
import { runDaemon } from '../src/daemon.ts';
import { Metrics } from '../src/ops/metrics.ts';
import { parseCondition } from '../src/policy/condition.ts';
import { realClock } from '../src/util/clock.ts';
import { createLogger } from '../src/util/log.ts';

const [listen, upstream, control] = process.argv.slice(2);
if (!listen || !upstream || !control) {
  console.error('usage: bun bench/dns-dnsseal.ts LISTEN UPSTREAM CONTROL_SOCKET');
  process.exit(2);
}
const idx = upstream.lastIndexOf(':');
const cfg: Config = {
  source: '<bench>',
  mode: 'host',
  listen: [listen],
  upstreams: [{ name: 'default', address: upstream.slice(0, idx), port: Number(upstream.slice(idx + 1)) }],
  datapath: 'none',
  lan: [],
  wan: [],
  control,
  logLevel: 'error',
  logFormat: 'logfmt',
  minHoldS: 60,
  idleS: 300,
  upstreamTimeoutMs: 2000,
  canary: 'nxdomain',
  channels: [{ name: 'hub', id: 1, mark: 0x5e510001, protocol: 'ipsec', kind: 'tunnel', gateway: '192.0.2.1', identity: 'hub.test', esp: 'aes256gcm16' }],
  tables: [{ id: 'default', group: 0, rules: [{ condition: parseCondition('*.corp.test'), channel: 'hub', index: 0 }] }],
  clients: [],
  statics: [],
  tsigKeys: [],
  interceptPools: [],
};
const code = await runDaemon(cfg, { log: createLogger({ level: 'error' }), clock: realClock, metrics: new Metrics() });
process.exit(code);
