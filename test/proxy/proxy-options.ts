/**
 * The options every proxy test starts from: one `default` upstream (plain DNS at ADDR:PORT), a
 * listener on a free loopback port, the NXDOMAIN canary, fresh counters, the real clock and a
 * silent logger. A test names its policy and registry and overrides what it is about.
 */
import type { ProxyOptions } from '../../src/proxy/proxy.ts';
import { newProxyCounters } from '../../src/proxy/proxy-counters.ts';
import { realClock } from '../../src/util/clock.ts';
import { silentLogger } from '../../src/util/log.ts';

export function proxyOptions(
  upstream: { address: string; port: number },
  o: Pick<ProxyOptions, 'policy' | 'registry'> & Partial<ProxyOptions>,
): ProxyOptions {
  return {
    listen: ['127.0.0.1:0'],
    upstreams: [{ name: 'default', servers: [{ transport: 'dns', address: upstream.address, port: upstream.port }] }],
    upstreamTimeoutMs: 1000,
    canary: 'nxdomain',
    counters: newProxyCounters(),
    clock: realClock,
    log: silentLogger,
    ...o,
  };
}
