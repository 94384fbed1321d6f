/**
 * The policy-server link (TSIG, #5) over DNS over TLS and DNS over HTTPS: the figure-6 policy
 * server behind a TLS listener and an HTTP/2 server (test fixtures relaying the DNS message
 * bytes untouched, as a DoT/DoH front such as dnsdist would), the proxy side signing exactly
 * the bytes that go out and accepting only a verified answer. Also through an upstream set that
 * fails over from a refusing UDP server to DoT (the hooks sign anew), and the whole pipeline.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { stripTsig } from '../../src/dns/tsig.ts';
import { Policy } from '../../src/policy/policy.ts';
import { ServerChannels, policyServerLink } from '../../src/policy-server/proxy-side.ts';
import { Forwarder } from '../../src/proxy/forwarder.ts';
import { Pipeline } from '../../src/proxy/pipeline.ts';
import { newProxyCounters } from '../../src/proxy/proxy-counters.ts';
import { parseServerSpec } from '../../src/proxy/server-spec.ts';
import { openUpstreamSet } from '../../src/proxy/upstream-factory.ts';
import { DohUpstream } from '../../src/proxy/upstream-doh.ts';
import { DotUpstream } from '../../src/proxy/upstream-dot.ts';
import { UpstreamError, type Upstream } from '../../src/proxy/upstream.ts';
import { FakeClock, realClock } from '../../src/util/clock.ts';
import { silentLogger } from '../../src/util/log.ts';
import { clientQuery } from '../fixtures/dns/capture.ts';
import { startFakeDoh, startFakeDot, type EncryptedFake } from '../proxy/fake-encrypted.ts';
import type { Script } from '../proxy/fake-upstream.ts';
import { RecordingRegistry } from '../proxy/doubles.ts';
import { haveOpenssl, makeCerts, type TestCerts } from '../proxy/tls-certs.ts';
import { q } from '../proxy/upstream-contract.ts';
import { KEY, KOJIMA, KOJIMA_ADDR, figure6Config, figure6State, keyring, startServer } from './helpers.ts';

const HAVE = haveOpenssl();
if (!HAVE) console.log('policy-server/tsig-encrypted: skipped — needs openssl (apt: openssl)');

const fake = new FakeClock(1_795_554_523_000);
// TSIG time from the fake wall clock; timeouts need a monotonic clock that moves.
const clock = { nowMs: () => fake.nowMs(), monoMs: () => realClock.monoMs() };

describe.skipIf(!HAVE)('policy-server/tsig-encrypted', () => {
  let certs: TestCerts;
  let dot: EncryptedFake;
  let doh: EncryptedFake;
  let unsigned = false;
  const ctx = () => ({ keyring, keyName: KEY.name, clock, channels: new ServerChannels(), fudgeS: 300 });

  beforeAll(async () => {
    certs = makeCerts(['policy.test']);
    const cfg = figure6Config();
    cfg.clients = [{ cidr: '127.0.0.1/32', table: '502' }];
    const ps = startServer({ ...figure6State(), policy: Policy.fromConfig(cfg) }, clock);
    const relay: Script = async (query) => {
      const a = await ps.handle(Uint8Array.from(query.bytes), { address: '127.0.0.1', port: 5300, transport: 'tcp' });
      return a && unsigned ? stripTsig(a) : a;
    };
    dot = await startFakeDot({ key: certs.key, cert: certs.cert, script: relay });
    doh = await startFakeDoh({ key: certs.key, cert: certs.cert, script: relay });
  });
  afterAll(async () => {
    await dot?.stop();
    await doh?.stop();
    certs?.cleanup();
  });

  const upstream = (kind: 'tls' | 'https'): Upstream =>
    kind === 'tls'
      ? new DotUpstream({ name: 'policy', address: '127.0.0.1', port: dot.port, serverName: 'policy.test', ca: certs.ca, timeoutMs: 2000, clock, log: silentLogger, counters: newProxyCounters() })
      : new DohUpstream({ name: 'policy', address: '127.0.0.1', port: doh.port, path: '/dns-query', serverName: 'policy.test', ca: certs.ca, timeoutMs: 2000, log: silentLogger, counters: newProxyCounters() });

  test.each(['tls', 'https'] as const)('takes the server decision from a verified answer when the policy server is reached over %s', async (kind) => {
    unsigned = false;
    const up = upstream(kind);
    const link = policyServerLink(ctx(), 'policy');
    try {
      const hooks = link.hooks('127.0.0.1');
      const answer = await up.exchange(q(KOJIMA), hooks);
      expect(answer.length).toBeGreaterThan(0);
      const decision = link.decisionOf(hooks);
      expect(decision?.channel).toMatchObject({ name: 'server:hub-a', kind: 'tunnel' });
      // The server saw the signed bytes: its TSIG verified them (else no annotation came back).
      const seen = (kind === 'tls' ? dot : doh).queries.at(-1)!;
      expect(seen.name).toBe(KOJIMA);
    } finally {
      up.close();
    }
  });

  test.each(['tls', 'https'] as const)('fails as unverified and decides nothing when the answer over %s is unsigned', async (kind) => {
    unsigned = true;
    const up = upstream(kind);
    const link = policyServerLink(ctx(), 'policy');
    try {
      const hooks = link.hooks('127.0.0.1');
      const err = (await up.exchange(q(KOJIMA), hooks).catch((e: unknown) => e)) as UpstreamError;
      expect(err).toBeInstanceOf(UpstreamError);
      expect(err.reason).toBe('unverified');
      expect(link.decisionOf(hooks)).toBeNull();
    } finally {
      up.close();
      unsigned = false;
    }
  });

  test('registers the server decision before answering when the pipeline reaches the policy server over DoT after a refusing UDP server', async () => {
    unsigned = false;
    const closed = await Bun.udpSocket({ hostname: '127.0.0.1', port: 0 });
    const dead = closed.port;
    closed.close();
    const deps = { timeoutMs: 30_000, clock, log: silentLogger, counters: newProxyCounters(), tlsCa: certs.ca, udpPoolSize: 1, probeMinMs: 60_000 };
    const policySet = await openUpstreamSet({ name: 'policy', servers: [`127.0.0.1:${dead}`, `tls://127.0.0.1:${dot.port}#policy.test`].map(parseServerSpec) }, deps);
    const defaultSet = await openUpstreamSet({ name: 'default', servers: [parseServerSpec(`127.0.0.1:${dead}`)] }, deps);
    const registry = new RecordingRegistry();
    const forwarder = new Forwarder(
      new Map([
        ['default', defaultSet.pair()],
        ['policy', policySet.pair()],
      ]),
      newProxyCounters(),
    );
    const local = figure6Config();
    local.tables = [];
    local.clients = [];
    const pipeline = new Pipeline({
      policy: Policy.fromConfig(local),
      registry,
      forwarder,
      upstreamNames: ['default', 'policy'],
      counters: newProxyCounters(),
      log: silentLogger,
      canary: 'nxdomain',
      policyServer: policyServerLink(ctx(), 'policy'),
    });
    try {
      const answer = await pipeline.handle(clientQuery(KOJIMA, 1), { address: '127.0.0.1', port: 5353, transport: 'udp' });
      expect(answer![3]! & 0x0f).toBe(0);
      expect(registry.registrations).toHaveLength(1);
      expect(registry.registrations[0]).toMatchObject({ addrs: [KOJIMA_ADDR], channel: { name: 'server:hub-a' } });
      expect(policySet.healthOf().map((h) => h.state)).toEqual(['down', 'up']);
    } finally {
      forwarder.close();
    }
  });
});
