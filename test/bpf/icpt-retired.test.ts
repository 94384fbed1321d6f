/**
 * The intercept NAT counts a packet it translates to a retired real address (root only,
 * BPF_PROG_RUN on dnsseal_nat_in): translated and marked like a live one, and one more in
 * DNSSEAL_CNT_RETIRED for its channel (the LAN marker behind it on clsact sees the mark already
 * set and does not count it again: test/bpf/verdict.test.ts marker_ret_21).
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import type { Bpf } from '../../src/datapath/ebpf/bpf-syscall.ts';
import type { EbpfDatapath } from '../../src/datapath/ebpf/index.ts';
import { CNT_RETIRED, DEST_F_INTERCEPT, DEST_F_RETIRED } from '../../src/datapath/layout.ts';
import { ICPT_PROGS, icptProgPath } from '../../src/intercept/ebpf-loader.ts';
import type { EbpfInterceptStore } from '../../src/intercept/ebpf-store.ts';
import { channelMark } from '../../src/policy/types.ts';
import { realClock } from '../../src/util/clock.ts';
import { scratchPinRoot, wipe } from '../datapath/ebpf/helpers.ts';
import { icptSkipReason, loadNat } from '../intercept/helpers.ts';
import { eth, ipPacket } from '../intercept/packets.ts';
import { ctxMark, skbCtx } from './packets.ts';

const GROUP = 3;
const skip = icptSkipReason();
if (skip) console.log(`bpf intercept retired: skipping: ${skip}`);

(skip ? describe.skip : describe)('bpf/lib/intercept_nat retired entries (BPF_PROG_RUN)', () => {
  const pinRoot = scratchPinRoot('icpt-retired');
  let dp: EbpfDatapath;
  let bpf: Bpf;
  let store: EbpfInterceptStore;
  let prog = -1;

  beforeAll(async () => {
    await wipe(pinRoot);
    let paths;
    ({ dp, bpf, paths, store } = loadNat(pinRoot, realClock));
    dp.setClientGroups([{ cidr: '10.20.0.0/16', group: GROUP }]);
    dp.upsert({ group: GROUP, addr: '192.0.2.21' }, { channelId: 1, mark: channelMark(1), flags: DEST_F_INTERCEPT });
    dp.upsert({ group: GROUP, addr: '192.0.2.22' }, { channelId: 2, mark: channelMark(2), flags: DEST_F_INTERCEPT | DEST_F_RETIRED });
    store.put({ group: GROUP, intercept: '100.64.0.21', real: '192.0.2.21', expiresMs: realClock.monoMs() + 600_000 });
    store.put({ group: GROUP, intercept: '100.64.0.22', real: '192.0.2.22', expiresMs: realClock.monoMs() + 600_000 });
    prog = bpf.objGet(icptProgPath(paths, ICPT_PROGS.in));
  });

  afterAll(async () => {
    if (prog >= 0) bpf.close(prog);
    store?.close();
    dp?.close();
    await wipe(pinRoot);
  });

  const retired = (ch: number) => dp.maps.counters().find((c) => c.kind === CNT_RETIRED && c.id === ch)?.packets ?? 0n;

  test.each([
    ['live', '100.64.0.21', 1, 0n],
    ['retired', '100.64.0.22', 2, 1n],
  ] as [string, string, number, bigint][])('nat_in marks and counts retired packets only when the real address is %s', (_n, dst, ch, more) => {
    const before = retired(ch);
    const res = bpf.testRun(prog, eth(ipPacket({ src: '10.20.0.5', dst, proto: 'tcp' })), { ctx: skbCtx() });
    expect(res.retval).toBe(-1);
    expect(ctxMark(res.ctxOut!)).toBe(channelMark(ch));
    expect(retired(ch)).toBe(before + more);
  });
});
