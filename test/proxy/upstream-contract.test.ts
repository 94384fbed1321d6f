/** The shared upstream suite against every transport, each with a scripted loopback server. */
import { afterAll } from 'bun:test';
import { newProxyCounters } from '../../src/proxy/proxy-counters.ts';
import { DohUpstream } from '../../src/proxy/upstream-doh.ts';
import { DotUpstream } from '../../src/proxy/upstream-dot.ts';
import { TcpUpstream } from '../../src/proxy/upstream-tcp.ts';
import { UdpUpstream } from '../../src/proxy/upstream-udp.ts';
import { realClock } from '../../src/util/clock.ts';
import { silentLogger } from '../../src/util/log.ts';
import { startFakeDoh, startFakeDot } from './fake-encrypted.ts';
import { FakeUpstream } from './fake-upstream.ts';
import { MemoryUpstream } from './memory-upstream.ts';
import { haveOpenssl, makeCerts } from './tls-certs.ts';
import { upstreamContract } from './upstream-contract.ts';

upstreamContract({
  name: 'udp',
  start: async (script, timeoutMs) => {
    const fake = await FakeUpstream.start(script);
    const up = await UdpUpstream.open({ name: 'default', address: '127.0.0.1', port: fake.port, timeoutMs, clock: realClock, log: silentLogger, counters: newProxyCounters(), poolSize: 2 });
    return { up, queries: fake.queries, stop: () => fake.stop() };
  },
});

// The in-memory double the upstream-set tests use must not drift from the real transports.
upstreamContract({
  name: 'memory (test double)',
  start: async (script, timeoutMs) => {
    const up = new MemoryUpstream('memory', script, timeoutMs);
    return { up, queries: up.queries, stop: () => {} };
  },
});

upstreamContract({
  name: 'tcp',
  start: async (script, timeoutMs) => {
    const fake = await FakeUpstream.start(script);
    const up = new TcpUpstream({ name: 'default', address: '127.0.0.1', port: fake.port, timeoutMs, counters: newProxyCounters() });
    return { up, queries: fake.queries, stop: () => fake.stop() };
  },
});

if (haveOpenssl()) {
  const certs = makeCerts(['dns.test']);
  afterAll(() => certs.cleanup());

  upstreamContract({
    name: 'tls',
    start: async (script, timeoutMs) => {
      const fake = await startFakeDot({ key: certs.key, cert: certs.cert, script });
      const up = new DotUpstream({ name: 'default', address: '127.0.0.1', port: fake.port, serverName: 'dns.test', ca: certs.ca, timeoutMs, clock: realClock, log: silentLogger, counters: newProxyCounters() });
      return { up, queries: fake.queries, stop: () => fake.stop() };
    },
  });

  upstreamContract({
    name: 'https',
    start: async (script, timeoutMs) => {
      const fake = await startFakeDoh({ key: certs.key, cert: certs.cert, script });
      const up = new DohUpstream({ name: 'default', address: '127.0.0.1', port: fake.port, path: '/dns-query', serverName: 'dns.test', ca: certs.ca, timeoutMs, log: silentLogger, counters: newProxyCounters() });
      return { up, queries: fake.queries, stop: () => fake.stop() };
    },
  });
} else {
  console.log('proxy/upstream contract: tls and https skipped — needs openssl (apt: openssl)');
}
