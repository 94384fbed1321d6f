/**
 * The pipeline's intercept step end to end in memory: a real upstream answer (dns-packet) →
 * scanAnswer → Interceptor.apply (pool on the memory store) → scanAnswer again → relayAnswer,
 * as src/proxy/pipeline.ts will call it. Plus the factory's memory backend.
 */
import { describe, expect, test } from 'bun:test';
import * as dnsPacket from 'dns-packet';
import { scanAnswer } from '../../src/dns/answer-scan.ts';
import { parseQuery, type ParsedQuery } from '../../src/dns/query.ts';
import { relayAnswer } from '../../src/dns/response.ts';
import { createIntercept } from '../../src/intercept/factory.ts';
import { Interceptor } from '../../src/intercept/interceptor.ts';
import { InterceptPool } from '../../src/intercept/pool.ts';
import { MemoryInterceptStore } from '../../src/intercept/store.ts';
import { Metrics } from '../../src/ops/metrics.ts';
import { FakeClock } from '../../src/util/clock.ts';
import { DnssealError } from '../../src/util/errors.ts';
import { silentLogger } from '../../src/util/log.ts';

function query(name: string, type: 'A' | 'AAAA' = 'A'): ParsedQuery {
  const q = dnsPacket.encode({ type: 'query', id: 77, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type, name }] });
  const p = parseQuery(q);
  if (p.kind !== 'ok') throw new Error('bad query');
  return p.query;
}

function upstream(name: string, answers: dnsPacket.Answer[], type: 'A' | 'AAAA' = 'A'): Uint8Array {
  return dnsPacket.encode({ type: 'response', id: 77, flags: dnsPacket.RECURSION_DESIRED | dnsPacket.RECURSION_AVAILABLE | dnsPacket.AUTHENTIC_DATA, questions: [{ type, name }], answers });
}

function make(pools: string[]) {
  const store = new MemoryInterceptStore();
  const clock = new FakeClock();
  const pool = InterceptPool.open({ pools, store, clock, minHoldMs: 60_000, idleMs: 300_000 });
  let exhausted = 0;
  const icpt = new Interceptor({ pool, onExhausted: () => exhausted++ });
  const run = (name: string, answers: dnsPacket.Answer[], type: 'A' | 'AAAA' = 'A') => {
    const q = query(name, type);
    const up = upstream(name, answers, type);
    const scan = scanAnswer(up, q.question.length, q.qname);
    const out = icpt.apply(0, up, scan);
    const rescan = scanAnswer(out.bytes, q.question.length, q.qname);
    const client = relayAnswer(out.bytes, rescan, q, 512);
    return { out, rescan, decoded: dnsPacket.decode(Buffer.from(client)) };
  };
  return { run, store, clock, pool, exhausted: () => exhausted };
}

const A = (name: string, data: string, ttl = 300): dnsPacket.Answer => ({ type: 'A', name, data, ttl });

describe('intercept/interceptor', () => {
  test('answers with one intercept address per real address when the answer has several A records behind a CNAME', () => {
    const { run, store } = make(['100.64.0.0/29']);
    const r = run('www.corp.example', [
      { type: 'CNAME', name: 'www.corp.example', data: 'edge.corp.example', ttl: 300 },
      A('edge.corp.example', '192.0.2.1'),
      A('edge.corp.example', '192.0.2.2'),
      A('edge.corp.example', '192.0.2.3'),
    ]);
    const got = r.decoded.answers!.filter((a) => a.type === 'A').map((a) => (a as { data: string }).data);
    expect(got).toEqual(['100.64.0.0', '100.64.0.1', '100.64.0.2']);
    expect(r.rescan.addrs).toEqual(got);
    expect(r.decoded.flag_ad).toBe(false);
    expect(r.decoded.answers!.filter((a) => a.type === 'A').every((a) => (a as { ttl: number }).ttl === 60)).toBe(true);
    expect(got.map((i) => store.realOf(0, i))).toEqual(['192.0.2.1', '192.0.2.2', '192.0.2.3']);
  });

  test('refuses the fifth name with pool_exhausted when the pool has four addresses, and reuses after expiry and idle', () => {
    const { run, clock, exhausted } = make(['100.64.0.0/30']);
    for (let i = 1; i <= 4; i++) run(`n${i}.corp.example`, [A(`n${i}.corp.example`, `192.0.2.${i}`, 30)]);
    let err: unknown;
    try {
      run('n5.corp.example', [A('n5.corp.example', '192.0.2.5', 30)]);
    } catch (e) {
      err = e;
    }
    expect(err instanceof DnssealError && err.code).toBe('pool_exhausted');
    expect(exhausted()).toBe(1);
    clock.advance(60_000 + 300_000);
    const r = run('n5.corp.example', [A('n5.corp.example', '192.0.2.5', 30)]);
    expect((r.decoded.answers![0] as { data: string }).data).toMatch(/^100\.64\.0\.[0-3]$/);
  });

  test('removes AAAA records from the answer when no IPv6 pool is configured', () => {
    const { run } = make(['100.64.0.0/30']);
    const r = run('v6.corp.example', [{ type: 'AAAA', name: 'v6.corp.example', data: '2001:db8::1', ttl: 300 }], 'AAAA');
    expect(r.decoded.answers).toEqual([]);
    expect((r.decoded as { rcode?: string }).rcode).toBe('NOERROR');
  });

  test('never lets a real address through when the upstream adds an A record outside the chain', () => {
    const { run } = make(['100.64.0.0/30']);
    const r = run('www.corp.example', [A('www.corp.example', '192.0.2.1'), A('elsewhere.example', '198.51.100.7')]);
    expect(JSON.stringify(r.decoded)).not.toContain('198.51.100.7');
    expect(JSON.stringify(r.decoded)).not.toContain('192.0.2.1');
  });

  test('uses the memory store and logs it when the datapath is not ebpf', () => {
    const rt = createIntercept({
      cfg: { mode: 'intercept', lan: [], interceptPools: ['100.64.0.0/30'], minHoldS: 60, idleS: 300 },
      datapathKind: 'fake',
      log: silentLogger,
      clock: new FakeClock(),
      metrics: new Metrics(),
    })!;
    expect(rt.kind).toBe('memory');
    rt.pool.allocate(0, ['192.0.2.1'], 60, ['a.corp.example']);
    expect(rt.list().map((r) => [r.intercept, r.real, r.names, r.group])).toEqual([['100.64.0.0', '192.0.2.1', ['a.corp.example'], 0]]);
    rt.close();
  });

  test.each([
    ['host', ['100.64.0.0/30'], undefined],
    ['intercept', [], 'no_pool'],
  ])('creates nothing or refuses when the mode is %s and the pools are %j', (mode, pools, want) => {
    const mk = () =>
      createIntercept({
        cfg: { mode: mode as 'host', lan: [], interceptPools: pools, minHoldS: 60, idleS: 300 },
        datapathKind: 'fake',
        log: silentLogger,
        clock: new FakeClock(),
        metrics: new Metrics(),
      });
    if (want) expect(mk).toThrow(DnssealError);
    else expect(mk()).toBeUndefined();
  });
});
