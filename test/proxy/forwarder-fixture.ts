/**
 * A real Forwarder (UDP + TCP upstreams) in front of a scripted FakeUpstream on loopback, and
 * parsed client queries: shared by the forwarder and exchange-hook tests.
 */
import { afterEach } from 'bun:test';
import { parseQuery, type ParsedQuery } from '../../src/dns/query.ts';
import { Forwarder } from '../../src/proxy/forwarder.ts';
import { newProxyCounters } from '../../src/proxy/proxy-counters.ts';
import { TcpUpstream } from '../../src/proxy/upstream-tcp.ts';
import { UdpUpstream } from '../../src/proxy/upstream-udp.ts';
import { realClock } from '../../src/util/clock.ts';
import { silentLogger } from '../../src/util/log.ts';
import { clientQuery } from '../fixtures/dns/capture.ts';
import { FakeUpstream, type Script } from './fake-upstream.ts';

export function q(name: string, dnssec = false): ParsedQuery {
  const r = parseQuery(clientQuery(name, 1, dnssec));
  if (r.kind !== 'ok') throw new Error('bad query');
  return r.query;
}

const cleanup: Array<() => void> = [];
afterEach(() => {
  while (cleanup.length) cleanup.pop()!();
});

/** The forwarder and its fake upstream are closed after the current test. */
export async function forwarderOn(script: Script, timeoutMs: number) {
  const fake = await FakeUpstream.start(script);
  const counters = newProxyCounters();
  const common = { name: 'default', address: '127.0.0.1', port: fake.port, timeoutMs, counters };
  const udp = await UdpUpstream.open({ ...common, clock: realClock, log: silentLogger });
  const fwd = new Forwarder(new Map([['default', { udp, tcp: new TcpUpstream(common) }]]), counters);
  cleanup.push(() => fwd.close(), () => fake.stop());
  return { fake, fwd, counters };
}
