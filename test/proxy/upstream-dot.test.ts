import { afterAll, afterEach, describe, expect, test } from 'bun:test';
import dnsPacket from 'dns-packet';
import { newProxyCounters } from '../../src/proxy/proxy-counters.ts';
import { DotUpstream, type DotUpstreamOptions } from '../../src/proxy/upstream-dot.ts';
import { UpstreamError } from '../../src/proxy/upstream.ts';
import { realClock } from '../../src/util/clock.ts';
import { silentLogger } from '../../src/util/log.ts';
import { startFakeDot, type EncryptedFake } from './fake-encrypted.ts';
import type { Script } from './fake-upstream.ts';
import { haveOpenssl, makeCerts, type TestCerts } from './tls-certs.ts';
import { q, waitFor } from './upstream-contract.ts';
import { certificateRefusalCases } from './tls-refusal-cases.ts';

const HAVE = haveOpenssl();
if (!HAVE) console.log('proxy/upstream-dot: skipped — needs openssl (apt: openssl)');

describe.skipIf(!HAVE)('proxy/upstream-dot', () => {
  let certs: TestCerts;
  const cleanup: Array<() => unknown> = [];
  afterEach(async () => {
    while (cleanup.length) await cleanup.pop()!();
  });
  afterAll(() => certs?.cleanup());

  async function setup(script: Script, over: Partial<DotUpstreamOptions> = {}, serverCert?: { key: string; cert: string }) {
    certs ??= makeCerts(['dns.test']);
    const fake = await startFakeDot({ key: serverCert?.key ?? certs.key, cert: serverCert?.cert ?? certs.cert, script });
    const counters = newProxyCounters();
    const up = new DotUpstream({ name: 'default', address: '127.0.0.1', port: fake.port, serverName: 'dns.test', ca: certs.ca, timeoutMs: 2000, clock: realClock, log: silentLogger, counters, ...over });
    cleanup.push(() => fake.stop(), () => up.close());
    return { fake, up, counters };
  }

  test('pipelines concurrent queries on one connection when they arrive together', async () => {
    const { fake, up } = await setup((query, t) => new Promise((r) => setTimeout(() => r(t.answerFor(query)), 20)));
    await Promise.all(Array.from({ length: 50 }, (_, i) => up.exchange(q(`p${i}.test`))));
    expect(fake.connections).toBe(1);
    expect(fake.queries).toHaveLength(50);
    expect(fake.maxConcurrent).toBeGreaterThan(10);
    expect(up.stats()).toMatchObject({ state: 'ready', connections: 1, inFlight: 0, waiting: 0 });
  });

  test('keeps at most maxInFlight queries on the wire when more are asked at once', async () => {
    const { fake, up } = await setup((query, t) => new Promise((r) => setTimeout(() => r(t.answerFor(query)), 10)), { maxInFlight: 4 });
    await Promise.all(Array.from({ length: 20 }, (_, i) => up.exchange(q(`m${i}.test`))));
    expect(fake.queries).toHaveLength(20);
    expect(fake.maxConcurrent).toBeLessThanOrEqual(4);
  });

  test('pads queries to a multiple of 128 octets (RFC 8467) when sending', async () => {
    const { fake, up } = await setup((query, t) => t.answerFor(query));
    await up.exchange(q('pad.test'));
    const bytes = fake.queries[0]!.bytes;
    expect(bytes.length % 128).toBe(0);
    const opt = dnsPacket.decode(Buffer.from(bytes)).additionals?.[0] as unknown as { options: Array<{ code: number }> };
    expect(opt.options.map((o) => o.code)).toEqual([12]);
  });

  certificateRefusalCases(
    () => (certs ??= makeCerts(['dns.test'])),
    async (o) => {
      const { fake, up } = await setup((query, t) => t.answerFor(query), o.serverName ? { serverName: o.serverName } : {}, o.serverCert);
      return { up, queries: () => fake.queries.length };
    },
  );

  test('checks against the system CA store when no CA is configured', async () => {
    const { fake, up } = await setup((query, t) => t.answerFor(query), { ca: undefined });
    const err = (await up.exchange(q('secret-name.test')).catch((e: unknown) => e)) as UpstreamError;
    expect(err.reason).toBe('tls');
    expect(fake.queries).toHaveLength(0);
  });

  test('reconnects on the next query when the server closed the idle connection', async () => {
    const { fake, up } = await setup((query, t) => t.answerFor(query));
    await up.exchange(q('a.test'));
    fake.dropConnections();
    await waitFor(() => up.stats().state === 'idle', 'the upstream to see the connection closed');
    await up.exchange(q('b.test'));
    expect(fake.connections).toBe(2);
  });

  test('sends a query again on a fresh connection when the connection closes under it', async () => {
    let first = true;
    let fake!: EncryptedFake;
    const s = await setup((query, t) => {
      if (query.name === 'warm.test') return t.answerFor(query);
      if (first) {
        first = false;
        fake.dropConnections(); // closes with this query in flight
        return null;
      }
      return t.answerFor(query);
    });
    fake = s.fake;
    await s.up.exchange(q('warm.test'));
    const ans = await s.up.exchange(q('retry.test'));
    expect(dnsPacket.decode(Buffer.from(ans)).questions?.[0]?.name).toBe('retry.test');
    expect(fake.queries.filter((x) => x.name === 'retry.test').map((x) => x.conn)).toEqual([1, 2]);
  });

  test('drops a connection that stopped answering and opens a fresh one for the next query', async () => {
    const { fake, up } = await setup((query, t) => (query.name === 'hang.test' ? null : t.answerFor(query)), { timeoutMs: 200 });
    await up.exchange(q('warm.test'));
    const err = (await up.exchange(q('hang.test')).catch((e: unknown) => e)) as UpstreamError;
    expect(err.reason).toBe('timeout');
    await waitFor(() => up.stats().state !== 'ready', 'the silent connection to be dropped');
    await up.exchange(q('after.test'));
    expect(fake.queries.find((x) => x.name === 'after.test')!.conn).toBe(2);
  });

  test('gives up a connection whose TLS handshake never ends and tries again later', async () => {
    let accepted = 0;
    const mute = Bun.listen({ hostname: '127.0.0.1', port: 0, socket: { open: () => void accepted++, data: () => {} } });
    cleanup.push(() => mute.stop(true));
    certs ??= makeCerts(['dns.test']);
    const up = new DotUpstream({ name: 'default', address: '127.0.0.1', port: mute.port, serverName: 'dns.test', ca: certs.ca, timeoutMs: 150, clock: realClock, log: silentLogger, counters: newProxyCounters(), backoffMinMs: 10 });
    cleanup.push(() => up.close());
    const err = (await up.exchange(q('a.test')).catch((e: unknown) => e)) as UpstreamError;
    expect(err.reason).toBe('timeout');
    await waitFor(() => up.stats().state !== 'connecting', 'the hung handshake to be given up');
    await up.exchange(q('b.test')).catch(() => {});
    expect(accepted).toBe(2);
  });

  test('closes the connection after idleMs without queries', async () => {
    const { up } = await setup((query, t) => t.answerFor(query), { idleMs: 50 });
    await up.exchange(q('idle.test'));
    expect(up.stats().state).toBe('ready');
    await waitFor(() => up.stats().state === 'idle', 'the idle connection to close');
  });

  test('fails with refused and waits a backoff before the next attempt when nothing listens', async () => {
    const probe = Bun.listen({ hostname: '127.0.0.1', port: 0, socket: { data: () => {} } });
    const port = probe.port;
    probe.stop(true);
    const up = new DotUpstream({ name: 'default', address: '127.0.0.1', port, serverName: 'dns.test', timeoutMs: 2000, clock: realClock, log: silentLogger, counters: newProxyCounters(), backoffMinMs: 10_000 });
    cleanup.push(() => up.close());
    const err = (await up.exchange(q('a.test')).catch((e: unknown) => e)) as UpstreamError;
    expect(err.reason).toBe('refused');
    expect(err.errno).toBe('ECONNREFUSED');
    // Within the backoff no new connection is tried: the query waits, then times out.
    const next = up.exchange(q('b.test')).catch((e: unknown) => e);
    expect(up.stats().state).toBe('backoff');
    up.close();
    expect(((await next) as UpstreamError).reason).toBe('closed');
  });

  test('fails the exchange as unverified when accept refuses an answer on the connection', async () => {
    const { up, counters } = await setup((query, t) => t.answerFor(query));
    const hooks = { sign: (w: Uint8Array) => w, accept: () => false };
    const err = (await up.exchange(q('tsig.test'), hooks).catch((e: unknown) => e)) as UpstreamError;
    expect(err.reason).toBe('unverified');
    expect(counters.upstreamIgnored.tsig).toBe(1);
  });

  test('ignores an answer with an unknown ID and waits for the right one', async () => {
    const { up, counters } = await setup((query, t) => {
      t.sendFromSelf(t.answerFor(query, { id: (query.id + 1) & 0xffff, answers: [{ name: query.name, type: 'A', ttl: 1, class: 'IN', data: '6.6.6.6' }] }));
      return t.answerFor(query);
    });
    const ans = await up.exchange(q('id.test'));
    expect((dnsPacket.decode(Buffer.from(ans)).answers?.[0] as { data: string }).data).toBe('192.0.2.1');
    expect(counters.upstreamIgnored.id).toBe(1);
  });
});
