/** The InterceptStore contract on the memory fake and on the pinned eBPF maps (root), plus a pool restart on the real maps. */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import type { EbpfDatapath } from '../../src/datapath/ebpf/index.ts';
import { EbpfInterceptStore, clockOffset } from '../../src/intercept/ebpf-store.ts';
import { InterceptPool } from '../../src/intercept/pool.ts';
import { MemoryInterceptStore } from '../../src/intercept/store.ts';
import { realClock } from '../../src/util/clock.ts';
import { scratchPinRoot, wipe } from '../datapath/ebpf/helpers.ts';
import { icptSkipReason, loadNat } from './helpers.ts';
import { storeContract } from './store-contract.ts';

describe('intercept/store memory', () => {
  const store = new MemoryInterceptStore();
  storeContract({ store: () => store, now: () => realClock.monoMs() }, false);
});

const skip = icptSkipReason();
if (skip) console.log(`intercept/store ebpf: skipping: ${skip}`);

describe('intercept/store ebpf', () => {
  const pinRoot = scratchPinRoot('icpt-store');
  let nat: ReturnType<typeof loadNat>;
  beforeAll(async () => {
    if (skip) return;
    await wipe(pinRoot);
    nat = loadNat(pinRoot, realClock);
  });
  afterAll(async () => {
    if (skip) return;
    nat.store.close();
    (nat.dp as EbpfDatapath).close();
    await wipe(pinRoot);
  });

  storeContract({ store: () => nat.store, now: () => realClock.monoMs() }, !!skip);

  (skip ? test.skip : test)('keeps every mapping across a restart when the pool is rebuilt from the pinned maps', () => {
    const opts = { pools: ['100.64.0.0/29', 'fd00:fe80::3090/124'], clock: realClock, minHoldMs: 60_000, idleMs: 300_000 };
    const before = InterceptPool.open({ ...opts, store: nat.store });
    const m = before.allocate(1, ['192.0.2.1', 'fd00:aa91::1001'], 60, ['www.corp.example']);
    // a new process: fresh store object on the same pins, fresh pool
    const store2 = new EbpfInterceptStore(nat.bpf, nat.paths, clockOffset(nat.bpf, realClock));
    try {
      const after = InterceptPool.open({ ...opts, store: store2 });
      expect(after.lookup(1, '192.0.2.1')).toBe(m.get('192.0.2.1')!);
      expect(after.lookup(1, 'fd00:aa91::1001')).toBe('fd00:fe80::3090');
      const row = after.list().find((r) => r.real === '192.0.2.1')!;
      expect(Math.abs(row.expiresMs - before.list().find((r) => r.real === '192.0.2.1')!.expiresMs)).toBeLessThanOrEqual(2);
      const fresh = after.allocate(1, ['192.0.2.2'], 60).get('192.0.2.2')!;
      expect(fresh).not.toBe(m.get('192.0.2.1')!);
    } finally {
      store2.close();
    }
  });
});
