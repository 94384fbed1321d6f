/**
 * The cache wired into the proxy (`startProxy({ cache })`), over real sockets with knotd
 * upstream: a repeated question is answered from the cache — with the asking client's ID, the
 * remaining TTL and the client's UDP limit — and registered again before it is released, over
 * UDP and TCP. The cache has a fake clock of its own; the proxy runs on the real one.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import dnsPacket from 'dns-packet';
import { AnswerCache } from '../../src/cache/answer-cache.ts';
import { startProxy, type Proxy } from '../../src/proxy/proxy.ts';
import { proxyOptions } from '../proxy/proxy-options.ts';
import { FrameReader, frame } from '../../src/proxy/tcp-framing.ts';
import { FakeClock } from '../../src/util/clock.ts';
import { clientQuery } from '../fixtures/dns/capture.ts';
import { haveBinary, startKnot, type KnotServer } from '../integration/knot-server.ts';
import { EventLog, RecordingRegistry, SuffixPolicy } from '../proxy/doubles.ts';

const HAVE = haveBinary('knotd');
if (!HAVE) console.log('cache/proxy-cache: skipped — needs knotd (apt: knot)');

type Decoded = dnsPacket.DecodedPacket & { rcode: string };

async function udpAsk(port: number, q: Uint8Array): Promise<Decoded> {
  const done = Promise.withResolvers<Uint8Array>();
  const s = await Bun.udpSocket({ binaryType: 'uint8array', socket: { data: (_s, d) => done.resolve(d) } });
  s.send(q, port, '127.0.0.1');
  const a = await done.promise;
  s.close();
  return dnsPacket.decode(Buffer.from(a)) as Decoded;
}

async function tcpAsk(port: number, q: Uint8Array): Promise<Decoded> {
  const done = Promise.withResolvers<Uint8Array>();
  const reader = new FrameReader();
  const s = await Bun.connect({
    hostname: '127.0.0.1',
    port,
    socket: {
      data: (_s, chunk) => {
        const r = reader.push(chunk);
        if (r.kind === 'frames' && r.frames[0]) done.resolve(r.frames[0]);
      },
    },
  });
  s.write(frame(q));
  const a = await done.promise;
  s.end();
  return dnsPacket.decode(Buffer.from(a)) as Decoded;
}

describe.skipIf(!HAVE)('cache/proxy-cache', () => {
  let knot: KnotServer;
  let proxy: Proxy;
  let port: number;
  const events = new EventLog();
  const registry = new RecordingRegistry(events);
  const clock = new FakeClock();
  const cache = new AnswerCache({ clock });

  beforeAll(async () => {
    knot = await startKnot();
    proxy = await startProxy(
      proxyOptions({ address: knot.address, port: knot.port }, {
        upstreamTimeoutMs: 2000,
        policy: new SuffixPolicy(['corp.test']),
        registry,
        cache,
      }),
    );
    port = proxy.listeners[0]!.port;
  });

  afterAll(async () => {
    await proxy.close();
    await knot.stop();
  });

  test.each([
    ['udp', udpAsk],
    ['tcp', tcpAsk],
  ] as const)('answers a repeated protected question from the cache and registers it again over %s', async (_t, ask) => {
    cache.clear();
    registry.registrations.length = 0;
    const hits = cache.counters.hits;
    const first = await ask(port, clientQuery('front.test', 1, false, 0x1111));
    clock.advance(100_000);
    const second = await ask(port, clientQuery('FRONT.test', 1, false, 0x2222));
    expect(cache.counters.hits).toBe(hits + 1);
    expect(second.id).toBe(0x2222);
    expect(second.questions?.[0]?.name).toBe('FRONT.test');
    expect(first.answers?.map((r) => (r as { ttl?: number }).ttl)).toEqual([300, 300, 300]);
    expect(second.answers?.map((r) => (r as { ttl?: number }).ttl)).toEqual([200, 200, 200]);
    expect(registry.registrations.map((r) => [r.addrs, r.ttlS])).toEqual([
      [['203.0.113.10'], 300],
      [['203.0.113.10'], 200],
    ]);
  });

  test('applies the client\'s UDP limit to a hit when the answer is bigger', async () => {
    await tcpAsk(port, clientQuery('many.test', 1));
    const hits = cache.counters.hits;
    const udp = await udpAsk(port, clientQuery('many.test', 1));
    expect(cache.counters.hits).toBe(hits + 1);
    expect(udp.flag_tc).toBe(true);
    expect(udp.answers).toEqual([]);
    const tcp = await tcpAsk(port, clientQuery('many.test', 1));
    expect(tcp.answers?.length).toBe(120);
  });
});
