import { describe, expect, test } from 'bun:test';
import dnsPacket from 'dns-packet';
import { questionMatches, scanAnswer } from '../../src/dns/answer-scan.ts';
import { encodeSvcb } from '../../src/dns/svcb.ts';
import { WireError } from '../../src/dns/wire.ts';
import { fixture } from './fixtures.ts';

type Rec = { name: string; type: string; ttl?: number; data: unknown };

function answer(qname: string, answers: Rec[], extra: Partial<dnsPacket.Packet> = {}): Uint8Array {
  return new Uint8Array(
    dnsPacket.encode({
      type: 'response',
      id: 7,
      flags: dnsPacket.RECURSION_DESIRED | dnsPacket.RECURSION_AVAILABLE,
      questions: [{ name: qname, type: 'A' }],
      answers: answers.map((a) => ({ class: 'IN', ttl: 300, ...a })) as dnsPacket.Answer[],
      ...extra,
    } as dnsPacket.Packet),
  );
}

function scan(buf: Uint8Array, qname: string) {
  const qlen = qname.split('.').reduce((n, l) => n + l.length + 1, 1) + 4;
  return scanAnswer(buf, qlen, qname.toLowerCase());
}

describe('dns/answer-scan', () => {
  test('follows a CNAME chain from the query name when records come in any order', () => {
    const buf = answer('a.test', [
      { name: 'c.test', type: 'A', ttl: 60, data: '192.0.2.3' },
      { name: 'b.test', type: 'CNAME', data: 'c.test' },
      { name: 'a.test', type: 'CNAME', data: 'b.test' },
      { name: 'c.test', type: 'AAAA', ttl: 30, data: '2001:db8::3' },
    ]);
    const s = scan(buf, 'a.test');
    expect(s.chain).toEqual(['a.test', 'b.test', 'c.test']);
    expect(s.addrs).toEqual(['192.0.2.3', '2001:db8::3']);
    expect(s.minTtl).toBe(30);
  });

  test('ignores addresses of names outside the chain when the upstream adds them', () => {
    const buf = answer('a.test', [
      { name: 'a.test', type: 'A', data: '192.0.2.1' },
      { name: 'other.test', type: 'A', data: '198.51.100.66' },
    ]);
    expect(scan(buf, 'a.test')).toMatchObject({ addrs: ['192.0.2.1'], strays: 1 });
  });

  test('counts address records outside the chain as strays when they sit in any section', () => {
    const buf = answer('a.test', [
      { name: 'a.test', type: 'CNAME', data: 'b.test' },
      { name: 'b.test', type: 'A', data: '192.0.2.2' },
      { name: 'z.test', type: 'AAAA', data: '2001:db8::66' },
      { name: 'z.test', type: 'TXT', data: 'not an address' },
    ], {
      authorities: [{ name: 'test', type: 'NS', ttl: 60, class: 'IN', data: 'ns.test' }],
      additionals: [
        { name: 'ns.test', type: 'A', ttl: 60, class: 'IN', data: '192.0.2.53' },
        { name: 'b.test', type: 'A', ttl: 60, class: 'IN', data: '192.0.2.2' },
      ],
    });
    expect(scan(buf, 'a.test')).toMatchObject({ addrs: ['192.0.2.2'], strays: 3 });
    expect(scan(answer('a.test', [{ name: 'a.test', type: 'A', data: '192.0.2.1' }]), 'a.test').strays).toBe(0);
  });

  test('compares owner names case-insensitively when the upstream changes case', () => {
    const buf = answer('a.test', [
      { name: 'A.TEST', type: 'CNAME', data: 'B.Test' },
      { name: 'b.TEST', type: 'A', data: '192.0.2.2' },
    ]);
    expect(scan(buf, 'a.test')).toMatchObject({ chain: ['a.test', 'b.test'], addrs: ['192.0.2.2'] });
  });

  test('stops at a CNAME loop when the chain comes back on itself', () => {
    const buf = answer('a.test', [
      { name: 'a.test', type: 'CNAME', data: 'b.test' },
      { name: 'b.test', type: 'CNAME', data: 'a.test' },
    ]);
    expect(scan(buf, 'a.test')).toMatchObject({ chain: ['a.test', 'b.test'], addrs: [], minTtl: 0 });
  });

  test('collects SVCB/HTTPS hints when the record belongs to the chain', () => {
    const rd = Buffer.from(encodeSvcb(1, '.', [
      { key: 4, value: Uint8Array.from([192, 0, 2, 9]) },
      { key: 6, value: Uint8Array.from([0x20, 1, 0x0d, 0xb8, ...new Array(11).fill(0), 9]) },
    ]));
    const buf = answer('a.test', [
      { name: 'a.test', type: 'UNKNOWN_65', ttl: 120, data: rd },
      { name: 'a.test', type: 'UNKNOWN_64', ttl: 100, data: rd },
    ]);
    expect(scan(buf, 'a.test')).toMatchObject({ addrs: ['192.0.2.9', '2001:db8::9'], minTtl: 100 });
  });

  test('deduplicates an address when it appears twice', () => {
    const buf = answer('a.test', [
      { name: 'a.test', type: 'A', data: '192.0.2.1' },
      { name: 'a.test', type: 'A', data: '192.0.2.1' },
    ]);
    expect(scan(buf, 'a.test').addrs).toEqual(['192.0.2.1']);
  });

  test('finds the OPT record and its index when it sits among additionals', () => {
    const buf = answer('a.test', [{ name: 'a.test', type: 'A', data: '192.0.2.1' }], {
      additionals: [
        { name: 'x.test', type: 'A', ttl: 1, class: 'IN', data: '192.0.2.99' },
        { name: '.', type: 'OPT', udpPayloadSize: 4096, flags: dnsPacket.DNSSEC_OK, options: [] } as unknown as dnsPacket.Answer,
      ],
    });
    const s = scan(buf, 'a.test');
    expect(s.opt).toMatchObject({ index: 1, end: buf.length, ttl: 0x8000 });
    expect(s.arcount).toBe(2);
    expect(s.end).toBe(buf.length);
  });

  test.each([
    ['an A record of 5 octets', (b: Uint8Array) => fixAt(b, 'c0000201', 'rdlen5')],
  ])('rejects %s', (_w, mutate) => {
    const buf = mutate(answer('a.test', [{ name: 'a.test', type: 'A', data: '192.0.2.1' }]));
    expect(() => scan(buf, 'a.test')).toThrow(WireError);
  });

  test('rejects two OPT records and an OPT in the authority section', () => {
    const opt = { name: '.', type: 'OPT', udpPayloadSize: 1232, flags: 0, options: [] } as unknown as dnsPacket.Answer;
    expect(() => scan(answer('a.test', [], { additionals: [opt, opt] }), 'a.test')).toThrow(WireError);
    expect(() => scan(answer('a.test', [], { authorities: [opt] }), 'a.test')).toThrow(WireError);
  });

  test('rejects an answer whose counts promise more records than it has', () => {
    const buf = answer('a.test', [{ name: 'a.test', type: 'A', data: '192.0.2.1' }]);
    buf[7] = 200;
    expect(() => scan(buf, 'a.test')).toThrow(WireError);
  });

  test.each([
    ['www-a', 'www.test', ['www.test'], ['192.0.2.10']],
    ['www-aaaa', 'www.test', ['www.test'], ['2001:db8::10']],
    ['alias-a', 'alias.test', ['alias.test', 'www.test'], ['192.0.2.10']],
    ['chain1-a', 'chain1.test', ['chain1.test', 'chain2.test', 'chain3.test', 'www.test'], ['192.0.2.10']],
    ['front-a', 'front.test', ['front.test', 'app.corp.test', 'www.corp.test'], ['203.0.113.10']],
    ['svc-https', 'svc.test', ['svc.test'], ['192.0.2.20', '192.0.2.21', '2001:db8::20']],
    ['svcalias-https', 'svcalias.test', ['svcalias.test'], []],
    ['mixed-a', 'mixed.test', ['mixed.test'], ['192.0.2.30']],
    ['nx-a', 'nx.test', ['nx.test'], []],
    ['signed-a-do', 'www.signed.test', ['www.signed.test'], ['192.0.2.40']],
  ])('reads knot capture %s when scanned', (file, qname, chain, addrs) => {
    const { query, answer: buf } = fixture(file);
    const question = query.subarray(12, query.length - 11);
    expect(questionMatches(buf, question)).toBe(true);
    const s = scanAnswer(buf, question.length, qname);
    expect(s.chain).toEqual(chain);
    expect(s.addrs).toEqual(addrs);
    expect(s.opt).not.toBeNull();
  });

  test('reads all 120 addresses of the big answer when it came over TCP', () => {
    const { query, answer: buf } = fixture('many-a');
    const s = scanAnswer(buf, query.length - 23, 'many.test');
    expect(s.addrs.length).toBe(120);
    expect(s.truncated).toBe(false);
  });

  test.each([
    ['a different case', (q: Uint8Array) => ((q[1] = 0x57), q)],
    ['a different type', (q: Uint8Array) => ((q[q.length - 3] = 28), q)],
    ['a different class', (q: Uint8Array) => ((q[q.length - 1] = 3), q)],
  ])('questionMatches refuses %s', (_w, mutate) => {
    const { query, answer: buf } = fixture('www-a');
    const question = mutate(query.slice(12, query.length - 11));
    expect(questionMatches(buf, question)).toBe(false);
  });
});

/** Sets the rdlength of the record whose rdata is `rdHex` to 5 and appends a byte. */
function fixAt(b: Uint8Array, rdHex: string, _what: string): Uint8Array {
  const h = Buffer.from(b).toString('hex');
  const i = h.indexOf('0004' + rdHex);
  return Uint8Array.from(Buffer.from(h.slice(0, i) + '0005' + rdHex + '00' + h.slice(i + 4 + rdHex.length), 'hex'));
}
