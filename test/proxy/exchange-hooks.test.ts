/**
 * Per-exchange hooks (a policy-server upstream, #5) on the real UDP/TCP upstreams and the
 * forwarder: `sign` makes the bytes sent; over UDP an answer `accept` refuses is ignored like a
 * wrong-ID one (the genuine one may still come), over TCP it fails the exchange (`unverified`);
 * each transport attempt gets fresh hooks; signed exchanges are never shared.
 */
import { describe, expect, test } from 'bun:test';
import { Pipeline } from '../../src/proxy/pipeline.ts';
import { newProxyCounters } from '../../src/proxy/proxy-counters.ts';
import { UpstreamError, type ExchangeHooks } from '../../src/proxy/upstream.ts';
import { silentLogger } from '../../src/util/log.ts';
import { clientQuery } from '../fixtures/dns/capture.ts';
import { RecordingRegistry, SuffixPolicy } from './doubles.ts';
import { type Script } from './fake-upstream.ts';
import { forwarderOn, q } from './forwarder-fixture.ts';

const setup = (script: Script) => forwarderOn(script, 800);

/** Hooks that record what they signed and refuse answers carrying `refuse` (an IPv4 address). */
class TestHooks implements ExchangeHooks {
  signed: Uint8Array[] = [];
  offered = 0;
  constructor(private readonly refuse: (answer: Uint8Array) => boolean) {}
  sign(wire: Uint8Array): Uint8Array {
    const out = Uint8Array.from(wire);
    this.signed.push(out);
    return out;
  }
  accept(answer: Uint8Array): boolean {
    this.offered++;
    return !this.refuse(answer);
  }
}

const carries = (addr: string) => (answer: Uint8Array) => {
  const b = addr.split('.').map(Number);
  for (let i = 0; i + 4 <= answer.length; i++) if (answer[i] === b[0] && answer[i + 1] === b[1] && answer[i + 2] === b[2] && answer[i + 3] === b[3]) return true;
  return false;
};

describe('proxy/exchange-hooks', () => {
  test('ignores a refused UDP answer and takes the genuine one that follows when the first fails verification', async () => {
    const { fake, fwd, counters } = await setup((query, t) => {
      t.sendFromSelf(t.answerFor(query, { answers: [{ name: query.name, type: 'A', ttl: 60, class: 'IN', data: '192.0.2.66' }] }));
      return t.answerFor(query);
    });
    const made: TestHooks[] = [];
    const f = await fwd.forward(q('www.test'), null, () => {
      const h = new TestHooks(carries('192.0.2.66'));
      made.push(h);
      return h;
    });
    expect(f.scan.addrs).toEqual(['192.0.2.1']);
    expect(f.hooks).toBe(made[0]!);
    expect(made[0]!.offered).toBe(2);
    expect(counters.upstreamIgnored.tsig).toBe(1);
    // what went on the wire is what sign returned
    expect(fake.queries[0]!.bytes).toEqual(made[0]!.signed[0]!);
  });

  test('fails with unverified when a TCP answer is refused after a truncated UDP one', async () => {
    const { fake, fwd, counters } = await setup((query, t) =>
      query.transport === 'udp'
        ? t.answerFor(query, { tc: true, answers: [] })
        : t.answerFor(query, { answers: [{ name: query.name, type: 'A', ttl: 60, class: 'IN', data: '192.0.2.66' }] }),
    );
    const made: TestHooks[] = [];
    const err = await fwd
      .forward(q('big.test'), null, () => {
        const h = new TestHooks(carries('192.0.2.66'));
        made.push(h);
        return h;
      })
      .then(
        () => null,
        (e: unknown) => e,
      );
    expect(err).toBeInstanceOf(UpstreamError);
    expect((err as UpstreamError).reason).toBe('unverified');
    // fresh hooks per attempt: each transport signed its own query
    expect(made).toHaveLength(2);
    expect(made.map((h) => h.signed.length)).toEqual([1, 1]);
    expect(fake.queries.map((x) => x.transport)).toEqual(['udp', 'tcp']);
    expect(counters.upstreamIgnored.tsig).toBe(1);
  });

  test('never shares a signed exchange when identical questions are in flight', async () => {
    const { fake, fwd, counters } = await setup(async (query, t) => {
      await Bun.sleep(30);
      return t.answerFor(query);
    });
    const hooks = () => new TestHooks(() => false);
    await Promise.all([fwd.forward(q('www.test'), null, hooks), fwd.forward(q('www.test'), null, hooks)]);
    expect(fake.queries).toHaveLength(2);
    expect(counters.upstreamShared).toBe(0);
  });

  test('answers SERVFAIL counted as unverified when the forwarder reports an unverified exchange', async () => {
    const counters = newProxyCounters();
    const pipeline = new Pipeline({
      policy: new SuffixPolicy(['corp.test']),
      registry: new RecordingRegistry(),
      forwarder: { forward: async () => Promise.reject(new UpstreamError('unverified', 'answer failed TSIG verification')) },
      counters,
      log: silentLogger,
      canary: 'nxdomain',
      policyServer: { upstream: 'default', hooks: () => new TestHooks(() => false), decisionOf: () => null },
    });
    const out = await pipeline.handle(clientQuery('www.corp.test', 1, false, 0x2222), { address: '127.0.0.1', port: 5353, transport: 'udp' });
    expect(out![3]! & 0x0f).toBe(2);
    expect(counters.servfail.unverified).toBe(1);
  });
});
