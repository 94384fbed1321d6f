import { afterEach, describe, expect, test } from 'bun:test';
import dnsPacket from 'dns-packet';
import { newProxyCounters } from '../../src/proxy/proxy-counters.ts';
import { UpstreamSet, type SetServer, type UpstreamSetOptions } from '../../src/proxy/upstream-set.ts';
import { UpstreamError } from '../../src/proxy/upstream.ts';
import { UdpUpstream } from '../../src/proxy/upstream-udp.ts';
import { TcpUpstream } from '../../src/proxy/upstream-tcp.ts';
import { realClock } from '../../src/util/clock.ts';
import { createLogger, silentLogger } from '../../src/util/log.ts';
import { FakeUpstream, type Script } from './fake-upstream.ts';
import { MemoryUpstream } from './memory-upstream.ts';
import { RecordingHooks, q, waitFor } from './upstream-contract.ts';

const answer: Script = (query, t) => t.answerFor(query);
const timeout: Script = () => {
  throw new UpstreamError('timeout', 'no answer within 1000 ms');
};
const refused: Script = () => {
  throw new UpstreamError('refused', 'port unreachable (ECONNREFUSED)', { errno: 'ECONNREFUSED' });
};

const cleanup: Array<() => unknown> = [];
afterEach(async () => {
  while (cleanup.length) await cleanup.pop()!();
});

function memorySet(scripts: Script[], over: Partial<UpstreamSetOptions> = {}) {
  const ups = scripts.map((s, i) => new MemoryUpstream(`192.0.2.${i + 1}:53`, s, 300));
  const lines: string[] = [];
  const set = new UpstreamSet({
    name: 'default',
    servers: ups.map((u) => ({ label: u.address, primary: u })),
    clock: realClock,
    log: createLogger({ level: 'info', write: (l) => lines.push(l) }),
    probeMinMs: 20,
    probeMaxMs: 80,
    ...over,
  });
  cleanup.push(() => set.close());
  return { set, ups, lines };
}

/** Queries other than the probes (`. NS`). */
const real = (u: MemoryUpstream | FakeUpstream) => u.queries.filter((x) => x.name !== '.' && x.name !== '');

describe('proxy/upstream-set', () => {
  test('sends every query to the first server when all are up', async () => {
    const { set, ups } = memorySet([answer, answer]);
    for (let i = 0; i < 5; i++) expect((await set.exchange(q(`a${i}.test`))).server).toBe(0);
    expect(real(ups[1]!)).toHaveLength(0);
  });

  test('moves the query to the next server and skips the failed one afterwards when the first fails', async () => {
    const { set, ups } = memorySet([timeout, answer]);
    expect((await set.exchange(q('first.test'))).server).toBe(1);
    for (let i = 0; i < 5; i++) expect((await set.exchange(q(`next${i}.test`))).server).toBe(1);
    expect(real(ups[0]!).map((x) => x.name)).toEqual(['first.test']);
    expect(set.failoverCount).toBe(1);
    expect(set.healthOf().map((h) => h.state)).toEqual(['down', 'up']);
  });

  test('logs one warning with the server and errno per state change when many queries fail', async () => {
    const { set, lines } = memorySet([refused, answer]);
    await Promise.all(Array.from({ length: 10 }, (_, i) => set.exchange(q(`burst${i}.test`))));
    const warns = lines.filter((l) => l.includes('level=warn'));
    expect(warns).toHaveLength(1);
    expect(warns[0]).toContain('server=192.0.2.1:53');
    expect(warns[0]).toContain('errno=ECONNREFUSED');
    expect(warns[0]).toContain('reason=refused');
    expect(warns[0]).toContain('next=192.0.2.2:53');
  });

  test('uses the server again once a probe gets an answer from it', async () => {
    const { set, ups, lines } = memorySet([timeout, answer]);
    await set.exchange(q('fails.test'));
    ups[0]!.script = answer; // it comes back
    await waitFor(() => set.healthOf()[0]!.state === 'up', 'the probe to bring server 0 back');
    expect((await set.exchange(q('back.test'))).server).toBe(0);
    expect(ups[0]!.queries.some((x) => x.name === '.' && x.type === 'NS')).toBe(true);
    expect(lines.filter((l) => l.includes('answering again'))).toHaveLength(1);
  });

  test('keeps probing with growing delays while the server stays down', async () => {
    const { set, ups } = memorySet([timeout, answer], { probeMinMs: 10, probeMaxMs: 40 });
    await set.exchange(q('fails.test'));
    await waitFor(() => ups[0]!.queries.filter((x) => x.name === '.').length >= 4, 'four probes');
    expect(set.healthOf()[0]!.state).toBe('down');
    expect(real(ups[0]!)).toHaveLength(1);
  });

  test('tries the server that answered most recently when every server is down', async () => {
    const { set, ups } = memorySet([answer, answer], { probeMinMs: 60_000 });
    await set.exchange(q('warm.test')); // server 0 answers
    ups[0]!.script = timeout;
    ups[1]!.script = timeout;
    await set.exchange(q('both-fail.test')).catch(() => {}); // 0 fails, then 1 fails
    expect(set.healthOf().map((h) => h.state)).toEqual(['down', 'down']);
    ups[0]!.script = answer;
    const a = await set.exchange(q('any.test'));
    expect(a.server).toBe(0);
    expect(set.healthOf()[0]!.state).toBe('up');
  });

  test('answers with the error at once and keeps the server up when the answer is malformed or unverified', async () => {
    const { set, ups } = memorySet([
      () => {
        throw new UpstreamError('unverified', 'answer failed TSIG verification');
      },
      answer,
    ]);
    const err = (await set.exchange(q('x.test')).catch((e: unknown) => e)) as UpstreamError;
    expect(err.reason).toBe('unverified');
    expect(real(ups[1]!)).toHaveLength(0);
    expect(set.healthOf()[0]!.state).toBe('up');
  });

  test('gives up after maxAttempts servers when each fails', async () => {
    const { set, ups } = memorySet([timeout, timeout, timeout, answer], { maxAttempts: 2 });
    const err = (await set.exchange(q('x.test')).catch((e: unknown) => e)) as UpstreamError;
    expect(err.reason).toBe('timeout');
    expect(ups.map((u) => real(u).length)).toEqual([1, 1, 0, 0]);
    // The next query starts at the first server still up (2), which fails over to 3.
    expect((await set.exchange(q('y.test'))).server).toBe(3);
    expect(ups.map((u) => real(u).length)).toEqual([1, 1, 1, 1]);
  });

  test('keeps the server down when an answer arrives for a query sent before it failed', async () => {
    let release: (() => void) | null = null;
    const { set, ups } = memorySet([answer, answer], { probeMinMs: 60_000 });
    ups[0]!.script = (query, t) =>
      query.name === 'slow.test' ? new Promise((r) => (release = () => r(t.answerFor(query)))) : timeout(query, t);
    const slow = set.exchange(q('slow.test'));
    await set.exchange(q('fails.test')); // server 0 goes down, the query moves to 1
    release!();
    expect((await slow).server).toBe(0);
    expect(set.healthOf()[0]!.state).toBe('down');
  });

  test('signs anew with the same hooks on the next server when failing over', async () => {
    const { set, ups } = memorySet([timeout, answer]);
    const hooks = new RecordingHooks();
    const a = await set.exchange(q('signed.test'), hooks);
    expect(a.server).toBe(1);
    expect(hooks.signed).toHaveLength(2);
    expect([...hooks.signed[1]!]).toEqual([...ups[1]!.queries[0]!.bytes]);
    expect(hooks.accepted).toHaveLength(1);
  });

  test('sends the truncation retry on the stream transport through the pair view', async () => {
    const udp = new MemoryUpstream('192.0.2.1:53', answer, 300, 'udp');
    const tcp = new MemoryUpstream('192.0.2.1:53', answer, 300, 'tcp');
    const set = new UpstreamSet({ name: 'default', servers: [{ label: '192.0.2.1:53', primary: udp, stream: tcp }], clock: realClock, log: silentLogger });
    cleanup.push(() => set.close());
    const pair = set.pair();
    await pair.udp.exchange(q('u.test'));
    await pair.tcp.exchange(q('t.test'));
    expect(udp.queries.map((x) => x.name)).toEqual(['u.test']);
    expect(tcp.queries.map((x) => x.name)).toEqual(['t.test']);
    pair.udp.close();
    pair.tcp.close();
    expect(((await pair.udp.exchange(q('late.test')).catch((e: unknown) => e)) as UpstreamError).reason).toBe('closed');
  });
});

describe('proxy/upstream-set over real UDP sockets', () => {
  async function plain(port: number, timeoutMs: number): Promise<SetServer> {
    const common = { name: 'default', address: '127.0.0.1', port, timeoutMs, counters: newProxyCounters() };
    const primary = await UdpUpstream.open({ ...common, clock: realClock, log: silentLogger, poolSize: 1 });
    return { label: `127.0.0.1:${port}`, primary, stream: new TcpUpstream(common) };
  }

  test('costs the first query no timeout when the dead server refuses (ICMP port unreachable)', async () => {
    const closed = await Bun.udpSocket({ hostname: '127.0.0.1', port: 0 });
    const deadPort = closed.port;
    closed.close();
    const live = await FakeUpstream.start(answer);
    cleanup.push(() => live.stop());
    // A 30 s timeout: the query can only complete this test by the refusal, not by a timeout.
    const set = new UpstreamSet({ name: 'default', servers: [await plain(deadPort, 30_000), await plain(live.port, 30_000)], clock: realClock, log: silentLogger, probeMinMs: 60_000 });
    cleanup.push(() => set.close());
    expect((await set.exchange(q('first.test'))).server).toBe(1);
    const h = set.healthOf()[0]!;
    expect(h).toMatchObject({ state: 'down', errno: 'ECONNREFUSED', failures: { refused: 1 } });
    for (let i = 0; i < 5; i++) expect((await set.exchange(q(`n${i}.test`))).server).toBe(1);
    expect(set.healthOf()[0]!.failures).toEqual({ refused: 1 });
  });

  test('costs one timeout for the first query only when a server is blackholed, and uses it again when it answers', async () => {
    let alive = false;
    const blackhole = await FakeUpstream.start((query, t) => (alive ? t.answerFor(query) : null));
    const live = await FakeUpstream.start(answer);
    cleanup.push(() => blackhole.stop(), () => live.stop());
    const set = new UpstreamSet({
      name: 'default',
      // The blackhole's timeout is what the test is about; the live server's is long, so that a
      // loaded machine (CI) never makes it look dead too.
      servers: [await plain(blackhole.port, 300), await plain(live.port, 5000)],
      clock: realClock,
      log: silentLogger,
      probeMinMs: 50,
      probeMaxMs: 100,
    });
    cleanup.push(() => set.close());
    expect((await set.exchange(q('first.test'))).server).toBe(1);
    expect(set.healthOf()[0]!.failures).toEqual({ timeout: 1 });
    for (let i = 0; i < 10; i++) expect((await set.exchange(q(`n${i}.test`))).server).toBe(1);
    // Only the first query and probes reached the blackhole; none of the ten.
    expect(real(blackhole).map((x) => x.name)).toEqual(['first.test']);
    alive = true;
    await waitFor(() => set.healthOf()[0]!.state === 'up', 'a probe to find the blackholed server answering');
    const a = await set.exchange(q('again.test'));
    expect(a.server).toBe(0);
    expect(dnsPacket.decode(Buffer.from(a.bytes)).questions?.[0]?.name).toBe('again.test');
  });
});
