import { afterEach, describe, expect, test } from 'bun:test';
import { parseQuery, type ParsedQuery } from '../../src/dns/query.ts';
import { Forwarder } from '../../src/proxy/forwarder.ts';
import { newProxyCounters } from '../../src/proxy/proxy-counters.ts';
import { TcpUpstream } from '../../src/proxy/upstream-tcp.ts';
import { UdpUpstream } from '../../src/proxy/upstream-udp.ts';
import { UpstreamError } from '../../src/proxy/upstream.ts';
import { realClock } from '../../src/util/clock.ts';
import { silentLogger } from '../../src/util/log.ts';
import { clientQuery } from '../fixtures/dns/capture.ts';
import { FakeUpstream, type Script } from './fake-upstream.ts';

function q(name: string, dnssec = false): ParsedQuery {
  const r = parseQuery(clientQuery(name, 1, dnssec));
  if (r.kind !== 'ok') throw new Error('bad query');
  return r.query;
}

const cleanup: Array<() => void> = [];
afterEach(() => {
  while (cleanup.length) cleanup.pop()!();
});

async function setup(script: Script) {
  const fake = await FakeUpstream.start(script);
  const counters = newProxyCounters();
  const common = { name: 'default', address: '127.0.0.1', port: fake.port, timeoutMs: 1000, counters };
  const udp = await UdpUpstream.open({ ...common, clock: realClock, log: silentLogger });
  const fwd = new Forwarder(new Map([['default', { udp, tcp: new TcpUpstream(common) }]]), counters);
  cleanup.push(() => fwd.close(), () => fake.stop());
  return { fake, fwd, counters };
}

describe('proxy/forwarder', () => {
  test('retries over TCP and returns the whole answer when the UDP answer is truncated', async () => {
    const many = Array.from({ length: 100 }, (_, i) => ({ name: 'big.test', type: 'A' as const, ttl: 60, class: 'IN' as const, data: `198.51.100.${i + 1}` }));
    const { fake, fwd, counters } = await setup((query, t) =>
      query.transport === 'udp' ? t.answerFor(query, { tc: true, answers: [] }) : t.answerFor(query, { answers: many }),
    );
    const f = await fwd.forward(q('big.test'), null);
    expect(f.via).toBe('tcp');
    expect(f.scan.addrs.length).toBe(100);
    expect(fake.queries.map((x) => x.transport)).toEqual(['udp', 'tcp']);
    expect(counters.upstreamTcpRetries).toBe(1);
  });

  test('shares one upstream query when identical questions are in flight', async () => {
    const { fake, fwd, counters } = await setup(async (query, t) => {
      await Bun.sleep(30);
      return t.answerFor(query);
    });
    const all = await Promise.all([fwd.forward(q('www.test'), null), fwd.forward(q('www.test'), null), fwd.forward(q('www.test'), null)]);
    expect(all.every((f) => f.scan.addrs[0] === '192.0.2.1')).toBe(true);
    expect(fake.queries.length).toBe(1);
    expect(counters.upstreamShared).toBe(2);
  });

  test('does not share when the questions differ in case or DO bit', async () => {
    const { fake, fwd } = await setup(async (query, t) => {
      await Bun.sleep(20);
      return t.answerFor(query);
    });
    await Promise.all([fwd.forward(q('www.test'), null), fwd.forward(q('WWW.test'), null), fwd.forward(q('www.test', true), null)]);
    expect(fake.queries.length).toBe(3);
  });

  test('asks the upstream again when the earlier identical query has finished', async () => {
    const { fake, fwd } = await setup((query, t) => t.answerFor(query));
    await fwd.forward(q('www.test'), null);
    await fwd.forward(q('www.test'), null);
    expect(fake.queries.length).toBe(2);
  });

  test('rejects with an UpstreamError when the upstream name is unknown', async () => {
    const { fwd } = await setup((query, t) => t.answerFor(query));
    expect(await fwd.forward(q('www.test'), 'nope').catch((e: unknown) => e)).toBeInstanceOf(UpstreamError);
  });
});
