/**
 * BPF_PROG_RUN table for host-mode egress (dnsseal_cg_out, cgroup_skb egress, after XFRM; root
 * only): the leak guard at the socket level. A clear packet to a protected destination (group 0),
 * or one carrying a dnsseal mark that XFRM did not encrypt, is dropped and counted by reason; ESP
 * to it passes; anything else is left alone. A packet to a protected destination counts in
 * HOST_SENT for its channel and stamps last_seen (a retired entry's also in RETIRED). The
 * destination is read in place from the linear header (bpf_skb_load_bytes only when it is not there).
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { readFileSync } from 'node:fs';
import { Bpf } from '../../src/datapath/ebpf/bpf-syscall.ts';
import type { EbpfDatapath } from '../../src/datapath/ebpf/index.ts';
import { PinPaths, PROGS } from '../../src/datapath/ebpf/pins.ts';
import { DEST_F_RETIRED } from '../../src/datapath/datapath.ts';
import { CNT_GUARD_DROP, CNT_HOST_SENT, CNT_RETIRED } from '../../src/datapath/layout.ts';
import { channelMark } from '../../src/policy/types.ts';
import { makeDp, privSkipReason, scratchPinRoot, wipe } from '../datapath/ebpf/helpers.ts';
import { frame, skbCtx, type PacketSpec } from './packets.ts';

const ALLOW = 1;
const DROP = 0;
const PLAIN_PROTECTED = 1;
const MARKED_PLAIN = 2;
const skip = privSkipReason();
if (skip) console.log(`bpf host egress: skipping: ${skip}`);
const ROOT = scratchPinRoot('host-egress');
let dp: EbpfDatapath;
let bpf: Bpf;
let prog = -1;
let ifindex = 0;
const DEV = `dsl-he${process.pid % 10000}`; // and its veth peer DEV + 'p'

interface Row {
  pkt: PacketSpec;
  /** channel whose HOST_SENT counter must grow by one, or 0 for none */
  channel: number;
  /** entry whose last_seen must be set afterwards */
  stamped?: string;
  /** the packet also counts in RETIRED for its channel */
  retired?: boolean;
  /** cgroup verdict (default ALLOW) and, for a drop, the guard's reason */
  verdict?: number;
  drop?: number;
  mark?: number;
  /** sent through the loopback device (the run's default) instead of a real one */
  loopback?: true;
}
const ROWS: [string, Row][] = [
  ['host_egress_01_v4_tcp_protected', { pkt: { src: '10.9.9.9', dst: '192.0.2.50', l4: 'tcp' }, channel: 1, stamped: '192.0.2.50', verdict: DROP, drop: PLAIN_PROTECTED }],
  ['host_egress_02_v4_udp_protected_channel2', { pkt: { src: '10.9.9.9', dst: '192.0.2.51', l4: 'udp' }, channel: 2, stamped: '192.0.2.51', verdict: DROP, drop: PLAIN_PROTECTED }],
  ['host_egress_03_v6_tcp_protected', { pkt: { src: 'fd00:9::9', dst: '2001:db8::50', l4: 'tcp' }, channel: 1, stamped: '2001:db8::50', verdict: DROP, drop: PLAIN_PROTECTED }],
  ['host_egress_04_v6_mapped_dst_protected', { pkt: { src: 'fd00:9::9', dst: '::ffff:192.0.2.52', l4: 'udp' }, channel: 1, stamped: '192.0.2.52', verdict: DROP, drop: PLAIN_PROTECTED }],
  ['host_egress_05_v4_unprotected', { pkt: { src: '10.9.9.9', dst: '192.0.2.99', l4: 'tcp' }, channel: 0 }],
  ['host_egress_06_v6_unprotected', { pkt: { src: 'fd00:9::9', dst: '2001:db8::99', l4: 'tcp' }, channel: 0 }],
  ['host_egress_07_v4_group5_entry_is_not_group0', { pkt: { src: '10.9.9.9', dst: '192.0.2.53', l4: 'tcp' }, channel: 0 }],
  ['host_egress_08_not_ip', { pkt: { src: '10.9.9.9', dst: '192.0.2.50', l4: 'tcp', ethertype: 0x0806 }, channel: 0 }],
  ['host_egress_09_v4_retired', { pkt: { src: '10.9.9.9', dst: '192.0.2.54', l4: 'tcp' }, channel: 3, stamped: '192.0.2.54', retired: true, verdict: DROP, drop: PLAIN_PROTECTED }],
  ['host_egress_10_v6_retired', { pkt: { src: 'fd00:9::9', dst: '2001:db8::54', l4: 'udp' }, channel: 3, stamped: '2001:db8::54', retired: true, verdict: DROP, drop: PLAIN_PROTECTED }],
  ['host_egress_11_v4_esp_protected', { pkt: { src: '10.9.9.9', dst: '192.0.2.50', l4: 'esp' }, channel: 1, stamped: '192.0.2.50' }],
  ['host_egress_12_v6_esp_protected_marked', { pkt: { src: 'fd00:9::9', dst: '2001:db8::50', l4: 'esp' }, channel: 1, mark: channelMark(1) }],
  ['host_egress_13_v4_tcp_unprotected_marked', { pkt: { src: '10.9.9.9', dst: '192.0.2.99', l4: 'tcp' }, channel: 0, mark: channelMark(1), verdict: DROP, drop: MARKED_PLAIN }],
  ['host_egress_14_v4_esp_unprotected_marked (tunnel mode: ESP to the gateway)', { pkt: { src: '10.9.9.9', dst: '192.0.2.99', l4: 'esp' }, channel: 0, mark: channelMark(1) }],
  ['host_egress_15_v6_icmp_protected', { pkt: { src: 'fd00:9::9', dst: '2001:db8::50', l4: 'icmp' }, channel: 1, verdict: DROP, drop: PLAIN_PROTECTED }],
  // a protected address that is local (routed to lo) never leaves the machine
  ['host_egress_16_v4_tcp_protected_over_loopback', { pkt: { src: '10.9.9.9', dst: '192.0.2.50', l4: 'tcp' }, channel: 0, loopback: true }],
  ['host_egress_17_v6_udp_protected_over_loopback', { pkt: { src: 'fd00:9::9', dst: '2001:db8::50', l4: 'udp' }, channel: 0, loopback: true }],
];

function hostSent(kind = CNT_HOST_SENT): Map<number, bigint> {
  return new Map(dp.maps.counters().filter((c) => c.kind === kind).map((c) => [c.id, c.packets]));
}

(skip ? describe.skip : describe)('bpf host egress (dnsseal_cg_out, BPF_PROG_RUN)', () => {
  beforeAll(async () => {
    await wipe(ROOT);
    // A real device for the runs (without one BPF_PROG_RUN sends through lo, which the guard passes).
    Bun.spawnSync(['ip', 'link', 'del', DEV]);
    if (Bun.spawnSync(['ip', 'link', 'add', DEV, 'type', 'veth', 'peer', 'name', `${DEV}p`]).exitCode !== 0) throw new Error(`cannot create ${DEV}`);
    ifindex = Number(readFileSync(`/sys/class/net/${DEV}/ifindex`, 'utf8'));
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
    Bun.spawnSync(['ip', 'link', 'del', DEV]);
    if (prog >= 0) bpf.close(prog);
    dp?.close();
    await wipe(ROOT);
  });

  test.each(ROWS)('%s: drops clear packets to protected destinations, counts only those', (_n, r) => {
    const before = hostSent();
    const retiredBefore = hostSent(CNT_RETIRED);
    const dropsBefore = hostSent(CNT_GUARD_DROP);
    const res = bpf.testRun(prog, frame(r.pkt), { ctx: skbCtx({ mark: r.mark ?? 0, ifindex: r.loopback ? 0 : ifindex }) });
    expect(res.retval).toBe(r.verdict ?? ALLOW);
    const dropsAfter = hostSent(CNT_GUARD_DROP);
    for (const reason of [PLAIN_PROTECTED, MARKED_PLAIN]) {
      expect([reason, dropsAfter.get(reason) ?? 0n]).toEqual([reason, (dropsBefore.get(reason) ?? 0n) + (r.drop === reason ? 1n : 0n)]);
    }
    const after = hostSent();
    const retiredAfter = hostSent(CNT_RETIRED);
    for (const ch of new Set([...before.keys(), ...after.keys(), r.channel].filter((c) => c > 0))) {
      expect([ch, after.get(ch) ?? 0n]).toEqual([ch, (before.get(ch) ?? 0n) + (ch === r.channel ? 1n : 0n)]);
      expect([ch, retiredAfter.get(ch) ?? 0n]).toEqual([ch, (retiredBefore.get(ch) ?? 0n) + (ch === r.channel && r.retired ? 1n : 0n)]);
    }
    if (r.stamped) expect(dp.lastSeen({ group: 0, addr: r.stamped })).toBeDefined();
  });
});
