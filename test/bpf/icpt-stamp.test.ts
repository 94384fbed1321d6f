/**
 * When the intercept NAT (build/intercept.bpf.o) moves a mapping's `last_seen` (root only,
 * BPF_PROG_RUN): the same rule as dnsseal_stamp (test/bpf/stamp.test.ts) — rewritten only when
 * more than 100 ms old, never moved backwards, CLOCK_MONOTONIC(_COARSE) now from the per-CPU clock
 * cache, so at most two ticks behind CLOCK_MONOTONIC. Consumer: the intercept pool reuses an
 * address only after `idle` (seconds) without a stamp; `dnsseal list` shows it.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { BPF_EXIST, type Bpf, stable } from '../../src/datapath/ebpf/bpf-syscall.ts';
import type { EbpfDatapath } from '../../src/datapath/ebpf/index.ts';
import type { PinPaths } from '../../src/datapath/ebpf/pins.ts';
import { DEST_F_INTERCEPT, DestKeyLayout, IcptValLayout } from '../../src/datapath/layout.ts';
import { parseAddr } from '../../src/intercept/address.ts';
import { ICPT_PROGS, icptProgPath } from '../../src/intercept/ebpf-loader.ts';
import { ICPT_MAPS, decodeIcptVal, encodeIcptKey, encodeIcptVal, type EbpfInterceptStore } from '../../src/intercept/ebpf-store.ts';
import { channelMark } from '../../src/policy/types.ts';
import { realClock } from '../../src/util/clock.ts';
import { scratchPinRoot, wipe } from '../datapath/ebpf/helpers.ts';
import { icptSkipReason, loadNat } from '../intercept/helpers.ts';
import { eth, ipPacket } from '../intercept/packets.ts';

const MS = 1_000_000n;
const SLACK = 50n * MS;
const GROUP = 3;
const C4 = '10.20.0.5';
const I4 = '100.64.0.21';
const R4 = '192.0.2.21';

const skip = icptSkipReason();
if (skip) console.log(`bpf intercept stamp: skipping: ${skip}`);

interface Case {
  prog: 'in' | 'out';
  /** The map and key the program stamps: fwd (group, intercept) on ingress, rev (group, real) on egress. */
  map: 'fwd' | 'rev';
  key: string;
  frame: Uint8Array;
}
const CASES: [string, Case][] = [
  ['nat_in (client → intercept)', { prog: 'in', map: 'fwd', key: I4, frame: eth(ipPacket({ src: C4, dst: I4, proto: 'tcp' })) }],
  ['nat_out (real → client)', { prog: 'out', map: 'rev', key: R4, frame: eth(ipPacket({ src: R4, dst: C4, proto: 'tcp', sport: 80, dport: 40000 })) }],
];

(skip ? describe.skip : describe)('bpf/lib/intercept_nat dnsseal_icpt_stamp (BPF_PROG_RUN)', () => {
  const pinRoot = scratchPinRoot('icpt-stamp');
  let dp: EbpfDatapath;
  let bpf: Bpf;
  let paths: PinPaths;
  let store: EbpfInterceptStore;
  const fds: Record<string, number> = {};

  beforeAll(async () => {
    await wipe(pinRoot);
    ({ dp, bpf, paths, store } = loadNat(pinRoot, realClock));
    dp.setClientGroups([{ cidr: '10.20.0.0/16', group: GROUP }]);
    dp.upsert({ group: GROUP, addr: R4 }, { channelId: 1, mark: channelMark(1), flags: DEST_F_INTERCEPT });
    store.put({ group: GROUP, intercept: I4, real: R4, expiresMs: realClock.monoMs() + 600_000 });
    fds.in = bpf.objGet(icptProgPath(paths, ICPT_PROGS.in));
    fds.out = bpf.objGet(icptProgPath(paths, ICPT_PROGS.out));
    fds.fwd = bpf.objGet(`${paths.maps}/${ICPT_MAPS.fwd}`);
    fds.rev = bpf.objGet(`${paths.maps}/${ICPT_MAPS.rev}`);
  });

  afterAll(async () => {
    for (const f of Object.values(fds)) bpf.close(f);
    store?.close();
    dp?.close();
    await wipe(pinRoot);
  });

  const k = stable(DestKeyLayout.size);
  const v = stable(IcptValLayout.size);
  function lastSeen(c: Case): bigint {
    encodeIcptKey(GROUP, parseAddr(c.key).bytes, k.buf);
    expect(bpf.lookup(fds[c.map]!, k, v)).toBe(true);
    return decodeIcptVal(v.buf).lastSeenNs;
  }
  function setLastSeen(c: Case, ns: bigint): void {
    encodeIcptKey(GROUP, parseAddr(c.key).bytes, k.buf);
    expect(bpf.lookup(fds[c.map]!, k, v)).toBe(true);
    encodeIcptVal({ ...decodeIcptVal(v.buf), lastSeenNs: ns }, v.buf);
    bpf.update(fds[c.map]!, k, v, BPF_EXIST);
  }
  const now = () => bpf.lib.monotonicNs();
  const run = (c: Case) => bpf.testRun(fds[c.prog]!, c.frame, {});

  test.each(CASES)('%s: rewrites last_seen with the monotonic clock when it is older than 100 ms', (_n, c) => {
    setLastSeen(c, now() - 1000n * MS);
    const t0 = now();
    expect(run(c).retval).toBe(-1);
    const t1 = now();
    const seen = lastSeen(c);
    expect(seen).toBeGreaterThanOrEqual(t0 - SLACK);
    expect(seen).toBeLessThanOrEqual(t1);
  });

  test.each(CASES)('%s: leaves last_seen alone when it is younger than 100 ms', (_n, c) => {
    const recent = now() - 20n * MS;
    setLastSeen(c, recent);
    run(c);
    expect(lastSeen(c)).toBe(recent);
  });

  test.each(CASES)('%s: never moves last_seen backwards when it is ahead of the clock', (_n, c) => {
    const ahead = now() + 60_000n * MS;
    setLastSeen(c, ahead);
    run(c);
    expect(lastSeen(c)).toBe(ahead);
  });
});
