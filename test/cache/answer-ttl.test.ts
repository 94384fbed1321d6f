import { describe, expect, test } from 'bun:test';
import { scanAnswer } from '../../src/dns/answer-scan.ts';
import { AnswerCache } from '../../src/cache/answer-cache.ts';
import { agedCopy, agedScan, cappedScan, prepare } from '../../src/cache/answer-ttl.ts';
import { FakeClock } from '../../src/util/clock.ts';
import { fixture, FIXTURE_NAMES, CAPTURES } from '../dns/fixtures.ts';
import { hex, query, unhex } from './answers.ts';

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

  test.each(FIXTURE_NAMES.map((f) => [f]))('gives the scan a fresh scan of the aged bytes gives when %s is aged', (file) => {
    const cap = CAPTURES.find((c) => c.file === file)!;
    const q = query(cap.name, { type: cap.type, dnssec: cap.dnssec });
    const { answer: bytes } = fixture(file);
    const scan = scanAnswer(bytes, q.question.length, q.qname);
    for (const maxTtlS of [86400, 100]) {
      const prep = prepare(bytes, scan, q.question.length, q.qtype, { maxTtlS, maxNegTtlS: 3600 });
      if (!prep.ok) throw new Error(`${file} not cacheable: ${prep.reason}`);
      const stored = cappedScan(scan, maxTtlS);
      for (const [elapsed, stale] of [[0, null], [1, null], [99, null], [299, null], [301, null], [5000, 30]] as const) {
        const aged = agedCopy(prep.stored, scan.end, elapsed, stale, q.question);
        expect(agedScan(stored, elapsed, stale)).toEqual(scanAnswer(aged, q.question.length, q.qname));
      }
    }
  });
});
