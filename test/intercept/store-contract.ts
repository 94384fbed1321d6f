/** The shared case suite every InterceptStore backend runs (the fake must not drift from the maps). */
import { expect, test } from 'bun:test';
import type { InterceptStore } from '../../src/intercept/store.ts';

export interface StoreHarness {
  store: () => InterceptStore;
  now: () => number;
}

export function storeContract(h: StoreHarness | undefined, skip: boolean): void {
  const t = skip ? test.skip : test;
  const sorted = (s: InterceptStore) => s.list().sort((a, b) => a.intercept.localeCompare(b.intercept));

  t('lists a mapping with its expiry and no last_seen when it was just put', () => {
    const s = h!.store();
    const exp = h!.now() + 60_000;
    s.put({ group: 4, intercept: '100.64.1.1', real: '192.0.2.1', expiresMs: exp });
    s.put({ group: 4, intercept: 'fd00:fe80::3090', real: 'fd00:aa91::1001', expiresMs: exp });
    const rows = sorted(s);
    expect(rows.map((r) => [r.group, r.intercept, r.real])).toEqual([
      [4, '100.64.1.1', '192.0.2.1'],
      [4, 'fd00:fe80::3090', 'fd00:aa91::1001'],
    ]);
    for (const r of rows) {
      expect(Math.abs(r.expiresMs - exp)).toBeLessThanOrEqual(1);
      expect(r.lastSeenMs).toBeUndefined();
      expect('half' in r && r.half !== undefined).toBe(false);
    }
    expect(s.lastSeen(4, '100.64.1.1')).toBeUndefined();
  });

  t('moves the expiry when the same mapping is put again', () => {
    const s = h!.store();
    const exp = h!.now() + 120_000;
    s.put({ group: 4, intercept: '100.64.1.1', real: '192.0.2.1', expiresMs: exp });
    expect(Math.abs(s.list().find((r) => r.intercept === '100.64.1.1')!.expiresMs - exp)).toBeLessThanOrEqual(1);
  });

  t('removes both directions and ignores absent ones when a mapping is removed', () => {
    const s = h!.store();
    s.remove({ group: 4, intercept: '100.64.1.1', real: '192.0.2.1' });
    s.remove({ group: 4, intercept: '100.64.1.1', real: '192.0.2.1' });
    s.remove({ group: 4, intercept: 'fd00:fe80::3090', real: 'fd00:aa91::1001' });
    expect(s.list()).toEqual([]);
  });

  t('keeps groups apart when two groups map the same real address', () => {
    const s = h!.store();
    const exp = h!.now() + 60_000;
    s.put({ group: 1, intercept: '100.64.1.2', real: '192.0.2.9', expiresMs: exp });
    s.put({ group: 2, intercept: '100.64.1.3', real: '192.0.2.9', expiresMs: exp });
    expect(sorted(s).map((r) => [r.group, r.intercept])).toEqual([
      [1, '100.64.1.2'],
      [2, '100.64.1.3'],
    ]);
    s.remove({ group: 1, intercept: '100.64.1.2', real: '192.0.2.9' });
    expect(s.list().map((r) => r.group)).toEqual([2]);
    s.remove({ group: 2, intercept: '100.64.1.3', real: '192.0.2.9' });
  });
}
