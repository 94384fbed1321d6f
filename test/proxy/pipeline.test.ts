import { describe, expect, test } from 'bun:test';
import dnsPacket from 'dns-packet';
import { scanAnswer } from '../../src/dns/answer-scan.ts';
import type { ParsedQuery } from '../../src/dns/query.ts';
import type { Forwarded } from '../../src/proxy/forwarder.ts';
import type { ClientInfo } from '../../src/proxy/handler.ts';
import { Pipeline } from '../../src/proxy/pipeline.ts';
import { newProxyCounters } from '../../src/proxy/proxy-counters.ts';
import { UpstreamError } from '../../src/proxy/upstream.ts';
import { silentLogger } from '../../src/util/log.ts';
import { clientQuery } from '../fixtures/dns/capture.ts';
import { fixture } from '../dns/fixtures.ts';
import { EventLog, mapFull, RecordingRegistry, SuffixPolicy } from './doubles.ts';

const UDP: ClientInfo = { address: '127.0.0.1', port: 5353, transport: 'udp' };
const TCP: ClientInfo = { ...UDP, transport: 'tcp' };

/** A forwarder that answers from the knot captures, keyed by query name. */
function capturedForwarder(events?: EventLog, fail?: UpstreamError) {
  const byName: Record<string, string> = {
    'www.test': 'www-a', 'alias.test': 'alias-a', 'chain1.test': 'chain1-a', 'front.test': 'front-a',
    'svc.test': 'svc-https', 'many.test': 'many-a', 'nx.test': 'nx-a', 'mixed.test': 'mixed-a',
  };
  const calls: Array<{ name: string; upstream: string | null }> = [];
  return {
    calls,
    async forward(query: ParsedQuery, upstream: string | null): Promise<Forwarded> {
      calls.push({ name: query.qname, upstream });
      events?.note('forwarded', query.qname);
      if (fail) throw fail;
      const { answer } = fixture(byName[query.qname]!);
      return { bytes: answer, scan: scanAnswer(answer, query.question.length, query.qname), via: 'tcp' };
    },
  };
}

function setup(opts: { protect?: string[]; fail?: UpstreamError; upstreams?: Record<string, string>; canary?: 'nxdomain' | 'pass' } = {}) {
  const events = new EventLog();
  const registry = new RecordingRegistry(events);
  const forwarder = capturedForwarder(events, opts.fail);
  const counters = newProxyCounters();
  const pipeline = new Pipeline({
    policy: new SuffixPolicy(opts.protect ?? ['corp.test', 'svc.test'], opts.upstreams),
    registry,
    forwarder,
    counters,
    log: silentLogger,
    canary: opts.canary ?? 'nxdomain',
  });
  return { pipeline, registry, forwarder, counters, events };
}

const decode = (b: Uint8Array | null) => dnsPacket.decode(Buffer.from(b!)) as dnsPacket.DecodedPacket & { rcode: string };

describe('proxy/pipeline', () => {
  test('relays an unprotected answer and registers nothing when no name matches', async () => {
    const { pipeline, registry, counters } = setup();
    const out = decode(await pipeline.handle(clientQuery('alias.test', 1, false, 0x1111), UDP));
    expect(out.id).toBe(0x1111);
    expect(out.answers?.length).toBe(2);
    expect(registry.registrations).toEqual([]);
    expect(counters.queries.answer).toBe(1);
  });

  test('registers every chain address before answering when a CNAME target matches', async () => {
    const { pipeline, registry, events } = setup();
    registry.delayMs = 20;
    const out = await pipeline.handle(clientQuery('front.test', 1), UDP);
    events.note('answered');
    expect(registry.registrations).toHaveLength(1);
    expect(registry.registrations[0]).toMatchObject({
      group: 0,
      names: ['front.test', 'app.corp.test', 'www.corp.test'],
      addrs: ['203.0.113.10'],
      ttlS: 300,
      queryName: 'front.test',
    });
    expect(events.events.map((e) => e.what)).toEqual(['forwarded', 'registered', 'answered']);
    expect(decode(out).rcode).toBe('NOERROR');
  });

  test('registers HTTPS hints when the query name matches', async () => {
    const { pipeline, registry } = setup();
    await pipeline.handle(clientQuery('svc.test', 65), TCP);
    expect(registry.registrations[0]?.addrs).toEqual(['192.0.2.20', '192.0.2.21', '2001:db8::20']);
  });

  test.each([['udp', UDP], ['tcp', TCP]] as const)('answers SERVFAIL and never the addresses over %s when registration fails', async (_t, client) => {
    const { pipeline, registry, counters } = setup();
    registry.failWith = mapFull();
    const out = decode(await pipeline.handle(clientQuery('front.test', 1, false, 0x2222), client));
    expect(out.rcode).toBe('SERVFAIL');
    expect(out.id).toBe(0x2222);
    expect(out.answers).toEqual([]);
    expect(counters.servfail.register).toBe(1);
  });

  test.each([
    ['timeout', 'timeout'],
    ['closed', 'upstream'],
    ['malformed', 'malformed_answer'],
  ] as const)('answers SERVFAIL when the upstream fails with %s', async (reason, counted) => {
    const { pipeline, counters } = setup({ fail: new UpstreamError(reason, 'x') });
    expect(decode(await pipeline.handle(clientQuery('www.test', 1), UDP)).rcode).toBe('SERVFAIL');
    expect(counters.servfail[counted]).toBe(1);
  });

  test('answers the canary NXDOMAIN without forwarding when configured so (default)', async () => {
    const { pipeline, forwarder } = setup();
    const out = decode(await pipeline.handle(clientQuery('Use-Application-DNS.net', 1), UDP));
    expect(out.rcode).toBe('NXDOMAIN');
    expect(forwarder.calls).toEqual([]);
  });

  test('forwards the canary when configured to pass', async () => {
    const { pipeline, forwarder } = setup({ canary: 'pass' });
    await Promise.resolve(pipeline.handle(clientQuery('use-application-dns.net', 1), UDP)).catch(() => null);
    expect(forwarder.calls.map((c) => c.name)).toEqual(['use-application-dns.net']);
  });

  test('sends the query to the upstream the pre-decision names when a rule has one', async () => {
    const { pipeline, forwarder } = setup({ upstreams: { 'corp.test': 'corp' } });
    await pipeline.handle(clientQuery('www.test', 1), UDP);
    await pipeline.handle(clientQuery('front.test', 1), UDP);
    expect(forwarder.calls.map((c) => c.upstream)).toEqual([null, null]);
    const { pipeline: p2, forwarder: f2 } = setup({ upstreams: { 'front.test': 'corp' } });
    await p2.handle(clientQuery('front.test', 1), UDP);
    expect(f2.calls[0]?.upstream).toBe('corp');
  });

  test('truncates over UDP but not over TCP when the answer is big', async () => {
    const { pipeline } = setup();
    const udp = decode(await pipeline.handle(clientQuery('many.test', 1), UDP));
    expect(udp.flag_tc).toBe(true);
    const tcp = decode(await pipeline.handle(clientQuery('many.test', 1), TCP));
    expect(tcp.answers?.length).toBe(120);
  });

  test.each([
    ['a short packet', new Uint8Array(5), null],
    ['a response', Uint8Array.from([0, 1, 0x81, 0x80, 0, 1, 0, 0, 0, 0, 0, 0]), null],
    ['no question', Uint8Array.from([0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]), 'FORMERR'],
  ])('answers %s with %p', async (_w, bytes, rcode) => {
    const { pipeline, forwarder } = setup();
    const out = await pipeline.handle(bytes, UDP);
    if (rcode === null) expect(out).toBeNull();
    else expect(decode(out).rcode).toBe(rcode);
    expect(forwarder.calls).toEqual([]);
  });

  test('answers nothing and forwards nothing further when the policy throws', async () => {
    const { pipeline, registry } = setup();
    (pipeline as unknown as { deps: { policy: { decide: () => never } } }).deps.policy.decide = () => {
      throw new Error('boom');
    };
    expect(await pipeline.handle(clientQuery('front.test', 1), UDP)).toBeNull();
    expect(registry.registrations).toEqual([]);
  });
});
