/**
 * S105 before S106 on the wire: with real knotd upstream and a registry that takes its time,
 * a client's answer (UDP and TCP) arrives only after the registration finished, and a failed
 * registration reaches the client as SERVFAIL. The client is in-process so it can note the
 * moment the answer arrives in the same event log as the registry.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import dnsPacket from 'dns-packet';
import { startProxy, type Proxy } from '../../src/proxy/proxy.ts';
import { proxyOptions } from '../proxy/proxy-options.ts';
import { FrameReader, frame } from '../../src/proxy/tcp-framing.ts';
import { clientQuery } from '../fixtures/dns/capture.ts';
import { EventLog, mapFull, RecordingRegistry, SuffixPolicy } from '../proxy/doubles.ts';
import { haveBinary, startKnot, type KnotServer } from './knot-server.ts';

const HAVE = haveBinary('knotd');
if (!HAVE) console.log('integration/register-order: skipped — needs knotd (apt: knot)');

async function udpAsk(port: number, q: Uint8Array, events: EventLog): Promise<Uint8Array> {
  const done = Promise.withResolvers<Uint8Array>();
  const s = await Bun.udpSocket({
    binaryType: 'uint8array',
    socket: {
      data: (_s, d) => {
        events.note('client has answer');
        done.resolve(d);
      },
    },
  });
  s.send(q, port, '127.0.0.1');
  const a = await done.promise;
  s.close();
  return a;
}

async function tcpAsk(port: number, q: Uint8Array, events: EventLog): Promise<Uint8Array> {
  const done = Promise.withResolvers<Uint8Array>();
  const reader = new FrameReader();
  const s = await Bun.connect({
    hostname: '127.0.0.1',
    port,
    socket: {
      data: (_s, chunk) => {
        const r = reader.push(chunk);
        if (r.kind === 'frames' && r.frames[0]) {
          events.note('client has answer');
          done.resolve(r.frames[0]);
        }
      },
    },
  });
  s.write(frame(q));
  const a = await done.promise;
  s.end();
  return a;
}

describe.skipIf(!HAVE)('integration/register-order', () => {
  let knot: KnotServer;
  let proxy: Proxy;
  let port: number;
  const events = new EventLog();
  const registry = new RecordingRegistry(events);

  beforeAll(async () => {
    knot = await startKnot();
    proxy = await startProxy(
      proxyOptions({ address: knot.address, port: knot.port }, {
        upstreamTimeoutMs: 2000,
        policy: new SuffixPolicy(['corp.test']),
        registry,
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
  ] as const)('the client gets the answer only after registration when asking over %s', async (_t, ask) => {
    events.events.length = 0;
    registry.failWith = null;
    registry.delayMs = 80;
    const a = dnsPacket.decode(Buffer.from(await ask(port, clientQuery('front.test', 1), events)));
    expect(a.answers?.length).toBe(3);
    expect(events.events.map((e) => e.what)).toEqual(['registered', 'client has answer']);
    expect(events.events[0]!.detail).toEqual(['203.0.113.10']);
  });

  test.each([
    ['udp', udpAsk],
    ['tcp', tcpAsk],
  ] as const)('the client gets SERVFAIL and no address over %s when registration fails', async (_t, ask) => {
    registry.delayMs = 0;
    registry.failWith = mapFull();
    const a = dnsPacket.decode(Buffer.from(await ask(port, clientQuery('www.corp.test', 1), events))) as dnsPacket.DecodedPacket & { rcode: string };
    expect(a.rcode).toBe('SERVFAIL');
    expect(a.answers).toEqual([]);
    registry.failWith = null;
  });
});
