import { afterEach, describe, expect, test } from 'bun:test';
import dnsPacket from 'dns-packet';
import { parseQuery, type ParsedQuery } from '../../src/dns/query.ts';
import { newProxyCounters } from '../../src/proxy/proxy-counters.ts';
import { UpstreamError } from '../../src/proxy/upstream.ts';
import { UdpUpstream } from '../../src/proxy/upstream-udp.ts';
import { realClock } from '../../src/util/clock.ts';
import { createLogger, silentLogger } from '../../src/util/log.ts';
import { clientQuery } from '../fixtures/dns/capture.ts';
import { FakeUpstream, type Script } from './fake-upstream.ts';

function q(name: string, type = 1): ParsedQuery {
  const r = parseQuery(clientQuery(name, type));
  if (r.kind !== 'ok') throw new Error('bad query');
  return r.query;
}

const cleanup: Array<() => void> = [];
afterEach(() => {
  while (cleanup.length) cleanup.pop()!();
});

async function setup(script: Script, opts: { timeoutMs?: number; poolSize?: number; minUses?: number } = {}) {
  const fake = await FakeUpstream.start(script);
  const counters = newProxyCounters();
  const up = await UdpUpstream.open({
    name: 'default',
    address: '127.0.0.1',
    port: fake.port,
    timeoutMs: opts.timeoutMs ?? 1000,
    clock: realClock,
    log: silentLogger,
    counters,
    poolSize: opts.poolSize,
    minUsesPerSocket: opts.minUses,
  });
  cleanup.push(() => up.close(), () => fake.stop());
  return { fake, up, counters };
}

describe('proxy/upstream-udp', () => {
  test('accepts the real answer after forgeries when they have a wrong ID, question, case or source port', async () => {
    const { up, counters } = await setup((query, t) => {
      t.sendFromSelf(t.answerFor(query, { id: (query.id + 1) & 0xffff, answers: [{ name: query.name, type: 'A', ttl: 1, class: 'IN', data: '6.6.6.1' }] }));
      t.sendFromSelf(t.answerFor(query, { name: 'evil.test', answers: [] }));
      t.sendFromSelf(t.answerFor(query, { name: query.name.toUpperCase(), answers: [] }));
      t.sendFromOther(t.answerFor(query, { answers: [{ name: query.name, type: 'A', ttl: 1, class: 'IN', data: '6.6.6.4' }] }));
      return t.answerFor(query);
    });
    const ans = await up.exchange(q('www.test'));
    const d = dnsPacket.decode(Buffer.from(ans));
    expect((d.answers?.[0] as { data: string }).data).toBe('192.0.2.1');
    expect(counters.upstreamIgnored.id).toBe(1);
    expect(counters.upstreamIgnored.question).toBe(2);
    // The other-port forgery is dropped by the connected socket in the kernel, or counted here.
    expect(counters.upstreamIgnored.source).toBeLessThanOrEqual(1);
  });

  test('times out with an UpstreamError when only forgeries arrive', async () => {
    const { up, counters } = await setup((query, t) => {
      t.sendFromSelf(t.answerFor(query, { id: (query.id + 1) & 0xffff }));
      t.sendFromOther(t.answerFor(query));
      return null;
    }, { timeoutMs: 150 });
    const err = await up.exchange(q('www.test')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UpstreamError);
    expect((err as UpstreamError).reason).toBe('timeout');
    expect(counters.upstreamTimeouts).toBe(1);
    expect(up.pending).toBe(0);
  });

  test('uses a fresh ID per query and several source ports when the pool rotates', async () => {
    const { fake, up } = await setup((query, t) => t.answerFor(query), { poolSize: 4, minUses: 2 });
    for (let i = 0; i < 40; i++) await up.exchange(q(`n${i}.test`));
    const ids = new Set(fake.queries.map((x) => x.id));
    const ports = new Set(fake.queries.map((x) => x.port));
    expect(ids.size).toBeGreaterThan(35); // 40 draws from 65536: a repeat is rare, many would be a bug
    expect(ports.size).toBeGreaterThan(4); // more ports than pool sockets: sockets were replaced
  });

  test('sends the question with its case and our OPT when forwarding', async () => {
    const { fake, up } = await setup((query, t) => t.answerFor(query));
    await up.exchange(q('MiXeD.test'));
    const d = dnsPacket.decode(Buffer.from(fake.queries[0]!.bytes));
    expect(d.questions?.[0]?.name).toBe('MiXeD.test');
    expect(d.additionals?.map((a) => a.type)).toEqual(['OPT']);
    expect((d.additionals?.[0] as unknown as { udpPayloadSize: number }).udpPayloadSize).toBe(1232);
  });

  test('rejects with refused and logs the errno when nothing listens on the upstream port', async () => {
    // A port that was just free: bind, note it, close (nothing listens there now).
    const probe = await Bun.udpSocket({ hostname: '127.0.0.1', port: 0 });
    const port = probe.port;
    probe.close();
    const lines: string[] = [];
    const up = await UdpUpstream.open({
      name: 'default',
      address: '127.0.0.1',
      port,
      timeoutMs: 30_000,
      clock: realClock,
      log: createLogger({ level: 'debug', write: (l) => lines.push(l) }),
      counters: newProxyCounters(),
      poolSize: 1,
    });
    cleanup.push(() => up.close());
    // The ICMP port unreachable fails the query long before its 30 s timeout.
    const err = (await up.exchange(q('www.test')).catch((e: unknown) => e)) as UpstreamError;
    expect(err).toBeInstanceOf(UpstreamError);
    expect(err.reason).toBe('refused');
    expect(err.errno).toBe('ECONNREFUSED');
    expect(up.pending).toBe(0);
    const logged = lines.find((l) => l.includes('upstream: socket error'));
    expect(logged).toContain('errno=ECONNREFUSED');
    expect(logged).not.toContain('undefined');
  });

  test('rejects at once when closed while a query is in flight', async () => {
    const { up } = await setup(() => null, { timeoutMs: 5000 });
    const p = up.exchange(q('www.test')).catch((e: unknown) => e);
    up.close();
    expect(((await p) as UpstreamError).reason).toBe('closed');
  });
});
