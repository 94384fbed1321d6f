/**
 * Property test: ≥ 100,000 random mutations of real packets (knot captures and client
 * queries) go through every reader and writer of the hot path. Each must either succeed with
 * a well-formed result or fail with a `WireError` — never another exception, never a hang —
 * and whatever we would send to a client must itself parse. The longer fuzz target is
 * bench/dns-fuzz.ts.
 */
import { describe, expect, test } from 'bun:test';
import { parseQuery } from '../../src/dns/query.ts';
import { clientQuery } from '../fixtures/dns/capture.ts';
import { Rng } from './mutate.ts';
import { SEEDS, checkOne } from './mutation-check.ts';

describe('dns/mutation', () => {
  test('survives 100,000 mutated queries and answers when fed real packets', () => {
    const rng = new Rng(0xd15ea5e);
    const failures: string[] = [];
    for (let i = 0; i < 100_000; i++) {
      const v = checkOne(rng);
      if (v) failures.push(`#${i}: ${v}`);
      if (failures.length > 5) break;
    }
    expect(failures).toEqual([]);
  });

  test('the seeds are real and scan cleanly when not mutated', () => {
    expect(SEEDS.length).toBeGreaterThanOrEqual(10);
    for (const s of SEEDS) {
      const q = parseQuery(clientQuery(s.c.name, s.c.type, s.c.dnssec));
      expect(q.kind).toBe('ok');
    }
  });
});
