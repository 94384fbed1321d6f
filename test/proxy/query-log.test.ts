/**
 * The query log (issue 12): the exact line for a query in logfmt and in JSON (golden lines),
 * and what the pipeline writes for each way a query ends — answered and protected (the
 * registered addresses), SERVFAIL (why), REFUSED by allow_clients, and nothing while off.
 */
import { describe, expect, test } from 'bun:test';
import dnsPacket from 'dns-packet';
import { AnswerCache } from '../../src/cache/answer-cache.ts';
import { parseCondition } from '../../src/policy/condition.ts';
import type { Decision } from '../../src/policy/types.ts';
import { ClientAcl } from '../../src/proxy/client-acl.ts';
import { QueryLog, type QueryLogEntry } from '../../src/proxy/query-log.ts';
import { realClock } from '../../src/util/clock.ts';
import { DnssealError } from '../../src/util/errors.ts';
import { createLogger, type LogFormat } from '../../src/util/log.ts';
import { HUB, SuffixPolicy } from './doubles.ts';
import { proxyOn } from './proxy-fixture.ts';

const AT = Date.UTC(2025, 0, 2, 3, 4, 5, 678);

const PROTECTED: QueryLogEntry = {
  client: '10.1.0.7',
  via: '10.1.0.1',
  transport: 'udp',
  name: 'app.corp.example',
  type: 1,
  rcode: 0,
  upstream: 'corp',
  latencyMs: 1.20449,
  cached: false,
  decision: { table: 'engineering', group: 7, rule: { condition: parseCondition('*.corp.example'), channel: 'hub', index: 0 }, channel: HUB, upstream: 'corp' } satisfies Decision,
  addrs: ['203.0.113.10', '2001:db8::10'],
};

const REFUSED: QueryLogEntry = {
  client: '192.0.2.99',
  transport: 'tcp',
  name: 'www.example',
  type: 65,
  rcode: 5,
  reason: 'allow_clients',
  upstream: null,
  latencyMs: 0.0414,
  cached: false,
  decision: null,
  addrs: [],
};

function lineOf(e: QueryLogEntry, format: LogFormat): string {
  const lines: string[] = [];
  // the level does not matter: the query log is written whatever it says
  new QueryLog(createLogger({ level: 'error', format, write: (l) => void lines.push(l), clock: () => AT })).write(e);
  expect(lines).toHaveLength(1);
  return lines[0]!;
}

describe('proxy/query-log', () => {
  test.each([
    [
      'logfmt',
      PROTECTED,
      'ts=2025-01-02T03:04:05.678Z level=info msg=query client=10.1.0.7 via=10.1.0.1 proto=udp name=app.corp.example type=A rcode=NOERROR upstream=corp latency_ms=1.204 cache=false table=engineering rule="*.corp.example" channel=hub addrs="203.0.113.10,2001:db8::10"',
    ],
    [
      'json',
      PROTECTED,
      '{"ts":"2025-01-02T03:04:05.678Z","level":"info","msg":"query","client":"10.1.0.7","via":"10.1.0.1","proto":"udp","name":"app.corp.example","type":"A","rcode":"NOERROR","upstream":"corp","latency_ms":1.204,"cache":false,"table":"engineering","rule":"*.corp.example","channel":"hub","addrs":"203.0.113.10,2001:db8::10"}',
    ],
    ['logfmt', REFUSED, 'ts=2025-01-02T03:04:05.678Z level=info msg=query client=192.0.2.99 proto=tcp name=www.example type=HTTPS rcode=REFUSED reason=allow_clients latency_ms=0.041 cache=false'],
    [
      'json',
      REFUSED,
      '{"ts":"2025-01-02T03:04:05.678Z","level":"info","msg":"query","client":"192.0.2.99","proto":"tcp","name":"www.example","type":"HTTPS","rcode":"REFUSED","reason":"allow_clients","latency_ms":0.041,"cache":false}',
    ],
  ] as const)('writes the golden %s line when a query ends', (format, entry, golden) => {
    expect(lineOf(entry, format)).toBe(golden);
  });

  test('names an unknown type and rcode by number when they have no mnemonic', () => {
    expect(lineOf({ ...REFUSED, type: 4242, rcode: 12, reason: undefined }, 'logfmt')).toContain('type=TYPE4242 rcode=RCODE12 ');
  });
});

describe('proxy/pipeline query log', () => {
  const A = (name: string, data: string) => ({ name, type: 'A' as const, ttl: 60, class: 'IN' as const, data });
  const query = (name: string) => dnsPacket.encode({ type: 'query', id: 7, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type: 'A', name }] });

  async function logged(on: boolean, extra: Parameters<typeof proxyOn>[2] = {}) {
    const lines: string[] = [];
    const queryLog = new QueryLog(createLogger({ level: 'warn', write: (l) => void lines.push(l) }), on);
    const p = await proxyOn((q, t) => t.answerFor(q, { answers: [A(q.name, q.name.endsWith('corp.example') ? '203.0.113.10' : '198.51.100.7')] }), new SuffixPolicy(['corp.example']), { queryLog, ...extra });
    return { ...p, lines, queryLog };
  }

  test('writes the registered addresses and the decision when a protected answer is released', async () => {
    const p = await logged(true);
    await p.ask(query('app.corp.example'));
    expect(p.lines).toHaveLength(1);
    expect(p.lines[0]).toMatch(/msg=query client=127\.0\.0\.1 proto=udp name=app\.corp\.example type=A rcode=NOERROR upstream=default latency_ms=[\d.]+ cache=false table=default channel=hub addrs=203\.0\.113\.10$/);
    await p.ask(query('www.example'));
    expect(p.lines[1]).toMatch(/name=www\.example type=A rcode=NOERROR upstream=default latency_ms=[\d.]+ cache=false table=default$/);
  });

  test('writes SERVFAIL and why, without addresses, when registration fails', async () => {
    const p = await logged(true);
    p.registry.failWith = new DnssealError('registry', 'map_full', 'registry: map full');
    expect((await p.ask(query('app.corp.example'))).rcode).toBe('SERVFAIL');
    expect(p.lines[0]).toContain('rcode=SERVFAIL reason=register upstream=default');
    expect(p.lines[0]).toContain('channel=hub');
    expect(p.lines[0]).not.toContain('addrs=');
  });

  test('writes REFUSED for a sender allow_clients leaves out', async () => {
    const p = await logged(true, { acl: new ClientAcl(['127.0.0.1/32']) });
    expect((await p.ask(query('app.corp.example'), '127.0.0.2')).rcode).toBe('REFUSED');
    expect(p.lines).toEqual([expect.stringMatching(/msg=query client=127\.0\.0\.2 proto=udp name=app\.corp\.example type=A rcode=REFUSED reason=allow_clients latency_ms=[\d.]+ cache=false$/)]);
    expect(p.counters.queries.refused).toBe(1);
    expect(p.fake.queries).toHaveLength(0);
  });

  test('says cache=true when the answer came from the answer cache', async () => {
    const p = await logged(true, { cache: new AnswerCache({ clock: realClock }) });
    await p.ask(query('app.corp.example'));
    await p.ask(query('app.corp.example'));
    expect(p.lines.map((l) => /cache=(\w+)/.exec(l)?.[1])).toEqual(['false', 'true']);
    expect(p.lines[1]).toContain('channel=hub addrs=203.0.113.10'); // a hit registers too
    expect(p.fake.queries).toHaveLength(1);
  });

  test('writes nothing while off, and starts with the next query when switched on', async () => {
    const p = await logged(false);
    await p.ask(query('app.corp.example'));
    expect(p.lines).toEqual([]);
    p.queryLog.set(true);
    await p.ask(query('app.corp.example'));
    expect(p.lines).toHaveLength(1);
  });
});
