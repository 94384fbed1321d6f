import { describe, expect, test } from 'bun:test';
import dnsPacket from 'dns-packet';
import { parseQuery, type ParsedQuery } from '../../src/dns/query.ts';
import { LocalRecords, reverseName } from '../../src/proxy/local-records.ts';

const RECORDS = new LocalRecords(
  [
    { name: 'router.lan', addrs: ['192.168.1.1'] },
    { name: 'nas.lan', addrs: ['192.168.1.10', 'fd00::10'] },
    { name: 'v6only.lan', addrs: ['fd00::20'] },
    // an alias of router.lan's address: router.lan keeps the PTR (given first)
    { name: 'gw.lan', addrs: ['192.168.1.1'] },
    // a name given twice: both's addresses, each once
    { name: 'nas.lan', addrs: ['fd00::10', '192.168.1.11'] },
  ],
  300,
);

type AnyType = dnsPacket.RecordType | 'ANY' | 'HTTPS';

function query(name: string, type: AnyType, opts: { rd?: boolean; cd?: boolean; klass?: 'IN' | 'CH'; id?: number } = {}): ParsedQuery {
  const flags = (opts.rd === false ? 0 : dnsPacket.RECURSION_DESIRED) | (opts.cd ? dnsPacket.CHECKING_DISABLED : 0);
  const bytes = dnsPacket.encode({ type: 'query', id: opts.id ?? 0x1234, flags, questions: [{ type: type as dnsPacket.RecordType, name, class: opts.klass ?? 'IN' }] });
  const p = parseQuery(new Uint8Array(bytes));
  if (p.kind !== 'ok') throw new Error(`test query for ${name} did not parse: ${p.kind}`);
  return p.query;
}

function answer(name: string, type: AnyType, opts?: Parameters<typeof query>[2]) {
  const f = RECORDS.answer(query(name, type, opts));
  if (!f) return null;
  return { f, p: dnsPacket.decode(Buffer.from(f.bytes)) as dnsPacket.DecodedPacket & { rcode: string } };
}

const data = (p: dnsPacket.DecodedPacket) => (p.answers ?? []).map((r) => [r.name, r.type, (r as { ttl?: number }).ttl, String((r as { data: unknown }).data)]);

describe('proxy/local-records', () => {
  test.each([
    ['router.lan', 'A', [['router.lan', 'A', 300, '192.168.1.1']]],
    ['nas.lan', 'A', [['nas.lan', 'A', 300, '192.168.1.10'], ['nas.lan', 'A', 300, '192.168.1.11']]],
    ['nas.lan', 'AAAA', [['nas.lan', 'AAAA', 300, 'fd00::10']]],
    ['nas.lan', 'ANY', [['nas.lan', 'A', 300, '192.168.1.10'], ['nas.lan', 'AAAA', 300, 'fd00::10'], ['nas.lan', 'A', 300, '192.168.1.11']]],
    ['gw.lan', 'A', [['gw.lan', 'A', 300, '192.168.1.1']]],
    ['1.1.168.192.in-addr.arpa', 'PTR', [['1.1.168.192.in-addr.arpa', 'PTR', 300, 'router.lan']]],
    ['10.1.168.192.in-addr.arpa', 'PTR', [['10.1.168.192.in-addr.arpa', 'PTR', 300, 'nas.lan']]],
    [reverseName('fd00::20'), 'PTR', [[reverseName('fd00::20'), 'PTR', 300, 'v6only.lan']]],
  ] as const)('answers %s %s from the local records', (name, type, want) => {
    const r = answer(name, type)!;
    expect(r.p.rcode).toBe('NOERROR');
    expect(data(r.p)).toEqual(want.map((w) => [...w]));
  });

  test.each([
    ['nas.lan', 'MX'],
    ['nas.lan', 'HTTPS'],
    ['nas.lan', 'TXT'],
    ['v6only.lan', 'A'],
    ['router.lan', 'AAAA'],
    ['1.1.168.192.in-addr.arpa', 'A'],
  ] as const)('answers NODATA (NOERROR, no records, no SOA) when %s is local but has no %s', (name, type) => {
    const r = answer(name, type)!;
    expect(r.p.rcode).toBe('NOERROR');
    expect(r.p.answers).toEqual([]);
    expect(r.p.authorities).toEqual([]);
    expect(r.f.scan.addrs).toEqual([]);
  });

  test.each([
    ['x.router.lan', 'A'],
    ['lan', 'A'],
    ['router.lan.example', 'A'],
    ['2.1.168.192.in-addr.arpa', 'PTR'],
  ] as const)('leaves %s %s to the upstreams when it is not local', (name, type) => {
    expect(answer(name, type)).toBeNull();
  });

  test('leaves another class than IN to the upstreams', () => {
    expect(answer('router.lan', 'A', { klass: 'CH' })).toBeNull();
  });

  test('answers a local name in any case and keeps the question as asked', () => {
    const r = answer('RoUtEr.LaN', 'A')!;
    expect(r.p.questions?.[0]?.name).toBe('RoUtEr.LaN');
    expect(data(r.p)).toEqual([['RoUtEr.LaN', 'A', 300, '192.168.1.1']]);
    expect(r.f.scan.chain).toEqual(['router.lan']);
  });

  test('sets AA and RA, echoes RD and CD and leaves AD clear', () => {
    const r = answer('router.lan', 'A', { cd: true })!;
    expect(r.p.flags).toBe(dnsPacket.AUTHORITATIVE_ANSWER | dnsPacket.RECURSION_AVAILABLE | dnsPacket.RECURSION_DESIRED | dnsPacket.CHECKING_DISABLED);
    expect(answer('router.lan', 'A', { rd: false })!.p.flags).toBe(dnsPacket.AUTHORITATIVE_ANSWER | dnsPacket.RECURSION_AVAILABLE);
  });

  test('scans its answer as an upstream answer (addresses and TTL for the registry, no OPT)', () => {
    const r = answer('nas.lan', 'A')!;
    expect(r.f.scan).toMatchObject({ rcode: 0, chain: ['nas.lan'], addrs: ['192.168.1.10', '192.168.1.11'], minTtl: 300, strays: 0, opt: null });
  });

  test('makes these bytes for router.lan A (golden)', () => {
    const r = RECORDS.answer(query('router.lan', 'A'))!;
    // prettier-ignore
    expect([...r.bytes]).toEqual([
      0, 0, 0x85, 0x80, 0, 1, 0, 1, 0, 0, 0, 0,                   // id 0 (the client's is patched in), QR AA RD RA, 1 question, 1 answer
      6, 114, 111, 117, 116, 101, 114, 3, 108, 97, 110, 0, 0, 1, 0, 1, // router.lan A IN, as asked
      0xc0, 12, 0, 1, 0, 1, 0, 0, 1, 44, 0, 4, 192, 168, 1, 1,     // -> question name, A IN, TTL 300, 192.168.1.1
    ]);
  });

  test.each([
    ['192.0.2.1', '1.2.0.192.in-addr.arpa'],
    ['2001:db8::1', '1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa'],
  ])('names the reverse of %s %s', (addr, name) => {
    expect(reverseName(addr)).toBe(name);
  });

  test('lists the records of a local name and of a reverse name for explain', () => {
    expect(RECORDS.records('nas.lan')).toEqual([
      { type: 'A', data: '192.168.1.10' },
      { type: 'AAAA', data: 'fd00::10' },
      { type: 'A', data: '192.168.1.11' },
    ]);
    expect(RECORDS.records('1.1.168.192.in-addr.arpa')).toEqual([{ type: 'PTR', data: 'router.lan' }]);
    expect(RECORDS.records('x.lan')).toBeUndefined();
  });

  test('answers nothing when it has no records', () => {
    expect(new LocalRecords([], 60).answer(query('router.lan', 'A'))).toBeNull();
  });
});
