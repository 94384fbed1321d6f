/**
 * The whole proxy (listeners, forwarder, pipeline) in front of a scripted FakeUpstream on
 * loopback, with the registry double, and a UDP client that can ask from a chosen loopback
 * address: the end-to-end tests of what a client receives.
 */
import { afterEach } from 'bun:test';
import dnsPacket from 'dns-packet';
import { startProxy, type ProxyOptions } from '../../src/proxy/proxy.ts';
import { proxyOptions } from './proxy-options.ts';
import { newProxyCounters } from '../../src/proxy/proxy-counters.ts';
import type { PolicyApi } from '../../src/proxy/pipeline.ts';
import { RecordingRegistry } from './doubles.ts';
import { FakeUpstream, type Script } from './fake-upstream.ts';

const cleanup: Array<() => unknown> = [];
afterEach(async () => {
  while (cleanup.length) await cleanup.pop()!();
});

/**
 * Proxy and fake upstream (`default`) are closed after the current test; `more` names further
 * scripted upstreams (split DNS), started and closed the same way.
 */
export async function proxyOn(script: Script, policy: PolicyApi, extra: Partial<ProxyOptions> = {}, more: Record<string, Script> = {}) {
  const fake = await FakeUpstream.start(script);
  cleanup.push(() => fake.stop());
  const others: Record<string, FakeUpstream> = {};
  for (const [name, s] of Object.entries(more)) {
    const f = (others[name] = await FakeUpstream.start(s));
    cleanup.push(() => f.stop());
  }
  const registry = new RecordingRegistry();
  const counters = newProxyCounters();
  const proxy = await startProxy(
    proxyOptions(
      { address: '127.0.0.1', port: fake.port },
      {
        upstreams: [{ name: 'default', servers: [{ transport: 'dns', address: '127.0.0.1', port: fake.port }] }, ...Object.entries(others).map(([name, f]) => ({ name, servers: [{ transport: 'dns' as const, address: '127.0.0.1', port: f.port }] }))],
        policy,
        registry,
        counters,
        ...extra,
      },
    ),
  );
  cleanup.push(() => proxy.close());
  const port = proxy.listeners[0]!.port;
  return { fake, others, proxy, registry, counters, port, ask: (query: Uint8Array, from = '127.0.0.1') => askUdp(port, query, from) };
}

/** Sends `query` over UDP from `from` (any loopback address) and resolves with the answer, or rejects after 3 s. */
export async function askUdp(port: number, query: Uint8Array, from = '127.0.0.1'): Promise<dnsPacket.DecodedPacket & { rcode?: string }> {
  const done = Promise.withResolvers<Uint8Array>();
  const s = await Bun.udpSocket({
    binaryType: 'uint8array',
    hostname: from,
    port: 0,
    // ECONNREFUSED (nothing listens yet) ends the wait at once
    socket: { data: (_s, d) => done.resolve(d), error: (_s, err) => done.reject(err) },
  });
  const timer = setTimeout(() => done.reject(new Error(`no answer from the proxy on port ${port} within 3 s (client ${from})`)), 3000);
  try {
    s.send(query, port, '127.0.0.1');
    return dnsPacket.decode(Buffer.from(await done.promise)) as dnsPacket.DecodedPacket & { rcode?: string };
  } finally {
    clearTimeout(timer);
    s.close();
  }
}

/** Every address record (A/AAAA) of a decoded answer, all sections. */
export function addressesIn(p: dnsPacket.DecodedPacket): string[] {
  return [...(p.answers ?? []), ...(p.authorities ?? []), ...(p.additionals ?? [])]
    .filter((r) => r.type === 'A' || r.type === 'AAAA')
    .map((r) => (r as { data: string }).data);
}
