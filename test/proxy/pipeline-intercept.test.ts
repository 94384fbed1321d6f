/**
 * The pipeline's intercept step (#6) with the real Interceptor, pool and memory store: it runs
 * only after register succeeded for a protected answer, answers with pool addresses, turns any
 * failure into SERVFAIL, leaves unprotected answers and shared forwarder results untouched.
 */
import { describe, expect, test } from 'bun:test';
import dnsPacket from 'dns-packet';
import { scanAnswer, type AnswerScan } from '../../src/dns/answer-scan.ts';
import type { ParsedQuery } from '../../src/dns/query.ts';
import { Interceptor } from '../../src/intercept/interceptor.ts';
import { InterceptPool } from '../../src/intercept/pool.ts';
import { MemoryInterceptStore } from '../../src/intercept/store.ts';
import type { Forwarded } from '../../src/proxy/forwarder.ts';
import { Pipeline } from '../../src/proxy/pipeline.ts';
import { newProxyCounters } from '../../src/proxy/proxy-counters.ts';
import { FakeClock } from '../../src/util/clock.ts';
import { silentLogger } from '../../src/util/log.ts';
import { clientQuery } from '../fixtures/dns/capture.ts';
import { EventLog, mapFull, RecordingRegistry, SuffixPolicy } from './doubles.ts';

const CLIENT = { address: '127.0.0.1', port: 5353, transport: 'udp' as const };
const ZONE: Record<string, string[]> = {
  'multi.corp.test': ['198.51.100.1', '198.51.100.2', '198.51.100.3'],
  'one.corp.test': ['198.51.100.4'],
  'five.corp.test': ['198.51.100.5'],
  'www.public.test': ['203.0.113.5', '203.0.113.6'],
};

function answerFor(query: ParsedQuery): Uint8Array {
  return new Uint8Array(
    dnsPacket.encode({
      type: 'response',
      id: 0x4444,
      flags: 0x8180,
      questions: [{ name: query.qname, type: 'A', class: 'IN' }],
      answers: (ZONE[query.qname] ?? []).map((data) => ({ name: query.qname, type: 'A' as const, ttl: 300, class: 'IN' as const, data })),
    }),
  );
}

function setup() {
  const events = new EventLog();
  const registry = new RecordingRegistry(events);
  const pool = InterceptPool.open({ pools: ['100.64.0.0/30'], store: new MemoryInterceptStore(), clock: new FakeClock(), minHoldMs: 60_000, idleMs: 300_000 });
  const real = new Interceptor({ pool });
  const applied: number[] = [];
  const interceptor = {
    apply: (group: number, bytes: Uint8Array, scan: AnswerScan) => {
      applied.push(events.note('intercepted', group));
      return real.apply(group, bytes, scan);
    },
  };
  const results: Forwarded[] = [];
  const forwarder = {
    async forward(query: ParsedQuery): Promise<Forwarded> {
      const bytes = answerFor(query);
      const f = { bytes, scan: scanAnswer(bytes, query.question.length, query.qname), via: 'udp' as const };
      results.push(f);
      return f;
    },
  };
  const counters = newProxyCounters();
  const pipeline = new Pipeline({ policy: new SuffixPolicy(['corp.test']), registry, forwarder, counters, log: silentLogger, canary: 'nxdomain', interceptor });
  const ask = async (name: string) => {
    const d = dnsPacket.decode(Buffer.from((await pipeline.handle(clientQuery(name, 1, false, 0x1111), CLIENT))!)) as dnsPacket.DecodedPacket & { rcode: string };
    return { rcode: d.rcode, addrs: (d.answers ?? []).flatMap((r) => (r.type === 'A' ? [String(r.data)] : [])) };
  };
  return { registry, events, applied, results, counters, ask };
}

describe('proxy/pipeline intercept step', () => {
  test('answers distinct pool addresses after registering the real ones when the name is protected', async () => {
    const { registry, events, applied, ask } = setup();
    const r = await ask('multi.corp.test');
    expect(r.rcode).toBe('NOERROR');
    expect(r.addrs.sort()).toEqual(['100.64.0.0', '100.64.0.1', '100.64.0.2']);
    expect(registry.registrations[0]!.addrs).toEqual(['198.51.100.1', '198.51.100.2', '198.51.100.3']);
    expect(registry.registrations[0]!.seq).toBeLessThan(applied[0]!);
    expect(events.events.find((e) => e.what === 'intercepted')!.detail).toBe(0);
  });

  test('leaves an unprotected answer and the forwarder result unchanged when no rule matches', async () => {
    const { applied, results, ask } = setup();
    const r = await ask('www.public.test');
    expect(r).toEqual({ rcode: 'NOERROR', addrs: ['203.0.113.5', '203.0.113.6'] });
    expect(applied).toEqual([]);
    const p = await ask('one.corp.test');
    expect(p.addrs).toEqual(['100.64.0.0']);
    // the (possibly shared) forwarder result still holds the real address
    expect(results[1]!.scan.addrs).toEqual(['198.51.100.4']);
    expect(Buffer.from(results[1]!.bytes).includes(Buffer.from([198, 51, 100, 4]))).toBe(true);
  });

  test('answers SERVFAIL counted as intercept when the pool is exhausted', async () => {
    const { counters, ask } = setup();
    await ask('multi.corp.test');
    expect((await ask('one.corp.test')).rcode).toBe('NOERROR');
    expect(await ask('five.corp.test')).toEqual({ rcode: 'SERVFAIL', addrs: [] });
    expect(counters.servfail.intercept).toBe(1);
  });

  test('answers SERVFAIL without intercepting when register fails', async () => {
    const { registry, applied, counters, ask } = setup();
    registry.failWith = mapFull();
    expect((await ask('multi.corp.test')).rcode).toBe('SERVFAIL');
    expect(applied).toEqual([]);
    expect(counters.servfail.register).toBe(1);
  });
});
