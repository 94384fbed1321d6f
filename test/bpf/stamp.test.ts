/**
 * When the tc programs move `last_seen` (root only, BPF_PROG_RUN): a stamp is rewritten only when
 * it is more than DNSSEAL_STAMP_GRANULARITY_NS (100 ms) old, never moved backwards, and the value
 * written is CLOCK_MONOTONIC(_COARSE) now — read through the per-CPU, per-jiffy clock cache
 * (bpf/lib/lookup.h dnsseal_now_coarse), so at most two ticks behind CLOCK_MONOTONIC.
 * Consumers: registry GC (idle of minutes) and `dnsseal list` (idle seconds).
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { BPF_EXIST, Bpf, stable } from '../../src/datapath/ebpf/bpf-syscall.ts';
import type { EbpfDatapath } from '../../src/datapath/ebpf/index.ts';
import { keyAddrOf } from '../../src/datapath/ebpf/maps.ts';
import { PinPaths, PROGS } from '../../src/datapath/ebpf/pins.ts';
import * as L from '../../src/datapath/layout.ts';
import { channelMark } from '../../src/policy/types.ts';
import { makeDp, privSkipReason, scratchPinRoot, wipe } from '../datapath/ebpf/helpers.ts';
import { frame, skbCtx, type PacketSpec } from './packets.ts';

const MS = 1_000_000n;
/** Coarse clock lag (≤ 1 tick) + cache lag (≤ 1 tick); HZ=100 gives 20 ms, with room to spare. */
const SLACK = 50n * MS;
const GRANULARITY = 100n * MS;

const skip = privSkipReason();
if (skip) console.log(`bpf stamp: skipping: ${skip}`);
const ROOT = scratchPinRoot('stamp');
let dp: EbpfDatapath;
let bpf: Bpf;
const fd: Record<string, number> = {};

interface Case {
  prog: 'marker' | 'guard';
  addr: string;
  pkt: PacketSpec;
}
const CASES: [string, Case][] = [
  ['marker v4', { prog: 'marker', addr: '192.0.2.41', pkt: { src: '10.9.9.9', dst: '192.0.2.41', l4: 'tcp' } }],
  ['marker v6', { prog: 'marker', addr: '2001:db8::41', pkt: { src: 'fd00:9::9', dst: '2001:db8::41', l4: 'udp' } }],
  ['guard v4 (drop)', { prog: 'guard', addr: '192.0.2.42', pkt: { src: '10.9.9.9', dst: '192.0.2.42', l4: 'tcp' } }],
  ['guard v4 esp (pass)', { prog: 'guard', addr: '192.0.2.43', pkt: { src: '10.9.9.9', dst: '192.0.2.43', l4: 'esp' } }],
];

function rawKey(addr: string) {
  const a = keyAddrOf(addr).addr;
  const k = stable(L.destKeySize(a.family));
  L.encodeDestKey({ group: 0, addr: a }, k.buf);
  return { k, fd: a.family === L.FAMILY_V4 ? dp.maps.fds.dests4 : dp.maps.fds.dests6 };
}

function setLastSeen(addr: string, ns: bigint): void {
  const { k, fd } = rawKey(addr);
  const v = stable(L.DestValLayout.size);
  expect(bpf.lookup(fd, k, v)).toBe(true);
  L.encodeDestVal({ ...L.decodeDestVal(v.buf), lastSeenNs: ns }, v.buf);
  bpf.update(fd, k, v, BPF_EXIST);
}

function lastSeen(addr: string): bigint {
  return dp.maps.lastSeenNs({ group: 0, addr }) ?? 0n;
}

const now = () => bpf.lib.monotonicNs();
const run = (c: Case, repeat = 1) => bpf.testRun(fd[c.prog]!, frame(c.pkt), { repeat, ctx: skbCtx() });

(skip ? describe.skip : describe)('bpf/lib/lookup dnsseal_stamp (BPF_PROG_RUN)', () => {
  beforeAll(async () => {
    await wipe(ROOT);
    dp = makeDp(ROOT);
    bpf = new Bpf();
    const paths = new PinPaths(ROOT);
    fd.guard = bpf.objGet(paths.prog(PROGS.wanOut));
    fd.marker = bpf.objGet(paths.prog(PROGS.lanIn));
    for (const [, c] of CASES) dp.upsert({ group: 0, addr: c.addr }, { channelId: 1, mark: channelMark(1), flags: 0 });
  });

  afterAll(async () => {
    for (const f of Object.values(fd)) bpf.close(f);
    dp?.close();
    await wipe(ROOT);
  });

  test.each(CASES)('%s: rewrites last_seen with the monotonic clock when it is older than 100 ms', (_n, c) => {
    setLastSeen(c.addr, now() - 1000n * MS);
    const t0 = now();
    run(c);
    const t1 = now();
    const seen = lastSeen(c.addr);
    expect(seen).toBeGreaterThanOrEqual(t0 - SLACK);
    expect(seen).toBeLessThanOrEqual(t1);
  });

  test.each(CASES)('%s: leaves last_seen alone when it is younger than 100 ms', (_n, c) => {
    const recent = now() - 20n * MS;
    setLastSeen(c.addr, recent);
    run(c, 1000);
    expect(lastSeen(c.addr)).toBe(recent);
  });

  test.each(CASES)('%s: never moves last_seen backwards when it is ahead of the clock', (_n, c) => {
    const ahead = now() + 60_000n * MS;
    setLastSeen(c.addr, ahead);
    run(c, 1000);
    expect(lastSeen(c.addr)).toBe(ahead);
  });

  test.each(CASES)('%s: follows the clock across ticks when packets keep coming', async (_n, c) => {
    setLastSeen(c.addr, 0n);
    run(c, 100);
    const first = lastSeen(c.addr);
    expect(first).toBeGreaterThan(0n);
    await Bun.sleep(250);
    const t0 = now();
    run(c, 100);
    const second = lastSeen(c.addr);
    expect(second - first).toBeGreaterThan(GRANULARITY);
    expect(second).toBeGreaterThanOrEqual(t0 - SLACK);
    expect(second).toBeLessThanOrEqual(now());
  });
});
