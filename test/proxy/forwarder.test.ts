import { describe, expect, test } from 'bun:test';
import { UpstreamError } from '../../src/proxy/upstream.ts';
import { type Script } from './fake-upstream.ts';
import { forwarderOn, q } from './forwarder-fixture.ts';

const setup = (script: Script) => forwarderOn(script, 1000);

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
