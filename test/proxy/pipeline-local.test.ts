/**
 * The pipeline with the real policy for the two ways of issue 12 to answer LAN names:
 * conditional forwarding (a rule with an upstream and no channel: the right upstream asked,
 * nothing registered) and local records (`hosts:`: no upstream asked, and a protected local
 * name registered before its answer is released, like any other answer).
 */
import { describe, expect, test } from 'bun:test';
import dnsPacket from 'dns-packet';
import { scanAnswer } from '../../src/dns/answer-scan.ts';
import type { ParsedQuery } from '../../src/dns/query.ts';
import { Policy } from '../../src/policy/policy.ts';
import type { Forwarded } from '../../src/proxy/forwarder.ts';
import type { ClientInfo } from '../../src/proxy/handler.ts';
import { LocalRecords } from '../../src/proxy/local-records.ts';
import { Pipeline } from '../../src/proxy/pipeline.ts';
import { newProxyCounters } from '../../src/proxy/proxy-counters.ts';
import { silentLogger } from '../../src/util/log.ts';
import { clientQuery } from '../fixtures/dns/capture.ts';
import { channels, config, table } from '../policy/fixtures.ts';
import { EventLog, mapFull, RecordingRegistry } from './doubles.ts';

const UDP: ClientInfo = { address: '127.0.0.1', port: 5353, transport: 'udp' };
const decode = (b: Uint8Array | null) => dnsPacket.decode(Buffer.from(b!)) as dnsPacket.DecodedPacket & { rcode: string };
const A = 1;
const AAAA = 28;
const PTR = 12;
const MX = 15;

/** What the upstreams know: name → A address, or a CNAME target. */
const ZONE: Record<string, { a?: string; cname?: string }> = {
  'printer.lan': { a: '192.168.1.50' },
  'nas.lan': { a: '192.168.1.10' },
  'wiki.lan': { cname: 'edge.cdn.example' },
  'edge.cdn.example': { a: '203.0.113.80' },
  'www.example.org': { a: '198.51.100.7' },
  'router.lan': { a: '10.99.99.99' }, // what an upstream would say: a local record must win
};

/** A forwarder that answers from ZONE (following CNAMEs) and records which upstream it was asked. */
function zoneForwarder(events: EventLog) {
  const calls: Array<{ name: string; upstream: string | null }> = [];
  return {
    calls,
    async forward(query: ParsedQuery, upstream: string | null): Promise<Forwarded> {
      calls.push({ name: query.qname, upstream });
      events.note('forwarded', query.qname);
      const answers: dnsPacket.Answer[] = [];
      for (let n: string | undefined = query.qname; n && ZONE[n]; ) {
        const z: { a?: string; cname?: string } = ZONE[n]!;
        if (z.cname) answers.push({ name: n, type: 'CNAME', ttl: 120, data: z.cname });
        else answers.push({ name: n, type: 'A', ttl: 120, data: z.a! });
        n = z.cname;
      }
      const bytes = new Uint8Array(dnsPacket.encode({ type: 'response', id: 1, flags: dnsPacket.RECURSION_DESIRED | dnsPacket.RECURSION_AVAILABLE, questions: [{ name: query.qname, type: 'A' }], answers }));
      return { bytes, scan: scanAnswer(bytes, query.question.length, query.qname), via: 'udp' };
    },
  };
}

const UPSTREAMS = ['default', 'lan'].map((name, i) => ({ name, servers: [{ transport: 'dns' as const, address: `127.0.0.${i + 1}`, port: 53 }] }));
const CHANNELS = channels(['hub', { kind: 'tunnel', gateway: '192.0.2.1' }], ['partner', { kind: 'peer' }]);

function setup(rules: Array<[string, string | null, string?]>, hosts: ConstructorParameters<typeof LocalRecords>[0] = []) {
  const events = new EventLog();
  const registry = new RecordingRegistry(events);
  const forwarder = zoneForwarder(events);
  const counters = newProxyCounters();
  const policy = Policy.fromConfig(config({ upstreams: UPSTREAMS, channels: CHANNELS, tables: [table('default', rules)] }));
  const pipeline = new Pipeline({
    policy,
    registry,
    forwarder,
    upstreamNames: ['default', 'lan'],
    counters,
    log: silentLogger,
    canary: 'nxdomain',
    ...(hosts.length ? { local: new LocalRecords(hosts, 60) } : {}),
  });
  const ask = async (name: string, type = A) => {
    const out = await pipeline.handle(clientQuery(name, type, false, 0x5151), UDP);
    events.note('answered', name);
    return decode(out);
  };
  return { pipeline, registry, forwarder, counters, events, ask };
}

const addrs = (p: dnsPacket.DecodedPacket) => (p.answers ?? []).flatMap((r) => (r.type === 'A' || r.type === 'AAAA' ? [String(r.data)] : []));

describe('proxy/pipeline conditional forwarding', () => {
  const RULES: Array<[string, string | null, string?]> = [
    ['*.lan', null, 'lan'],
    ['nas.lan', 'hub'],
    ['*.cdn.example', 'partner'],
  ];

  test('asks the forwarding rule\'s upstream and registers nothing when only a forwarding rule matches', async () => {
    const { ask, forwarder, registry, counters } = setup(RULES);
    const out = await ask('printer.lan');
    expect(forwarder.calls).toEqual([{ name: 'printer.lan', upstream: 'lan' }]);
    expect(addrs(out)).toEqual(['192.168.1.50']);
    expect(registry.registrations).toEqual([]);
    expect(counters.queries.answer).toBe(1);
  });

  test('asks the forwarding rule\'s upstream and protects through the protecting rule below it', async () => {
    const { ask, forwarder, registry, events } = setup(RULES);
    await ask('nas.lan');
    expect(forwarder.calls).toEqual([{ name: 'nas.lan', upstream: 'lan' }]);
    expect(registry.registrations.map((r) => [r.channel.name, r.addrs])).toEqual([['hub', ['192.168.1.10']]]);
    expect(events.events.map((e) => e.what)).toEqual(['forwarded', 'registered', 'answered']);
  });

  test('protects a forwarded name whose CNAME target a protecting rule matches', async () => {
    const { ask, forwarder, registry } = setup(RULES);
    await ask('wiki.lan');
    expect(forwarder.calls[0]?.upstream).toBe('lan');
    expect(registry.registrations.map((r) => [r.channel.name, r.names, r.addrs])).toEqual([['partner', ['wiki.lan', 'edge.cdn.example'], ['203.0.113.80']]]);
  });

  test('asks the default upstream when no rule names another', async () => {
    const { ask, forwarder } = setup(RULES);
    await ask('www.example.org');
    expect(forwarder.calls).toEqual([{ name: 'www.example.org', upstream: null }]);
  });
});

describe('proxy/pipeline local records', () => {
  const HOSTS = [
    { name: 'router.lan', addrs: ['192.168.1.1', 'fd00::1'] },
    { name: 'nas.lan', addrs: ['192.168.1.10'] },
  ];

  test('answers a local name without asking an upstream, even one a forwarding rule names', async () => {
    const { ask, forwarder, registry, counters } = setup([['*.lan', null, 'lan']], HOSTS);
    const out = await ask('router.lan');
    expect(forwarder.calls).toEqual([]);
    expect(out.id).toBe(0x5151);
    expect(out.flag_aa).toBe(true);
    expect(addrs(out)).toEqual(['192.168.1.1']);
    expect(registry.registrations).toEqual([]);
    expect(counters.queries.answer).toBe(1);
    // the client spoke EDNS: it gets our OPT
    expect(out.additionals?.map((r) => r.type)).toEqual(['OPT']);
  });

  test.each([
    ['ROUTER.Lan', A, ['192.168.1.1']],
    ['router.lan', AAAA, ['fd00::1']],
  ])('answers %s type %p locally', async (name, type, want) => {
    const { ask, forwarder } = setup([], HOSTS);
    const out = await ask(name, type);
    expect(addrs(out)).toEqual(want);
    expect(forwarder.calls).toEqual([]);
  });

  test('answers the PTR of a local address locally', async () => {
    const { ask, forwarder } = setup([], HOSTS);
    const out = await ask('10.1.168.192.in-addr.arpa', PTR);
    expect(out.answers?.map((r) => [r.type, (r as { data: unknown }).data])).toEqual([['PTR', 'nas.lan']]);
    expect(forwarder.calls).toEqual([]);
  });

  test('answers NODATA locally for another type of a local name', async () => {
    const { ask, forwarder } = setup([], HOSTS);
    const out = await ask('nas.lan', MX);
    expect([out.rcode, out.answers]).toEqual(['NOERROR', []]);
    expect(forwarder.calls).toEqual([]);
  });

  test('forwards a name that is not local', async () => {
    const { ask, forwarder } = setup([['*.lan', null, 'lan']], HOSTS);
    await ask('printer.lan');
    expect(forwarder.calls).toEqual([{ name: 'printer.lan', upstream: 'lan' }]);
  });

  test('registers a protected local name before the answer is released', async () => {
    const { ask, registry, events, forwarder, counters } = setup([['*.lan', null, 'lan'], ['nas.lan', 'hub']], HOSTS);
    registry.delayMs = 20;
    const out = await ask('nas.lan');
    expect(forwarder.calls).toEqual([]);
    expect(registry.registrations).toHaveLength(1);
    expect(registry.registrations[0]).toMatchObject({ group: 0, names: ['nas.lan'], addrs: ['192.168.1.10'], ttlS: 60, queryName: 'nas.lan' });
    expect(registry.registrations[0]!.channel.name).toBe('hub');
    expect(events.events.map((e) => e.what)).toEqual(['registered', 'answered']);
    expect(addrs(out)).toEqual(['192.168.1.10']);
    expect(counters.queries.protected).toBe(1);
  });

  test('answers SERVFAIL and never the local address when its registration fails', async () => {
    const { ask, registry, counters } = setup([['*.lan', 'hub']], HOSTS);
    registry.failWith = mapFull();
    const out = await ask('router.lan', AAAA);
    expect(out.rcode).toBe('SERVFAIL');
    expect(out.answers).toEqual([]);
    expect(counters.servfail.register).toBe(1);
  });

  test('registers nothing for a NODATA answer of a protected local name', async () => {
    const { ask, registry } = setup([['*.lan', 'hub']], HOSTS);
    const out = await ask('nas.lan', AAAA);
    expect([out.rcode, out.answers]).toEqual(['NOERROR', []]);
    expect(registry.registrations).toEqual([]);
  });
});
