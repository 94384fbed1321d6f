/**
 * BPF_PROG_RUN on the intercept NAT programs (root only): dnsseal_nat_in (LAN ingress) and
 * dnsseal_nat_out (LAN egress). Each row sends one frame with valid checksums and asserts the
 * verdict, the rewritten addresses, the mark, and that EVERY checksum of the output frame is
 * valid — verified here in TypeScript (test/intercept/packets.ts), not by the kernel.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import type { Bpf } from '../../src/datapath/ebpf/bpf-syscall.ts';
import type { EbpfDatapath } from '../../src/datapath/ebpf/index.ts';
import type { PinPaths } from '../../src/datapath/ebpf/pins.ts';
import { DEST_F_INTERCEPT, ICPT_CNT_DROP, ICPT_CNT_IN } from '../../src/datapath/layout.ts';
import { ICPT_PROGS, icptProgPath } from '../../src/intercept/ebpf-loader.ts';
import type { EbpfInterceptStore } from '../../src/intercept/ebpf-store.ts';
import { channelMark } from '../../src/policy/types.ts';
import { realClock } from '../../src/util/clock.ts';
import { ctxMark, skbCtx } from '../bpf/packets.ts';
import { scratchPinRoot, wipe } from '../datapath/ebpf/helpers.ts';
import { icptSkipReason, loadNat } from './helpers.ts';
import { eth, icmpError, ipPacket, parseFrame, type Pkt } from './packets.ts';

const skip = icptSkipReason();
if (skip) console.log(`intercept BPF_PROG_RUN: skipping: ${skip}`);

const PASS = -1; // TC_ACT_UNSPEC = TCX_NEXT
const DROP = 2;
const GROUP = 3;
const M1 = channelMark(1);
const C4 = '10.20.0.5';
const C6 = 'fd00:20::5';
const I4 = '100.64.0.7';
const R4 = '192.0.2.10';
const I6 = 'fd7a:5ea1::3090';
const R6 = 'fd00:aa91::1001';
const I4_UNPROT = '100.64.0.8';
const R4_UNPROT = '192.0.2.66';
const ROUTER4 = '198.51.100.254';
const ROUTER6 = 'fd00:99::1';

interface Row {
  name: string;
  prog: 'in' | 'out';
  frame: Uint8Array;
  verdict: number;
  mark?: number;
  src?: string;
  dst?: string;
  innerSrc?: string;
  innerDst?: string;
}

const pkt = (p: Pkt) => eth(ipPacket(p));

const INGRESS: Row[] = [
  ...(['tcp', 'udp', 'icmp'] as const).flatMap((proto, n) => [
    { name: `icpt_in_v4_0${n + 1}_${proto}_to_intercept`, prog: 'in' as const, frame: pkt({ src: C4, dst: I4, proto }), verdict: PASS, mark: M1, src: C4, dst: R4 },
    { name: `icpt_in_v6_0${n + 1}_${proto}_to_intercept`, prog: 'in' as const, frame: pkt({ src: C6, dst: I6, proto }), verdict: PASS, mark: M1, src: C6, dst: R6 },
  ]),
  { name: 'icpt_in_v4_04_udp_zero_checksum_stays_zero', prog: 'in', frame: pkt({ src: C4, dst: I4, proto: 'udp', udpNoCsum: true }), verdict: PASS, mark: M1, dst: R4 },
  { name: 'icpt_in_v4_05_nonfirst_fragment', prog: 'in', frame: pkt({ src: C4, dst: I4, proto: 'udp', fragOffset: 185 }), verdict: PASS, mark: M1, dst: R4 },
  { name: 'icpt_in_v4_06_not_an_intercept_address', prog: 'in', frame: pkt({ src: C4, dst: '100.64.0.99', proto: 'tcp' }), verdict: PASS, mark: 0, dst: '100.64.0.99' },
  { name: 'icpt_in_v4_07_client_of_other_group', prog: 'in', frame: pkt({ src: '10.99.0.5', dst: I4, proto: 'tcp' }), verdict: PASS, mark: 0, dst: I4 },
  { name: 'icpt_in_v4_08_real_address_unprotected_dropped', prog: 'in', frame: pkt({ src: C4, dst: I4_UNPROT, proto: 'tcp' }), verdict: DROP },
  {
    name: 'icpt_in_v4_10_icmp_error_from_client_quoting_reply',
    prog: 'in',
    frame: eth(icmpError(C4, I4, ipPacket({ src: I4, dst: C4, proto: 'udp', sport: 53, dport: 40000 }))),
    verdict: PASS, mark: M1, src: C4, dst: R4, innerSrc: R4, innerDst: C4,
  },
  {
    name: 'icpt_in_v6_11_icmp_error_from_client_quoting_reply',
    prog: 'in',
    frame: eth(icmpError(C6, I6, ipPacket({ src: I6, dst: C6, proto: 'tcp', sport: 443, dport: 40000 }))),
    verdict: PASS, mark: M1, src: C6, dst: R6, innerSrc: R6, innerDst: C6,
  },
  { name: 'icpt_in_v6_09_tcp_large_payload', prog: 'in', frame: pkt({ src: C6, dst: I6, proto: 'tcp', payload: new Uint8Array(1400).fill(7) }), verdict: PASS, mark: M1, dst: R6 },
];

const EGRESS: Row[] = [
  ...(['tcp', 'udp', 'icmp'] as const).flatMap((proto, n) => [
    { name: `icpt_out_v4_0${n + 1}_${proto}_reply_from_real`, prog: 'out' as const, frame: pkt({ src: R4, dst: C4, proto, sport: 80, dport: 40000 }), verdict: PASS, src: I4, dst: C4 },
    { name: `icpt_out_v6_0${n + 1}_${proto}_reply_from_real`, prog: 'out' as const, frame: pkt({ src: R6, dst: C6, proto, sport: 80, dport: 40000 }), verdict: PASS, src: I6, dst: C6 },
  ]),
  { name: 'icpt_out_v4_04_unrelated_source_untouched', prog: 'out', frame: pkt({ src: '192.0.2.99', dst: C4, proto: 'tcp' }), verdict: PASS, src: '192.0.2.99', dst: C4 },
  { name: 'icpt_out_v4_05_reply_to_client_of_other_group_untouched', prog: 'out', frame: pkt({ src: R4, dst: '10.99.0.5', proto: 'tcp' }), verdict: PASS, src: R4 },
  {
    name: 'icpt_out_v4_06_icmp_error_from_router_quoting_udp',
    prog: 'out',
    frame: eth(icmpError(ROUTER4, C4, ipPacket({ src: C4, dst: R4, proto: 'udp' }))),
    verdict: PASS, src: ROUTER4, dst: C4, innerSrc: C4, innerDst: I4,
  },
  {
    name: 'icpt_out_v4_07_icmp_error_from_real_quoting_tcp',
    prog: 'out',
    frame: eth(icmpError(R4, C4, ipPacket({ src: C4, dst: R4, proto: 'tcp' }))),
    verdict: PASS, src: I4, dst: C4, innerSrc: C4, innerDst: I4,
  },
  {
    name: 'icpt_out_v4_08_icmp_error_quoting_udp_without_checksum',
    prog: 'out',
    frame: eth(icmpError(ROUTER4, C4, ipPacket({ src: C4, dst: R4, proto: 'udp', udpNoCsum: true }))),
    verdict: PASS, src: ROUTER4, innerDst: I4,
  },
  {
    name: 'icpt_out_v4_09_icmp_error_quoting_echo',
    prog: 'out',
    frame: eth(icmpError(ROUTER4, C4, ipPacket({ src: C4, dst: R4, proto: 'icmp' }))),
    verdict: PASS, src: ROUTER4, innerDst: I4,
  },
  {
    name: 'icpt_out_v6_10_icmp_error_from_router_quoting_tcp',
    prog: 'out',
    frame: eth(icmpError(ROUTER6, C6, ipPacket({ src: C6, dst: R6, proto: 'tcp' }))),
    verdict: PASS, src: ROUTER6, dst: C6, innerSrc: C6, innerDst: I6,
  },
  {
    name: 'icpt_out_v6_11_icmp_error_from_real_quoting_udp',
    prog: 'out',
    frame: eth(icmpError(R6, C6, ipPacket({ src: C6, dst: R6, proto: 'udp' }))),
    verdict: PASS, src: I6, innerDst: I6,
  },
  {
    name: 'icpt_out_v6_12_icmp_error_quoting_echo',
    prog: 'out',
    frame: eth(icmpError(ROUTER6, C6, ipPacket({ src: C6, dst: R6, proto: 'icmp' }))),
    verdict: PASS, src: ROUTER6, innerDst: I6,
  },
  {
    name: 'icpt_out_v4_13_icmp_error_quoting_other_destination_untouched',
    prog: 'out',
    frame: eth(icmpError(ROUTER4, C4, ipPacket({ src: C4, dst: '192.0.2.99', proto: 'udp' }))),
    verdict: PASS, src: ROUTER4, innerDst: '192.0.2.99',
  },
];

describe('intercept/nat', () => {
  const pinRoot = scratchPinRoot('icpt-run');
  let dp: EbpfDatapath;
  let bpf: Bpf;
  let paths: PinPaths;
  let store: EbpfInterceptStore;
  const fds: Record<'in' | 'out', number> = { in: -1, out: -1 };

  beforeAll(async () => {
    if (skip) return;
    await wipe(pinRoot);
    ({ dp, bpf, paths, store } = loadNat(pinRoot, realClock));
    dp.setClientGroups([
      { cidr: '10.20.0.0/16', group: GROUP },
      { cidr: 'fd00:20::/64', group: GROUP },
    ]);
    dp.upsert({ group: GROUP, addr: R4 }, { channelId: 1, mark: M1, flags: DEST_F_INTERCEPT });
    dp.upsert({ group: GROUP, addr: R6 }, { channelId: 1, mark: M1, flags: DEST_F_INTERCEPT });
    const expiresMs = realClock.monoMs() + 60_000;
    store.put({ group: GROUP, intercept: I4, real: R4, expiresMs });
    store.put({ group: GROUP, intercept: I6, real: R6, expiresMs });
    store.put({ group: GROUP, intercept: I4_UNPROT, real: R4_UNPROT, expiresMs });
    fds.in = bpf.objGet(icptProgPath(paths, ICPT_PROGS.in));
    fds.out = bpf.objGet(icptProgPath(paths, ICPT_PROGS.out));
  });

  afterAll(async () => {
    if (skip) return;
    bpf.close(fds.in);
    bpf.close(fds.out);
    store.close();
    dp.close();
    await wipe(pinRoot);
  });

  (skip ? test.skip : test).each([...INGRESS, ...EGRESS].map((r) => [r.name, r] as const))(
    'translates with valid checksums when the frame is %s',
    (_name, row) => {
      const before = parseFrame(row.frame);
      expect(before.bad).toEqual([]); // the input itself is valid
      const r = bpf.testRun(fds[row.prog], row.frame, { ctx: skbCtx() });
      expect(r.retval).toBe(row.verdict);
      if (row.verdict === DROP) return;
      expect(r.dataOut.length).toBe(row.frame.length);
      const out = parseFrame(r.dataOut);
      expect(out.bad).toEqual([]);
      if (row.src) expect(out.src).toBe(row.src);
      if (row.dst) expect(out.dst).toBe(row.dst);
      if (row.innerSrc) expect(out.inner?.src).toBe(row.innerSrc);
      if (row.innerDst) expect(out.inner?.dst).toBe(row.innerDst);
      if (row.mark !== undefined) expect(ctxMark(r.ctxOut!)).toBe(row.mark);
      // The L4 header is unchanged except its checksum (ports, window, ICMP id/type…).
      const csumAt = before.proto === 6 ? 16 : before.proto === 17 ? 6 : 2;
      const strip = (l4: Uint8Array) => [...l4.subarray(0, before.proto === 6 ? 20 : 8)].filter((_, i) => i !== csumAt && i !== csumAt + 1);
      if (!row.innerDst) expect(strip(out.l4)).toEqual(strip(before.l4));
      // Payload beyond the headers is never touched.
      expect(Buffer.from(r.dataOut.subarray(r.dataOut.length - 8))).toEqual(Buffer.from(row.frame.subarray(row.frame.length - 8)));
    },
  );

  (skip ? test.skip : test)('stamps last_seen of the mapping when a packet is translated', () => {
    store.put({ group: GROUP, intercept: '100.64.0.9', real: R4.replace('.10', '.11'), expiresMs: realClock.monoMs() + 60_000 });
    dp.upsert({ group: GROUP, addr: '192.0.2.11' }, { channelId: 1, mark: M1, flags: DEST_F_INTERCEPT });
    expect(store.lastSeen(GROUP, '100.64.0.9')).toBeUndefined();
    const t0 = realClock.monoMs();
    bpf.testRun(fds.in, pkt({ src: C4, dst: '100.64.0.9', proto: 'tcp' }), { ctx: skbCtx() });
    const seen = store.lastSeen(GROUP, '100.64.0.9');
    expect(seen).toBeDefined();
    expect(Math.abs(seen! - t0)).toBeLessThan(1000);
    expect(dp.lastSeen({ group: GROUP, addr: '192.0.2.11' })).toBeDefined();
  });

  (skip ? test.skip : test)('costs well under a microsecond per packet when translating (figure printed)', () => {
    const rows: [string, 'in' | 'out', Uint8Array][] = [
      ['in  v4 tcp', 'in', pkt({ src: C4, dst: I4, proto: 'tcp' })],
      ['in  v6 tcp', 'in', pkt({ src: C6, dst: I6, proto: 'tcp' })],
      ['in  v4 not ours', 'in', pkt({ src: C4, dst: '100.64.0.99', proto: 'tcp' })],
      ['out v4 tcp', 'out', pkt({ src: R4, dst: C4, proto: 'tcp', sport: 80, dport: 40000 })],
      ['out v4 icmp error', 'out', eth(icmpError(ROUTER4, C4, ipPacket({ src: C4, dst: R4, proto: 'udp' })))],
    ];
    for (const [what, prog, frame] of rows) {
      const r = bpf.testRun(fds[prog], frame, { repeat: 100_000 });
      console.log(`intercept NAT BPF_PROG_RUN: ${what}: ${r.durationNs} ns/packet`);
      expect(r.durationNs).toBeLessThan(1000);
    }
  });

  (skip ? test.skip : test)('counts translations per channel and drops by reason when the real address is unprotected', () => {
    const counters = store.counters();
    const inC = counters.find((c) => c.kind === ICPT_CNT_IN && c.id === 1);
    const drop = counters.find((c) => c.kind === ICPT_CNT_DROP && c.id === 1);
    expect(Number(inC?.packets ?? 0)).toBeGreaterThan(0);
    expect(Number(drop?.packets ?? 0)).toBeGreaterThanOrEqual(1);
  });
});
