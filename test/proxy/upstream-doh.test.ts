import { afterAll, afterEach, describe, expect, test } from 'bun:test';
import dnsPacket from 'dns-packet';
import { newProxyCounters } from '../../src/proxy/proxy-counters.ts';
import { DohUpstream, type DohUpstreamOptions } from '../../src/proxy/upstream-doh.ts';
import { UpstreamError } from '../../src/proxy/upstream.ts';
import { DnssealError } from '../../src/util/errors.ts';
import { silentLogger } from '../../src/util/log.ts';
import { startFakeDoh, type DohFakeOptions } from './fake-encrypted.ts';
import type { Script } from './fake-upstream.ts';
import { haveOpenssl, makeCerts, type TestCerts } from './tls-certs.ts';
import { q } from './upstream-contract.ts';
import { certificateRefusalCases } from './tls-refusal-cases.ts';

const HAVE = haveOpenssl();
if (!HAVE) console.log('proxy/upstream-doh: skipped — needs openssl (apt: openssl)');

describe.skipIf(!HAVE)('proxy/upstream-doh', () => {
  let certs: TestCerts;
  const cleanup: Array<() => unknown> = [];
  afterEach(async () => {
    while (cleanup.length) await cleanup.pop()!();
  });
  afterAll(() => certs?.cleanup());

  async function setup(script: Script, over: Partial<DohUpstreamOptions> = {}, fakeOver: Partial<DohFakeOptions> = {}) {
    certs ??= makeCerts(['dns.test']);
    const fake = await startFakeDoh({ key: certs.key, cert: certs.cert, script, ...fakeOver });
    const counters = newProxyCounters();
    const up = new DohUpstream({ name: 'default', address: '127.0.0.1', port: fake.port, path: '/dns-query', serverName: 'dns.test', ca: certs.ca, timeoutMs: 2000, log: silentLogger, counters, ...over });
    cleanup.push(() => fake.stop(), () => up.close());
    return { fake, up, counters };
  }

  test('posts a padded query with ID 0 over HTTP/2 to the path, naming the server in :authority', async () => {
    const { fake, up } = await setup((query, t) => t.answerFor(query));
    await up.exchange(q('www.doh.test'));
    const got = fake.queries[0]!;
    expect(got.id).toBe(0);
    expect(got.bytes.length % 128).toBe(0);
    expect(got.headers?.[':method']).toBe('POST');
    expect(got.headers?.[':path']).toBe('/dns-query');
    expect(got.headers?.[':authority']).toBe(`dns.test:${fake.port}`);
    expect(got.headers?.['content-type']).toBe('application/dns-message');
    expect(got.headers?.['accept']).toBe('application/dns-message');
  });

  test('multiplexes concurrent queries over kept connections', async () => {
    const { fake, up } = await setup((query, t) => new Promise((r) => setTimeout(() => r(t.answerFor(query)), 20)));
    await Promise.all(Array.from({ length: 40 }, (_, i) => up.exchange(q(`c${i}.test`))));
    await Promise.all(Array.from({ length: 40 }, (_, i) => up.exchange(q(`d${i}.test`))));
    expect(fake.queries).toHaveLength(80);
    // HTTP/2 streams share connections: far fewer connections than queries, and reused.
    expect(fake.connections).toBeLessThanOrEqual(8);
    expect(fake.maxConcurrent).toBeGreaterThan(fake.connections);
  });

  certificateRefusalCases(
    () => (certs ??= makeCerts(['dns.test'])),
    async (o) => {
      const { fake, up } = await setup((query, t) => t.answerFor(query), o.serverName ? { serverName: o.serverName } : {}, o.serverCert ?? {});
      return { up, queries: () => fake.queries.length };
    },
  );

  test('fails with http when the server answers with an HTTP error', async () => {
    const { up } = await setup((query, t) => t.answerFor(query), {}, { status: 503 });
    const err = (await up.exchange(q('busy.test')).catch((e: unknown) => e)) as UpstreamError;
    expect(err.reason).toBe('http');
    expect(err.message).toContain('HTTP 503');
  });

  test('fails with http when the answer is not a DNS message', async () => {
    const { up } = await setup((query, t) => t.answerFor(query), {}, { contentType: 'text/html' });
    const err = (await up.exchange(q('html.test')).catch((e: unknown) => e)) as UpstreamError;
    expect(err.reason).toBe('http');
  });

  test('fails with malformed when the answer is for another question', async () => {
    const { up, counters } = await setup((query, t) => t.answerFor(query, { name: 'evil.test' }));
    const err = (await up.exchange(q('good.test')).catch((e: unknown) => e)) as UpstreamError;
    expect(err.reason).toBe('malformed');
    expect(counters.upstreamIgnored.question).toBe(1);
  });

  test('fails with malformed when the answer does not carry ID 0', async () => {
    const { up, counters } = await setup((query, t) => t.answerFor(query, { id: 77 }));
    const err = (await up.exchange(q('id.test')).catch((e: unknown) => e)) as UpstreamError;
    expect(err.reason).toBe('malformed');
    expect(counters.upstreamIgnored.id).toBe(1);
  });

  test('fails with refused when nothing listens on the port', async () => {
    const probe = Bun.listen({ hostname: '127.0.0.1', port: 0, socket: { data: () => {} } });
    const port = probe.port;
    probe.stop(true);
    certs ??= makeCerts(['dns.test']);
    const up = new DohUpstream({ name: 'default', address: '127.0.0.1', port, path: '/dns-query', serverName: 'dns.test', ca: certs.ca, timeoutMs: 2000, log: silentLogger, counters: newProxyCounters() });
    cleanup.push(() => up.close());
    const err = (await up.exchange(q('a.test')).catch((e: unknown) => e)) as UpstreamError;
    expect(err.reason).toBe('refused');
    expect(err.errno).toBe('ECONNREFUSED');
  });

  test('refuses upstream_source at construction when one is configured', () => {
    expect(
      () => new DohUpstream({ name: 'default', address: '127.0.0.1', port: 443, path: '/dns-query', serverName: 'dns.test', timeoutMs: 2000, log: silentLogger, counters: newProxyCounters(), source: '127.0.0.1' }),
    ).toThrow(DnssealError);
  });

  test('decodes the answer bytes unchanged when the server answers', async () => {
    const { up } = await setup((query, t) => t.answerFor(query, { answers: [{ name: query.name, type: 'AAAA', ttl: 30, class: 'IN', data: '2001:db8::53' }] }));
    const ans = await up.exchange(q('v6.test', 28));
    expect((dnsPacket.decode(Buffer.from(ans)).answers?.[0] as { data: string }).data).toBe('2001:db8::53');
  });
});
