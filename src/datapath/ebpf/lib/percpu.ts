/**
 * Reading a BPF_MAP_TYPE_PERCPU_ARRAY (the kernel counters): a value holds one slot per
 * POSSIBLE CPU (not online), each `slotSize` bytes, 8-byte aligned; the caller sums them with
 * the layout it knows. Reads go through preallocated buffers; never on the DNS path (metrics).
 */
import { readFileSync } from 'node:fs';
import { type Bpf, BpfError, possibleCpus, stable, type StableBuf } from '../bpf-syscall.ts';

/** The number of possible CPUs, as PERCPU map values are sized. */
export function possibleCpuCount(path = '/sys/devices/system/cpu/possible'): number {
  return possibleCpus(readFileSync(path, 'utf8'));
}

/** One index of the array and its per-CPU values (ncpu × slotSize bytes). */
export interface PerCpuEntry {
  index: number;
  value: Uint8Array;
}

export class PerCpuArray {
  private readonly valueSize: number;
  private readonly k = stable(4);
  private readonly v: StableBuf;

  constructor(
    private readonly bpf: Pick<Bpf, 'lookup' | 'lookupBatch'>,
    private readonly fd: number,
    slotSize: number,
    readonly ncpu: number = possibleCpuCount(),
  ) {
    this.valueSize = slotSize * ncpu;
    this.v = stable(this.valueSize);
  }

  /** The per-CPU values at `index` (a copy), or undefined when the index is out of range. */
  get(index: number): Uint8Array | undefined {
    new DataView(this.k.buf.buffer).setUint32(0, index, true);
    return this.bpf.lookup(this.fd, this.k, this.v) ? this.v.buf.slice() : undefined;
  }

  /**
   * Indexes 0..n-1 with their values: one batch lookup where the kernel has it (5.6+), else
   * one lookup per index. A permission error is rethrown, not hidden by the fallback.
   */
  entries(n: number): PerCpuEntry[] {
    const vs = this.valueSize;
    const keys = stable(4 * n);
    const vals = stable(vs * n);
    let got = 0;
    try {
      const inB = stable(8);
      const outB = stable(8);
      let first = true;
      while (got < n) {
        const r = this.bpf.lookupBatch(
          this.fd,
          first ? null : inB,
          outB,
          { buf: keys.buf.subarray(got * 4), addr: keys.addr + got * 4 },
          { buf: vals.buf.subarray(got * vs), addr: vals.addr + got * vs },
          n - got,
        );
        got += r.count;
        if (r.done || r.count === 0) break;
        inB.buf.set(outB.buf);
        first = false;
      }
    } catch (err) {
      if (!(err instanceof BpfError) || err.code === 'permission') throw err;
      const out: PerCpuEntry[] = [];
      for (let i = 0; i < n; i++) {
        const value = this.get(i);
        if (value) out.push({ index: i, value });
      }
      return out;
    }
    const dv = new DataView(keys.buf.buffer);
    const out: PerCpuEntry[] = [];
    for (let i = 0; i < got; i++) out.push({ index: dv.getUint32(i * 4, true), value: vals.buf.slice(i * vs, (i + 1) * vs) });
    return out;
  }
}
