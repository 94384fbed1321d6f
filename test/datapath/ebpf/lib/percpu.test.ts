import { describe, expect, test } from 'bun:test';
import { BpfError, type StableBuf } from '../../../../src/datapath/ebpf/bpf-syscall.ts';
import { PerCpuArray, possibleCpuCount } from '../../../../src/datapath/ebpf/lib/percpu.ts';

const NCPU = 3;
const SLOT = 16;

/**
 * A PERCPU_ARRAY of `size` indexes as bpf(2) serves it: lookup of one index, or batches of at
 * most `batchMax` (the kernel may return fewer than asked), the position in an 8-byte token.
 */
function fakeArray(size: number, opts: { batch?: 'ok' | 'unsupported' | 'denied'; batchMax?: number } = {}) {
  const vals = Array.from({ length: size }, (_, i) => {
    const v = new Uint8Array(NCPU * SLOT);
    const dv = new DataView(v.buffer);
    for (let c = 0; c < NCPU; c++) dv.setBigUint64(c * SLOT, BigInt(i * 10 + c), true);
    return v;
  });
  const calls = { lookup: 0, batch: 0 };
  const bpf = {
    lookup: (_fd: number, key: StableBuf, value: StableBuf): boolean => {
      calls.lookup++;
      const i = new DataView(key.buf.buffer, key.buf.byteOffset).getUint32(0, true);
      if (i >= size) return false;
      value.buf.set(vals[i]!);
      return true;
    },
    lookupBatch: (_fd: number, inB: StableBuf | null, outB: StableBuf, keys: StableBuf, values: StableBuf, count: number) => {
      calls.batch++;
      if (opts.batch === 'unsupported') throw new BpfError('kernel', 'BPF_MAP_LOOKUP_BATCH: EINVAL', 22);
      if (opts.batch === 'denied') throw new BpfError('permission', 'BPF_MAP_LOOKUP_BATCH: EPERM (needs root / CAP_BPF)', 1);
      const from = inB ? new DataView(inB.buf.buffer, inB.buf.byteOffset).getUint32(0, true) : 0;
      const n = Math.min(count, opts.batchMax ?? count, size - from);
      const kd = new DataView(keys.buf.buffer, keys.buf.byteOffset);
      for (let j = 0; j < n; j++) {
        kd.setUint32(j * 4, from + j, true);
        values.buf.set(vals[from + j]!, j * NCPU * SLOT);
      }
      new DataView(outB.buf.buffer, outB.buf.byteOffset).setUint32(0, from + n, true);
      return { count: n, done: from + n >= size }; // Bpf.lookupBatch: the kernel's final ENOENT becomes done
    },
  };
  return { bpf, calls };
}

const firstCpu = (v: Uint8Array) => new DataView(v.buffer, v.byteOffset).getBigUint64(0, true);

describe('datapath/ebpf/lib/percpu', () => {
  test('reads every index in batches when the kernel returns fewer than asked', () => {
    const f = fakeArray(10, { batchMax: 4 });
    const a = new PerCpuArray(f.bpf, 3, SLOT, NCPU);
    const got = a.entries(10);
    expect(got.map((e) => e.index)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(got.map((e) => firstCpu(e.value))).toEqual([0n, 10n, 20n, 30n, 40n, 50n, 60n, 70n, 80n, 90n]);
    expect(got[2]!.value.length).toBe(NCPU * SLOT);
    expect(f.calls).toEqual({ lookup: 0, batch: 3 });
  });

  test('falls back to one lookup per index when the kernel has no batch lookup', () => {
    const f = fakeArray(5, { batch: 'unsupported' });
    const got = new PerCpuArray(f.bpf, 3, SLOT, NCPU).entries(5);
    expect(got.map((e) => [e.index, firstCpu(e.value)])).toEqual([[0, 0n], [1, 10n], [2, 20n], [3, 30n], [4, 40n]]);
    expect(f.calls.lookup).toBe(5);
  });

  test('rethrows a permission error instead of falling back', () => {
    const f = fakeArray(5, { batch: 'denied' });
    expect(() => new PerCpuArray(f.bpf, 3, SLOT, NCPU).entries(5)).toThrow(/EPERM/);
  });

  test('returns a copy of one index, and undefined past the end', () => {
    const f = fakeArray(4);
    const a = new PerCpuArray(f.bpf, 3, SLOT, NCPU);
    const v = a.get(2)!;
    a.get(3);
    expect(firstCpu(v)).toBe(20n);
    expect(a.get(4)).toBeUndefined();
  });

  test('counts the possible CPUs of this machine', () => {
    expect(possibleCpuCount()).toBeGreaterThanOrEqual(1);
  });
});
