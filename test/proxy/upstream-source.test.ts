/**
 * `upstream_source`: upstream sockets bind to a chosen local address, so the upstream sees it
 * as the query's source — over the UDP pool (every socket, including replacements) and over
 * TCP connections. Loopback only: any 127.x address is local on Linux.
 */
import { afterEach, describe, expect, test } from 'bun:test';
import { parseQuery, type ParsedQuery } from '../../src/dns/query.ts';
import { startProxy } from '../../src/proxy/proxy.ts';
import { proxyOptions } from './proxy-options.ts';
import { newProxyCounters } from '../../src/proxy/proxy-counters.ts';
import { UpstreamError } from '../../src/proxy/upstream.ts';
import { TcpUpstream } from '../../src/proxy/upstream-tcp.ts';
import { UdpUpstream } from '../../src/proxy/upstream-udp.ts';
import { realClock } from '../../src/util/clock.ts';
import { silentLogger } from '../../src/util/log.ts';
import { clientQuery } from '../fixtures/dns/capture.ts';
import { ask } from '../policy-server/helpers.ts';
import { RecordingRegistry, SuffixPolicy } from './doubles.ts';
import { FakeUpstream } from './fake-upstream.ts';

function q(name: string, type = 1): ParsedQuery {
  const r = parseQuery(clientQuery(name, type));
  if (r.kind !== 'ok') throw new Error('bad query');
  return r.query;
}

const cleanup: Array<() => unknown> = [];
afterEach(async () => {
  while (cleanup.length) await cleanup.pop()!();
});

async function fake(): Promise<FakeUpstream> {
  const f = await FakeUpstream.start((query, t) => t.answerFor(query));
  cleanup.push(() => f.stop());
  return f;
}

async function udp(port: number, source?: string, extra: { poolSize?: number; minUsesPerSocket?: number } = {}): Promise<UdpUpstream> {
  const up = await UdpUpstream.open({
    name: 'default',
    address: '127.0.0.1',
    port,
    timeoutMs: 1000,
    clock: realClock,
    log: silentLogger,
    counters: newProxyCounters(),
    ...(source ? { source } : {}),
    ...extra,
  });
  cleanup.push(() => up.close());
  return up;
}

function tcp(port: number, source?: string): TcpUpstream {
  const up = new TcpUpstream({ name: 'default', address: '127.0.0.1', port, timeoutMs: 1000, counters: newProxyCounters(), ...(source ? { source } : {}) });
  cleanup.push(() => up.close());
  return up;
}

describe('proxy/upstream source address', () => {
  test('sends every UDP query from the chosen address when the pool rotates its sockets', async () => {
    const f = await fake();
    const up = await udp(f.port, '127.0.0.7', { poolSize: 2, minUsesPerSocket: 2 });
    for (let i = 0; i < 12; i++) await up.exchange(q(`n${i}.test`));
    expect(f.queries).toHaveLength(12);
    expect(new Set(f.queries.map((x) => `${x.transport} ${x.address}`))).toEqual(new Set(['udp 127.0.0.7']));
    expect(new Set(f.queries.map((x) => x.port)).size).toBeGreaterThan(2); // replacements were opened, bound the same way
  });

  test('sends UDP queries from the kernel-chosen 127.0.0.1 when no source is set', async () => {
    const f = await fake();
    const up = await udp(f.port);
    await up.exchange(q('www.test'));
    expect(f.queries.map((x) => x.address)).toEqual(['127.0.0.1']);
  });

  test('connects over TCP from the chosen address', async () => {
    const f = await fake();
    const up = tcp(f.port, '127.0.0.8');
    await up.exchange(q('a.test'));
    await up.exchange(q('b.test'));
    expect(f.queries.map((x) => `${x.transport} ${x.address}`)).toEqual(['tcp 127.0.0.8', 'tcp 127.0.0.8']);
  });

  test('connects over TCP from the kernel-chosen 127.0.0.1 when no source is set', async () => {
    const f = await fake();
    await tcp(f.port).exchange(q('a.test'));
    expect(f.queries.map((x) => `${x.transport} ${x.address}`)).toEqual(['tcp 127.0.0.1']);
  });

  test('fails the TCP exchange with an UpstreamError when the source address is not local', async () => {
    const f = await fake();
    const err = await tcp(f.port, '192.0.2.99').exchange(q('a.test')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UpstreamError);
    expect(f.queries).toEqual([]);
  });

  test('refuses to open the UDP pool when the source address is not local', async () => {
    const f = await fake();
    await expect(udp(f.port, '192.0.2.99')).rejects.toThrow('upstream "default": cannot bind upstream_source 192.0.2.99: ');
    await Bun.sleep(20);
    expect(f.queries).toEqual([]);
  });

  test('passes upstreamSource to both transports when startProxy builds the upstreams', async () => {
    // UDP answers for names under tc.test come back truncated: the proxy retries over TCP.
    const f = await FakeUpstream.start((query, t) => t.answerFor(query, { tc: query.transport === 'udp' && query.name.endsWith('tc.test') }));
    cleanup.push(() => f.stop());
    const counters = newProxyCounters();
    // Port 0: TCP takes the UDP port's number, which another socket may hold; try again then.
    const start = () =>
      startProxy(
        proxyOptions({ address: '127.0.0.1', port: f.port }, {
          upstreamSource: '127.0.0.9',
          policy: new SuffixPolicy([]),
          registry: new RecordingRegistry(),
          counters,
        }),
      );
    const proxy = await start().catch(start).catch(start);
    cleanup.push(() => proxy.close());
    const port = proxy.listeners[0]!.port;
    const a1 = await ask('udp', port, clientQuery('www.plain.test', 1));
    const a2 = await ask('udp', port, clientQuery('www.tc.test', 1));
    expect([a1[3]! & 0x0f, a2[3]! & 0x0f]).toEqual([0, 0]);
    expect(counters.upstreamTcpRetries).toBe(1);
    expect(f.queries.map((x) => `${x.name} ${x.transport} ${x.address}`)).toEqual([
      'www.plain.test udp 127.0.0.9',
      'www.tc.test udp 127.0.0.9',
      'www.tc.test tcp 127.0.0.9',
    ]);
  });
});
