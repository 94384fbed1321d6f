import { describe, expect, test } from 'bun:test';
import { scanAnswer, type AnswerScan } from '../../src/dns/answer-scan.ts';
import dnsPacket from 'dns-packet';
import { AnswerCache, CachedHit, type CachedAnswer } from '../../src/cache/answer-cache.ts';
import { agedCopy, prepare, relayAged } from '../../src/cache/answer-ttl.ts';
import { parseQuery, type ParsedQuery } from '../../src/dns/query.ts';
import { relayAnswer } from '../../src/dns/response.ts';
import type { Forwarded } from '../../src/proxy/forwarder.ts';
import { clientQuery } from '../fixtures/dns/capture.ts';
import { FakeClock } from '../../src/util/clock.ts';
import { fixture, FIXTURE_NAMES, CAPTURES } from '../dns/fixtures.ts';
import { a, aaaa, answer, hex, query, soa, unhex } from './answers.ts';

/**
 * `a.test A`: a CNAME to b.test and two A records in the answer section, an NS in the
 * authority section, A and AAAA glue and an OPT in the additional section, compressed as a
 * server writes it. TTLs 300, 60, 60, 86400, 3600, 7200.
 */
const GOLDEN_IN = unhex(`
  1234 8180 0001 0003 0001 0003                         # header: QR RD RA, 1/3/1/3
  0161 0474657374 00 0001 0001                          # question a.test A IN (@12)
  c00c 0005 0001 0000012c 0004 0162c00e                 # a.test CNAME b.test, TTL 300 (@24)
  c024 0001 0001 0000003c 0004 c0000201                 # b.test A 192.0.2.1, TTL 60 (@40)
  c024 0001 0001 0000003c 0004 c0000202                 # b.test A 192.0.2.2, TTL 60 (@56)
  c00e 0002 0001 00015180 0005 026e73c00e               # test NS ns.test, TTL 86400 (@72)
  c054 0001 0001 00000e10 0004 c0000235                 # ns.test A 192.0.2.53, TTL 3600 (@89)
  c054 001c 0001 00001c20 0010 20010db8000000000000000000000053  # ns.test AAAA, TTL 7200 (@105)
  00 0029 04d0 00000000 0000                            # OPT (@133)
`);

/** The same after 25 s in the cache, asked as `A.TEST`: every TTL 25 lower, the OPT untouched. */
const GOLDEN_AFTER_25S = unhex(`
  1234 8180 0001 0003 0001 0003
  0141 0454455354 00 0001 0001                          # the client's question, its case
  c00c 0005 0001 00000113 0004 0162c00e                 # 275
  c024 0001 0001 00000023 0004 c0000201                 # 35
  c024 0001 0001 00000023 0004 c0000202                 # 35
  c00e 0002 0001 00015167 0005 026e73c00e               # 86375
  c054 0001 0001 00000df7 0004 c0000235                 # 3575
  c054 001c 0001 00001c07 0010 20010db8000000000000000000000053  # 7175
  00 0029 04d0 00000000 0000                            # OPT as it was
`);

/** Served stale (RFC 8767): every TTL 30, the OPT untouched. */
const GOLDEN_STALE = unhex(`
  1234 8180 0001 0003 0001 0003
  0161 0474657374 00 0001 0001
  c00c 0005 0001 0000001e 0004 0162c00e
  c024 0001 0001 0000001e 0004 c0000201
  c024 0001 0001 0000001e 0004 c0000202
  c00e 0002 0001 0000001e 0005 026e73c00e
  c054 0001 0001 0000001e 0004 c0000235
  c054 001c 0001 0000001e 0010 20010db8000000000000000000000053
  00 0029 04d0 00000000 0000
`);

function golden() {
  const q = query('a.test');
  const scan = scanAnswer(GOLDEN_IN, q.question.length, q.qname);
  return { q, forwarded: { bytes: GOLDEN_IN, scan, via: 'udp' as const } };
}

describe('cache/answer-ttl', () => {
  test('lowers every TTL in all sections but the OPT when a hit comes 25 s after the insert', () => {
    const clock = new FakeClock();
    const cache = new AnswerCache({ clock });
    const { q, forwarded } = golden();
    expect(cache.insert(q, 'default', forwarded)).toBe(true);
    clock.advance(25_400);
    const hit = cache.lookup(query('A.TEST'), 'default');
    expect(hex(hit!.bytes)).toBe(hex(GOLDEN_AFTER_25S));
  });

  test('hands out what a registration needs with the remaining TTL when an entry is hit', () => {
    const clock = new FakeClock();
    const cache = new AnswerCache({ clock });
    const { q, forwarded } = golden();
    cache.insert(q, 'default', forwarded);
    clock.advance(25_000);
    const hit = cache.lookup(query('a.test'), 'default')!;
    expect(hit.cache).toBe('hit');
    // Exactly the fields the pipeline's decide and register read.
    expect(hit.scan.chain).toEqual(['a.test', 'b.test']);
    expect(hit.scan.addrs).toEqual(['192.0.2.1', '192.0.2.2']);
    expect(hit.scan.minTtl).toBe(35);
    expect(hit.remainingS).toBe(35);
    expect(hit.lifetimeS).toBe(60);
  });

  test('sets every TTL to 30 but leaves the OPT when the answer is served stale', () => {
    const { q, forwarded } = golden();
    const prep = prepare(forwarded.bytes, forwarded.scan, q.question.length, q.qtype, { maxTtlS: 86400, maxNegTtlS: 3600 });
    if (!prep.ok) throw new Error(prep.reason);
    expect(hex(agedCopy(prep.stored, forwarded.scan.end, 500, 30, q.question))).toBe(hex(GOLDEN_STALE));
  });

  test('never lowers a TTL below 0 when the record outlived its own TTL', () => {
    const { q, forwarded } = golden();
    const prep = prepare(forwarded.bytes, forwarded.scan, q.question.length, q.qtype, { maxTtlS: 86400, maxNegTtlS: 3600 });
    if (!prep.ok) throw new Error(prep.reason);
    expect(prep.lifetimeS).toBe(60);
    const out = agedCopy(prep.stored, forwarded.scan.end, 400, null, q.question);
    // 300 - 400 and 60 - 400 are 0; 86400 - 400 = 86000.
    expect(hex(out.subarray(24 + 6, 24 + 10))).toBe('00000000');
    expect(hex(out.subarray(40 + 6, 40 + 10))).toBe('00000000');
    expect(hex(out.subarray(72 + 6, 72 + 10))).toBe((86000).toString(16).padStart(8, '0'));
  });

  test.each(FIXTURE_NAMES.map((f) => [f]))('gives a hit the scan a fresh scan of its aged bytes gives when %s is hit later or stale', (file) => {
    const cap = CAPTURES.find((c) => c.file === file)!;
    const q = query(cap.name, { type: cap.type, dnssec: cap.dnssec });
    const { answer: bytes } = fixture(file);
    // Every field of AnswerScan, so one added later (a TTL, say) that a hit does not age fails here.
    const expectScanOf = (hit: CachedAnswer) => {
      const fresh = scanAnswer(hit.bytes, q.question.length, q.qname);
      for (const k of Object.keys(fresh) as Array<keyof AnswerScan>) expect([k, hit.scan[k]]).toEqual([k, fresh[k]]);
    };
    for (const maxTtlS of [86400, 100]) {
      const clock = new FakeClock();
      const cache = new AnswerCache({ clock, maxTtlS, staleMaxS: 1_000_000 });
      if (!cache.insert(q, 'default', { bytes, scan: scanAnswer(bytes, q.question.length, q.qname), via: 'udp' })) throw new Error(`${file} not cacheable`);
      const lifetimeS = cache.lookup(q, 'default')!.lifetimeS;
      let at = 0;
      for (const elapsed of [0, 1, 99, lifetimeS - 1].filter((e) => e < lifetimeS)) {
        clock.advance((elapsed - at) * 1000);
        at = elapsed;
        const hit = cache.lookup(q, 'default')!;
        expect(hit.cache).toBe('hit');
        expectScanOf(hit);
      }
      clock.advance((lifetimeS + 5000 - at) * 1000);
      const stale = cache.stale(q, 'default')!;
      expect(stale.cache).toBe('stale');
      expectScanOf(stale);
    }
  });
});

/**
 * A hit's client copy is made in one copy (`relayAged`, `CachedHit.relay`); the oracle is the
 * two-copy way it was made before: `relayAnswer` of the aged copy (`hit.bytes`).
 */
describe('cache/answer-ttl relayAged', () => {
  /** The client's query without an OPT (a client that does not speak EDNS). */
  function plainQuery(name: string): ParsedQuery {
    const withOpt = clientQuery(name, 1, false, 0x5151);
    const bytes = withOpt.slice(0, withOpt.length - 11);
    bytes[11] = 0;
    const p = parseQuery(bytes);
    if (p.kind !== 'ok') throw new Error('bad query');
    return p.query;
  }
  const limits: Array<number | null> = [null, 1232, 512, 60];
  /** Every (elapsed, stale, client, limit) case: relay equals relayAnswer of the aged copy. */
  function expectSameAsTwoCopies(q: ParsedQuery, forwarded: Forwarded, asked: ParsedQuery[]) {
    const clock = new FakeClock();
    const cache = new AnswerCache({ clock, staleMaxS: 86400 * 10 });
    expect(cache.insert(q, 'default', forwarded)).toBe(true);
    let cases = 0;
    for (const advance of [0, 1_000, 25_400, 59_999, 400_000]) {
      if (advance) clock.advance(advance);
      for (const client of asked) {
        const hit = cache.lookup(client, 'default') ?? cache.stale(client, 'default');
        expect(hit).toBeInstanceOf(CachedHit);
        for (const limit of limits) {
          const one = (hit as CachedHit).relay(client, limit);
          expect(hex(one)).toBe(hex(relayAnswer(hit!.bytes, hit!.scan, client, limit)));
          cases++;
        }
      }
    }
    return cases;
  }

  test('equals relayAnswer of the aged copy for compressed records in three sections, the OPT, TTLs run down to 0, stale, other case, no EDNS and UDP limits', () => {
    const { q, forwarded } = golden();
    const n = expectSameAsTwoCopies(q, forwarded, [query('a.test'), query('A.TEST', { id: 7 }), plainQuery('a.TeSt')]);
    expect(n).toBe(5 * 3 * limits.length);
  });

  test('equals relayAnswer of the aged copy for a negative answer (NXDOMAIN, SOA) and an answer without an OPT', () => {
    const nq = query('gone.example');
    const nx = answer(nq, { rcode: 'NXDOMAIN', authorities: [soa('example', 900, 300)] });
    expectSameAsTwoCopies(nq, nx, [query('GONE.example'), plainQuery('gone.example')]);
    const pq = query('plain.example');
    const plain = answer(pq, { answers: [a('plain.example', 120, '192.0.2.7'), a('plain.example', 60, '192.0.2.8')], noOpt: true });
    expectSameAsTwoCopies(pq, plain, [query('plain.example'), plainQuery('PLAIN.example')]);
  });

  test('equals relayAnswer of the aged copy when the upstream OPT carries an Extended DNS Error and a record follows the OPT', () => {
    const q = query('ede.example');
    const body = dnsPacket.encode({
      type: 'response',
      id: 0,
      flags: 0,
      questions: [],
      answers: [a('ede.example', 300, '192.0.2.9'), aaaa('ede.example', 200, '2001:db8::9')],
      additionals: [
        { type: 'OPT', name: '.', udpPayloadSize: 1232, extendedRcode: 0, ednsVersion: 0, flags: 0, options: [{ code: 15, data: Buffer.from([0, 3, 0x68, 0x69]) }] } as unknown as dnsPacket.Answer,
        a('ns.ede.example', 100, '192.0.2.53'),
      ],
    });
    const bytes = new Uint8Array(12 + q.question.length + body.length - 12);
    bytes.set([0x12, 0x34, 0x81, 0x80, 0, 1], 0);
    bytes.set(body.subarray(6, 12), 6);
    bytes.set(q.question, 12);
    bytes.set(body.subarray(12), 12 + q.question.length);
    const scan = scanAnswer(bytes, q.question.length, q.qname);
    expect(scan.opt!.index).toBe(0); // the OPT is the first additional, the glue after it
    expectSameAsTwoCopies(q, { bytes, scan, via: 'udp' }, [query('ede.example'), query('EDE.example', { id: 9 })]);
  });

  test('writes no TTL outside the relayed part when an offset of the stored table points past the OPT or the end', () => {
    const { q, forwarded } = golden();
    const prep = prepare(forwarded.bytes, forwarded.scan, q.question.length, q.qtype, { maxTtlS: 86400, maxNegTtlS: 3600 });
    if (!prep.ok) throw new Error(prep.reason);
    // Two bogus offsets appended: one inside the OPT (133), one past the answer's end.
    const stored = new Uint8Array(prep.stored.length + 4);
    stored.set(prep.stored);
    stored.set([0, 134, 0xff, 0xf0], prep.stored.length);
    const client = query('a.test');
    const out = relayAged(stored, forwarded.scan, 10, null, client, null);
    expect(hex(out)).toBe(hex(relayAnswer(agedCopy(prep.stored, forwarded.scan.end, 10, null, client.question), forwarded.scan, client, null)));
  });

  test('makes the aged copy only when something reads the bytes of a hit', () => {
    const clock = new FakeClock();
    const cache = new AnswerCache({ clock });
    const { q, forwarded } = golden();
    cache.insert(q, 'default', forwarded);
    clock.advance(25_400);
    const hit = cache.lookup(query('A.TEST'), 'default') as CachedHit;
    const relayed = hit.relay(query('A.TEST'), null);
    expect(hex(hit.bytes)).toBe(hex(GOLDEN_AFTER_25S));
    expect(hit.bytes).toBe(hit.bytes); // made once
    // a spread copy (confine, intercept) is a plain Forwarded with the aged bytes
    const copy = { ...hit, bytes: hit.bytes };
    expect(copy).not.toBeInstanceOf(CachedHit);
    expect(relayed.length).toBeGreaterThan(0);
  });
});
