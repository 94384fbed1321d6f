/**
 * Forged upstream answers (RFC 5452) against the running proxy, with dig as the client: a
 * fake upstream sends forgeries first — from another port, with a wrong ID, with a wrong
 * question — then the real answer. dig must see only the real one; a forgery alone must end
 * in SERVFAIL, not in its addresses.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import dnsPacket from 'dns-packet';
import { startProxy, type Proxy } from '../../src/proxy/proxy.ts';
import { proxyOptions } from '../proxy/proxy-options.ts';
import { newProxyCounters } from '../../src/proxy/proxy-counters.ts';
import { FakeUpstream } from '../proxy/fake-upstream.ts';
import { RecordingRegistry, SuffixPolicy } from '../proxy/doubles.ts';
import { dig } from './dig.ts';
import { haveBinary } from './knot-server.ts';

const HAVE = haveBinary('dig');
if (!HAVE) console.log('integration/forged-answers: skipped — needs dig (apt: bind9-dnsutils)');

const evil = (name: string, ip: string) => [{ name, type: 'A', ttl: 60, class: 'IN', data: ip }] as dnsPacket.Answer[];

describe.skipIf(!HAVE)('integration/forged-answers', () => {
  let fake: FakeUpstream;
  let proxy: Proxy;
  let port: number;
  const registry = new RecordingRegistry();
  const counters = newProxyCounters();

  beforeAll(async () => {
    fake = await FakeUpstream.start((q, t) => {
      t.sendFromOther(t.answerFor(q, { answers: evil(q.name, '6.6.6.1') }));
      t.sendFromSelf(t.answerFor(q, { id: q.id ^ 0x5555, answers: evil(q.name, '6.6.6.2') }));
      t.sendFromSelf(t.answerFor(q, { name: 'other.corp.test', answers: evil('other.corp.test', '6.6.6.3') }));
      t.sendFromSelf(t.answerFor(q, { name: q.name.toUpperCase(), answers: evil(q.name.toUpperCase(), '6.6.6.4') }));
      if (q.name.startsWith('only-forged')) return null;
      return t.answerFor(q, { answers: evil(q.name, '192.0.2.77') });
    });
    proxy = await startProxy(
      proxyOptions({ address: '127.0.0.1', port: fake.port }, {
        upstreamTimeoutMs: 1000, // the real answer must beat it on a loaded machine; only-forged pays it once
        policy: new SuffixPolicy(['corp.test']),
        registry,
        counters,
      }),
    );
    port = proxy.listeners[0]!.port;
  });

  afterAll(async () => {
    await proxy.close();
    fake.stop();
  });

  test.each([[[]], [['+tcp']]])('dig gets only the real answer when forgeries come first (%p)', async (extra) => {
    const r = await dig('127.0.0.1', port, [...extra, 'www.corp.test', 'A']);
    expect(r.status).toBe('NOERROR');
    expect(r.records).toEqual(['ANSWER www.corp.test. 60 IN A 192.0.2.77']);
    expect(registry.registrations.flatMap((x) => x.addrs)).not.toContain('6.6.6.2');
    expect(counters.upstreamIgnored.id).toBeGreaterThan(0);
    expect(counters.upstreamIgnored.question).toBeGreaterThan(0);
  });

  test('dig gets SERVFAIL and nothing is registered when only forgeries arrive', async () => {
    const before = registry.registrations.length;
    const r = await dig('127.0.0.1', port, ['only-forged.corp.test', 'A']);
    expect(r.status).toBe('SERVFAIL');
    expect(r.records).toEqual([]);
    expect(registry.registrations.length).toBe(before);
  });
});
