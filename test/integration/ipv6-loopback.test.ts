/** The proxy on IPv6 loopback ([::1]) in front of knotd on 127.0.0.1, queried by dig over UDP and TCP. */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { startProxy, type Proxy } from '../../src/proxy/proxy.ts';
import { proxyOptions } from '../proxy/proxy-options.ts';
import { RecordingRegistry, SuffixPolicy } from '../proxy/doubles.ts';
import { dig } from './dig.ts';
import { haveBinary, startKnot, type KnotServer } from './knot-server.ts';

async function haveIpv6Loopback(): Promise<boolean> {
  try {
    const s = await Bun.udpSocket({ hostname: '::1', port: 0 });
    s.close();
    return true;
  } catch {
    return false;
  }
}

const HAVE = haveBinary('knotd') && haveBinary('dig') && (await haveIpv6Loopback());
if (!HAVE) console.log('integration/ipv6-loopback: skipped — needs knotd, dig and an IPv6 loopback');

describe.skipIf(!HAVE)('integration/ipv6-loopback', () => {
  let knot: KnotServer;
  let proxy: Proxy;
  const registry = new RecordingRegistry();

  beforeAll(async () => {
    knot = await startKnot();
    proxy = await startProxy(
      proxyOptions({ address: knot.address, port: knot.port }, {
        listen: ['[::1]:0'],
        upstreamTimeoutMs: 2000,
        policy: new SuffixPolicy(['corp.test']),
        registry,
      }),
    );
  });

  afterAll(async () => {
    await proxy.close();
    await knot.stop();
  });

  test.each([[[]], [['+tcp']]])('answers dig on ::1 and registers the client as ::1 (%p)', async (extra) => {
    const port = proxy.listeners[0]!.port;
    expect(proxy.listeners[0]!.hostname).toBe('::1');
    const r = await dig('::1', port, [...extra, 'www.corp.test', 'AAAA']);
    expect(r.records).toEqual(['ANSWER www.corp.test. 300 IN AAAA 2001:db8:c0::10']);
    expect(registry.registrations.at(-1)?.addrs).toEqual(['2001:db8:c0::10']);
  });
});
