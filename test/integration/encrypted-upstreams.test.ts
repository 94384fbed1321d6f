/**
 * The upstream transports against real servers from Debian: unbound (built with nghttp2)
 * serving DNS over TLS and DNS over HTTPS with a test certificate made by openssl, forwarding
 * `test.` to a knotd. Queries over DoT and DoH, pipelining on one DoT connection, a certificate
 * for another name refused with nothing sent, failover from a refusing and from a blackholed
 * server, and the whole pipeline (forwarder + policy + registry) over a DoT upstream set.
 * Loopback only, no root needed.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import dnsPacket from 'dns-packet';
import { Forwarder } from '../../src/proxy/forwarder.ts';
import { Pipeline } from '../../src/proxy/pipeline.ts';
import { newProxyCounters } from '../../src/proxy/proxy-counters.ts';
import { parseServerSpec } from '../../src/proxy/server-spec.ts';
import { openUpstreamSet, type UpstreamDeps } from '../../src/proxy/upstream-factory.ts';
import { DohUpstream } from '../../src/proxy/upstream-doh.ts';
import { DotUpstream } from '../../src/proxy/upstream-dot.ts';
import { UpstreamError } from '../../src/proxy/upstream.ts';
import { realClock } from '../../src/util/clock.ts';
import { silentLogger } from '../../src/util/log.ts';
import { clientQuery } from '../fixtures/dns/capture.ts';
import { RecordingRegistry, SuffixPolicy } from '../proxy/doubles.ts';
import { haveOpenssl, makeCerts, type TestCerts } from '../proxy/tls-certs.ts';
import { q } from '../proxy/upstream-contract.ts';
import { haveBinary, startKnot, type KnotServer } from './knot-server.ts';
import { startUnbound, unboundPath, type UnboundServer } from './unbound-server.ts';

const HAVE = unboundPath() !== null && haveBinary('knotd') && haveOpenssl();
if (!HAVE) console.log('integration/encrypted-upstreams: skipped — needs unbound, knotd and openssl (apt: unbound knot openssl)');

function addresses(answer: Uint8Array): string[] {
  return (dnsPacket.decode(Buffer.from(answer)).answers ?? []).filter((a) => a.type === 'A').map((a) => (a as { data: string }).data);
}

describe.skipIf(!HAVE)('integration/encrypted-upstreams', () => {
  let certs: TestCerts;
  let knot: KnotServer;
  let unbound: UnboundServer;
  const counters = newProxyCounters();
  const dot = (serverName = 'dns.test') =>
    new DotUpstream({ name: 'default', address: '127.0.0.1', port: unbound.tlsPort, serverName, ca: certs.ca, timeoutMs: 3000, clock: realClock, log: silentLogger, counters });
  const doh = (serverName = 'dns.test') =>
    new DohUpstream({ name: 'default', address: '127.0.0.1', port: unbound.httpsPort, path: '/dns-query', serverName, ca: certs.ca, timeoutMs: 3000, log: silentLogger, counters });
  // 2 s: unbound (then knot) answers from other processes, DoT with a handshake first; a loaded
  // 2-core machine can take longer than 500 ms, and the blackhole case pays this once
  const deps = (): UpstreamDeps => ({ timeoutMs: 2000, clock: realClock, log: silentLogger, counters: newProxyCounters(), tlsCa: certs.ca, udpPoolSize: 1, probeMinMs: 60_000 });

  beforeAll(async () => {
    certs = makeCerts(['dns.test']);
    knot = await startKnot();
    unbound = await startUnbound({ certPath: certs.certPath, keyPath: certs.keyPath, forward: { address: knot.address, port: knot.port } });
  });
  afterAll(async () => {
    await unbound?.stop();
    await knot?.stop();
    certs?.cleanup();
  });

  test('answers a query over DNS over TLS when the certificate is issued for the name', async () => {
    const up = dot();
    try {
      expect(addresses(await up.exchange(q('www.test')))).toEqual(['192.0.2.10']);
      expect(addresses(await up.exchange(q('www.local.example')))).toEqual(['192.0.2.53']);
    } finally {
      up.close();
    }
  });

  test('answers a query over DNS over HTTPS (HTTP/2) when the certificate is issued for the name', async () => {
    const up = doh();
    try {
      expect(addresses(await up.exchange(q('www.test')))).toEqual(['192.0.2.10']);
      expect(addresses(await up.exchange(q('front.test')))).toEqual(['203.0.113.10']);
    } finally {
      up.close();
    }
  });

  test('answers many concurrent queries pipelined on one DoT connection', async () => {
    const up = dot();
    try {
      const names = Array.from({ length: 64 }, (_, i) => (i % 2 ? 'www.test' : 'www.corp.test'));
      const answers = await Promise.all(names.map((n) => up.exchange(q(n))));
      expect(answers.map((a) => addresses(a)[0])).toEqual(names.map((n) => (n === 'www.test' ? '192.0.2.10' : '203.0.113.10')));
      expect(up.stats().connections).toBe(1);
    } finally {
      up.close();
    }
  });

  test.each(['tls', 'https'] as const)('refuses over %s a certificate issued for another name, with a clear error and no answer', async (kind) => {
    const up = kind === 'tls' ? dot('other.test') : doh('other.test');
    try {
      const err = (await up.exchange(q('www.test')).catch((e: unknown) => e)) as UpstreamError;
      expect(err).toBeInstanceOf(UpstreamError);
      expect(err.reason).toBe('tls');
      expect(err.errno).toBe('ERR_TLS_CERT_ALTNAME_INVALID');
      expect(err.message).toMatch(/^upstream: .*other\.test.*certificate refused/);
    } finally {
      up.close();
    }
  });

  test('fails over from a refusing UDP server (closed port) to DoT without a timeout', async () => {
    const closed = await Bun.udpSocket({ hostname: '127.0.0.1', port: 0 });
    const dead = closed.port;
    closed.close();
    const set = await openUpstreamSet(
      { name: 'default', servers: [`127.0.0.1:${dead}`, `tls://127.0.0.1:${unbound.tlsPort}#dns.test`].map(parseServerSpec) },
      { ...deps(), timeoutMs: 30_000 }, // only the ICMP refusal can let the first query through in time
    );
    try {
      expect(await set.exchange(q('www.test'))).toMatchObject({ server: 1, via: 'tls' });
      for (let i = 0; i < 5; i++) expect((await set.exchange(q('www.test'))).server).toBe(1);
      expect(set.healthOf()[0]).toMatchObject({ state: 'down', errno: 'ECONNREFUSED', failures: { refused: 1 } });
    } finally {
      set.close();
    }
  });

  test('fails over from a blackholed UDP server after one timeout, then goes straight to unbound', async () => {
    let seen = 0;
    const hole = await Bun.udpSocket({ hostname: '127.0.0.1', port: 0, socket: { data: () => void seen++ } });
    const set = await openUpstreamSet({ name: 'default', servers: [`127.0.0.1:${hole.port}`, `127.0.0.1:${unbound.port}`].map(parseServerSpec) }, deps());
    try {
      expect((await set.exchange(q('www.test'))).server).toBe(1);
      expect(set.healthOf()[0]).toMatchObject({ state: 'down', failures: { timeout: 1 } });
      for (let i = 0; i < 10; i++) expect((await set.exchange(q('www.test'))).server).toBe(1);
      expect(seen).toBe(1);
    } finally {
      set.close();
      hole.close();
    }
  });

  test('registers a protected answer fetched over DoT through forwarder and pipeline before releasing it', async () => {
    const set = await openUpstreamSet({ name: 'default', servers: [parseServerSpec(`tls://127.0.0.1:${unbound.tlsPort}#dns.test`)] }, deps());
    const registry = new RecordingRegistry();
    // What proxy.ts will do: the set's pair view in place of the UDP/TCP pair.
    const forwarder = new Forwarder(new Map([['default', set.pair()]]), newProxyCounters());
    const pipeline = new Pipeline({ policy: new SuffixPolicy(['corp.test']), registry, forwarder, upstreamNames: ['default'], counters: newProxyCounters(), log: silentLogger, canary: 'nxdomain' });
    try {
      const answer = await pipeline.handle(clientQuery('front.test', 1, false, 0x5151), { address: '127.0.0.1', port: 5353, transport: 'udp' });
      const d = dnsPacket.decode(Buffer.from(answer!));
      expect(d.id).toBe(0x5151);
      expect(addresses(answer!)).toEqual(['203.0.113.10']);
      expect(registry.registrations.map((r) => r.addrs)).toEqual([['203.0.113.10']]);
    } finally {
      forwarder.close();
    }
  });
});
