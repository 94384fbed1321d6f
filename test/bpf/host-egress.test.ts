/**
 * BPF_PROG_RUN table for the host-mode egress accounting (dnsseal_cg_out, cgroup_skb egress; root
 * only): always allows; a packet to a protected destination (group 0) counts in HOST_SENT for its
 * channel and stamps last_seen (a retired entry's also in RETIRED); anything else is left alone. The
 * destination is read in place from the linear header (bpf_skb_load_bytes only when it is not there).
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { Bpf } from '../../src/datapath/ebpf/bpf-syscall.ts';
import type { EbpfDatapath } from '../../src/datapath/ebpf/index.ts';
import { PinPaths, PROGS } from '../../src/datapath/ebpf/pins.ts';
import { DEST_F_RETIRED } from '../../src/datapath/datapath.ts';
import { CNT_HOST_SENT, CNT_RETIRED } from '../../src/datapath/layout.ts';
import { channelMark } from '../../src/policy/types.ts';
import { makeDp, privSkipReason, scratchPinRoot, wipe } from '../datapath/ebpf/helpers.ts';
import { frame, skbCtx, type PacketSpec } from './packets.ts';

const ALLOW = 1;
const skip = privSkipReason();
if (skip) console.log(`bpf host egress: skipping: ${skip}`);
const ROOT = scratchPinRoot('host-egress');
let dp: EbpfDatapath;
let bpf: Bpf;
let prog = -1;

interface Row {
  pkt: PacketSpec;
  /** channel whose HOST_SENT counter must grow by one, or 0 for none */
  channel: number;
  /** entry whose last_seen must be set afterwards */
  stamped?: string;
  /** the packet also counts in RETIRED for its channel */
  retired?: boolean;
}
const ROWS: [string, Row][] = [
  ['host_egress_01_v4_tcp_protected', { pkt: { src: '10.9.9.9', dst: '192.0.2.50', l4: 'tcp' }, channel: 1, stamped: '192.0.2.50' }],
  ['host_egress_02_v4_udp_protected_channel2', { pkt: { src: '10.9.9.9', dst: '192.0.2.51', l4: 'udp' }, channel: 2, stamped: '192.0.2.51' }],
  ['host_egress_03_v6_tcp_protected', { pkt: { src: 'fd00:9::9', dst: '2001:db8::50', l4: 'tcp' }, channel: 1, stamped: '2001:db8::50' }],
  ['host_egress_04_v6_mapped_dst_protected', { pkt: { src: 'fd00:9::9', dst: '::ffff:192.0.2.52', l4: 'udp' }, channel: 1, stamped: '192.0.2.52' }],
  ['host_egress_05_v4_unprotected', { pkt: { src: '10.9.9.9', dst: '192.0.2.99', l4: 'tcp' }, channel: 0 }],
  ['host_egress_06_v6_unprotected', { pkt: { src: 'fd00:9::9', dst: '2001:db8::99', l4: 'tcp' }, channel: 0 }],
  ['host_egress_07_v4_group5_entry_is_not_group0', { pkt: { src: '10.9.9.9', dst: '192.0.2.53', l4: 'tcp' }, channel: 0 }],
  ['host_egress_08_not_ip', { pkt: { src: '10.9.9.9', dst: '192.0.2.50', l4: 'tcp', ethertype: 0x0806 }, channel: 0 }],
  ['host_egress_09_v4_retired', { pkt: { src: '10.9.9.9', dst: '192.0.2.54', l4: 'tcp' }, channel: 3, stamped: '192.0.2.54', retired: true }],
  ['host_egress_10_v6_retired', { pkt: { src: 'fd00:9::9', dst: '2001:db8::54', l4: 'udp' }, channel: 3, stamped: '2001:db8::54', retired: true }],
];

function hostSent(kind = CNT_HOST_SENT): Map<number, bigint> {
  return new Map(dp.maps.counters().filter((c) => c.kind === kind).map((c) => [c.id, c.packets]));
}

(skip ? describe.skip : describe)('bpf host egress (dnsseal_cg_out, BPF_PROG_RUN)', () => {
  beforeAll(async () => {
    await wipe(ROOT);
    dp = makeDp(ROOT);
    bpf = new Bpf();
    prog = bpf.objGet(new PinPaths(ROOT).prog(PROGS.cgOut));
    const v1 = { channelId: 1, mark: channelMark(1), flags: 0 };
    dp.upsert({ group: 0, addr: '192.0.2.50' }, v1);
    dp.upsert({ group: 0, addr: '192.0.2.51' }, { channelId: 2, mark: channelMark(2), flags: 0 });
    dp.upsert({ group: 0, addr: '2001:db8::50' }, v1);
    dp.upsert({ group: 0, addr: '192.0.2.52' }, v1);
    dp.upsert({ group: 5, addr: '192.0.2.53' }, v1);
    const retired = { channelId: 3, mark: channelMark(3), flags: DEST_F_RETIRED };
    dp.upsert({ group: 0, addr: '192.0.2.54' }, retired);
    dp.upsert({ group: 0, addr: '2001:db8::54' }, retired);
  });

  afterAll(async () => {
    if (prog >= 0) bpf.close(prog);
    dp?.close();
    await wipe(ROOT);
  });

  test.each(ROWS)('%s: allows and counts only packets to protected destinations', (_n, r) => {
    const before = hostSent();
    const retiredBefore = hostSent(CNT_RETIRED);
    const res = bpf.testRun(prog, frame(r.pkt), { ctx: skbCtx() });
    expect(res.retval).toBe(ALLOW);
    const after = hostSent();
    const retiredAfter = hostSent(CNT_RETIRED);
    for (const ch of new Set([...before.keys(), ...after.keys(), r.channel].filter((c) => c > 0))) {
      expect([ch, after.get(ch) ?? 0n]).toEqual([ch, (before.get(ch) ?? 0n) + (ch === r.channel ? 1n : 0n)]);
      expect([ch, retiredAfter.get(ch) ?? 0n]).toEqual([ch, (retiredBefore.get(ch) ?? 0n) + (ch === r.channel && r.retired ? 1n : 0n)]);
    }
    if (r.stamped) expect(dp.lastSeen({ group: 0, addr: r.stamped })).toBeDefined();
  });
});
