import { describe, expect, test } from 'bun:test';
import * as dnsPacket from 'dns-packet';
import { parseQuery, type ParsedQuery } from '../../src/dns/query.ts';
import { Zone } from '../../src/policy-server/zone.ts';
import { ZONE_TEXT } from './helpers.ts';

type Loose = { type: string; data?: unknown };
const answers = (m: Uint8Array) => (dnsPacket.decode(Buffer.from(m)).answers ?? []) as Loose[];

function q(name: string, type: dnsPacket.RecordType = 'A'): ParsedQuery {
  const r = parseQuery(new Uint8Array(dnsPacket.encode({ type: 'query', id: 77, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type, name }] })));
  if (r.kind !== 'ok') throw new Error(r.kind);
  return r.query;
}

describe('policy-server/zone', () => {
  const zone = Zone.parse(ZONE_TEXT + 'v6.jinji AAAA 2001:db8::7\n  A 192.0.2.77\n', 'fig6.zone');

  test('answers A authoritatively with the client ID when the name exists', () => {
    const a = dnsPacket.decode(Buffer.from(zone.answer(q('KOJIMA.jinji.nec.com'))));
    expect(a.id).toBe(77);
    expect(a.flags! & 0x0400).toBe(0x0400);
    expect(a.questions?.[0]?.name).toBe('KOJIMA.jinji.nec.com');
    expect(a.answers).toMatchObject([{ name: 'kojima.jinji.nec.com', type: 'A', ttl: 300, data: '198.51.100.7' }]);
  });

  test('follows a CNAME inside the zone when the name is an alias', () => {
    const a = dnsPacket.decode(Buffer.from(zone.answer(q('alias.jinji.nec.com'))));
    expect((a.answers as Loose[] | undefined)?.map((r) => [r.type, r.data])).toEqual([['CNAME', 'kojima.jinji.nec.com'], ['A', '198.51.100.7']]);
  });

  test('answers AAAA and keeps the previous owner when the owner is blank', () => {
    expect(answers(zone.answer(q('v6.jinji.nec.com', 'AAAA')))[0]?.data).toBe('2001:db8::7');
    expect(answers(zone.answer(q('v6.jinji.nec.com')))[0]?.data).toBe('192.0.2.77');
  });

  test.each([
    ['NXDOMAIN', 'nobody.nec.com', 'A', 'NXDOMAIN', 0],
    ['NODATA', 'kojima.jinji.nec.com', 'AAAA', 'NOERROR', 0],
  ] as const)('answers %s when asked', (_n, name, type, rcode, count) => {
    const a = dnsPacket.decode(Buffer.from(zone.answer(q(name, type))));
    expect((a as { rcode?: string }).rcode).toBe(rcode);
    expect(a.answers?.length ?? 0).toBe(count);
  });

  test('covers only names at or under its origin', () => {
    expect(zone.covers('nec.com')).toBe(true);
    expect(zone.covers('a.b.nec.com')).toBe(true);
    expect(zone.covers('xnec.com')).toBe(false);
  });

  test('stops a CNAME loop when following', () => {
    const loop = Zone.parse('$ORIGIN l.test.\na CNAME b\nb CNAME a\n', 'loop.zone');
    const a = dnsPacket.decode(Buffer.from(loop.answer(q('a.l.test'))));
    expect(a.answers!.length).toBeLessThanOrEqual(9);
  });

  test.each([
    ['an unknown type', 'x MX 10 mail', 'z:2'],
    ['a bad IPv4', 'x A 300.1.1.1', 'z:2'],
    ['an IPv4 in AAAA', 'x AAAA 192.0.2.1', 'z:2'],
    ['two values', 'x A 192.0.2.1 192.0.2.2', 'z:2'],
    ['a multi-line record', '@ SOA ns admin (', 'z:2'],
    ['an unknown directive', '$INCLUDE other', 'z:2'],
    ['a CNAME beside an A', 'x A 192.0.2.1\nx CNAME y', 'z'],
  ])('refuses %s with file:line', (_n, line, where) => {
    expect(() => Zone.parse(`$ORIGIN t.\n${line}\n`, 'z')).toThrow(new RegExp(`^${where}:`));
  });
});
