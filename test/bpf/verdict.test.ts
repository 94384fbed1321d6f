/**
 * BPF_PROG_RUN verdict tables for the tc programs (root only): the WAN leak guard
 * (dnsseal_wan_out) and the LAN marker (dnsseal_lan_in), IPv4/IPv6 × TCP/UDP/ICMP × protected /
 * unprotected × unmarked / marked / ESP / UDP 4500, plus fragments, GSO, IKE, groups, malformed,
 * retired and blocked entries. Numbered scenario names (Cilium style); each asserts the verdict,
 * the mark and the counter. The tables run twice: with the client table inline in dnsseal_config
 * (the programs skip the LPM trie) and with one too big for it (they walk the trie).
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { Bpf } from '../../src/datapath/ebpf/bpf-syscall.ts';
import type { EbpfDatapath } from '../../src/datapath/ebpf/index.ts';
import { PinPaths, PROGS } from '../../src/datapath/ebpf/pins.ts';
import { DEST_F_BLOCKED, DEST_F_RETIRED } from '../../src/datapath/datapath.ts';
import { MARK_ENCRYPTED, CFG_CLIENTS, CFG_F_INLINE, CNT_GUARD_DROP, CNT_GUARD_PASS, CNT_MARKED, CNT_RETIRED } from '../../src/datapath/layout.ts';
import { channelMark } from '../../src/policy/types.ts';
import { realClock } from '../../src/util/clock.ts';
import { makeDp, privSkipReason, scratchPinRoot, wipe } from '../datapath/ebpf/helpers.ts';
import { ctxMark, frame, skbCtx, type L4, type PacketSpec } from './packets.ts';

const PASS = -1; // TC_ACT_UNSPEC: pass on to the next filter / tcx program
const DROP = 2; // TC_ACT_SHOT
const M1 = channelMark(1);
const M2 = channelMark(2);
const M4 = channelMark(4);
/** The SA output mark (set_mark_out) of every dnsseal SA: what XFRM encrypted. */
const ENC = MARK_ENCRYPTED;
const D = { plain_protected: 1, marked_plain: 2, fragment: 3, malformed: 4, exthdr: 5, blocked: 6 } as const;
const P = { esp: 1, esp_in_udp: 2, ike: 3, nd: 4 } as const;

const ADDR = {
  v4: { prot: '192.0.2.10', unprot: '192.0.2.99', src: '10.9.9.9' },
  v6: { prot: '2001:db8::10', unprot: '2001:db8::99', src: 'fd00:9::9' },
};

interface Row {
  name: string;
  pkt: PacketSpec;
  mark?: number;
  gso?: boolean;
  verdict: number;
  /** expected counter bump: drop or pass reason */
  drop?: number;
  pass?: number;
}

function guardMatrix(): Row[] {
  const rows: Row[] = [];
  let n = 0;
  const id = () => String(++n).padStart(2, '0');
  for (const fam of ['v4', 'v6'] as const) {
    const a = ADDR[fam];
    for (const l4 of ['tcp', 'udp', 'icmp'] as L4[]) {
      for (const prot of [true, false]) {
        const dst = prot ? a.prot : a.unprot;
        const where = prot ? 'protected' : 'unprotected';
        rows.push({ name: `guard_${fam}_${id()}_${l4}_${where}_unmarked`, pkt: { src: a.src, dst, l4 }, verdict: prot ? DROP : PASS, drop: prot ? D.plain_protected : undefined });
        rows.push({ name: `guard_${fam}_${id()}_${l4}_${where}_marked`, pkt: { src: a.src, dst, l4 }, mark: M1, verdict: DROP, drop: prot ? D.plain_protected : D.marked_plain });
      }
    }
    for (const prot of [true, false]) {
      const dst = prot ? a.prot : a.unprot;
      const where = prot ? 'protected' : 'unprotected';
      rows.push({ name: `guard_${fam}_${id()}_esp_${where}`, pkt: { src: a.src, dst, l4: 'esp' }, verdict: PASS, pass: prot ? P.esp : undefined });
      rows.push({ name: `guard_${fam}_${id()}_esp_${where}_marked`, pkt: { src: a.src, dst, l4: 'esp' }, mark: M1, verdict: PASS, pass: P.esp });
      // ESP-in-UDP is told by the SA's output mark: clear UDP 4500 → 4500 of its own is not.
      rows.push({ name: `guard_${fam}_${id()}_udp4500_${where}`, pkt: { src: a.src, dst, l4: 'udp', sport: 4500, dport: 4500 }, verdict: prot ? DROP : PASS, drop: prot ? D.plain_protected : undefined });
      rows.push({ name: `guard_${fam}_${id()}_udp4500_${where}_encrypted_mark`, pkt: { src: a.src, dst, l4: 'udp', sport: 4500, dport: 4500 }, mark: ENC, verdict: PASS, pass: P.esp_in_udp });
    }
  }
  return rows;
}

const SPECIAL: Row[] = [
  { name: 'guard_frag_01_v4_nonfirst_udp_protected', pkt: { src: ADDR.v4.src, dst: ADDR.v4.prot, l4: 'udp', fragOffset: 185 }, verdict: DROP, drop: D.fragment },
  { name: 'guard_frag_02_v4_nonfirst_udp_unprotected', pkt: { src: ADDR.v4.src, dst: ADDR.v4.unprot, l4: 'udp', fragOffset: 185 }, verdict: PASS },
  { name: 'guard_frag_03_v4_first_fragment_udp4500_protected', pkt: { src: ADDR.v4.src, dst: ADDR.v4.prot, l4: 'udp', sport: 4500, dport: 4500, moreFragments: true }, mark: ENC, verdict: PASS, pass: P.esp_in_udp },
  { name: 'guard_frag_04_v4_nonfirst_esp_protected', pkt: { src: ADDR.v4.src, dst: ADDR.v4.prot, l4: 'esp', fragOffset: 185 }, verdict: PASS, pass: P.esp },
  { name: 'guard_frag_05_v6_nonfirst_udp_protected', pkt: { src: ADDR.v6.src, dst: ADDR.v6.prot, l4: 'udp', fragOffset: 181 }, verdict: DROP, drop: D.fragment },
  { name: 'guard_frag_06_v6_first_fragment_tcp_protected', pkt: { src: ADDR.v6.src, dst: ADDR.v6.prot, l4: 'tcp', fragOffset: 0, moreFragments: true }, verdict: DROP, drop: D.plain_protected },
  { name: 'guard_ext_07_v6_hop_dst_udp4500_protected', pkt: { src: ADDR.v6.src, dst: ADDR.v6.prot, l4: 'udp', sport: 4500, dport: 4500, ext: ['hop', 'dst'] }, mark: ENC, verdict: PASS, pass: P.esp_in_udp },
  { name: 'guard_ext_08_v6_hop_tcp_protected', pkt: { src: ADDR.v6.src, dst: ADDR.v6.prot, l4: 'tcp', ext: ['hop'] }, verdict: DROP, drop: D.plain_protected },
  { name: 'guard_ext_09_v6_five_ext_headers_protected', pkt: { src: ADDR.v6.src, dst: ADDR.v6.prot, l4: 'udp', ext: ['hop', 'dst', 'dst', 'dst', 'dst'] }, verdict: DROP, drop: D.exthdr },
  { name: 'guard_gso_10_v4_tcp_protected', pkt: { src: ADDR.v4.src, dst: ADDR.v4.prot, l4: 'tcp', payload: 2896 }, gso: true, verdict: DROP, drop: D.plain_protected },
  { name: 'guard_gso_11_v4_tcp_unprotected', pkt: { src: ADDR.v4.src, dst: ADDR.v4.unprot, l4: 'tcp', payload: 2896 }, gso: true, verdict: PASS },
  { name: 'guard_gso_12_v6_esp_protected', pkt: { src: ADDR.v6.src, dst: ADDR.v6.prot, l4: 'esp', payload: 2896 }, gso: true, verdict: PASS, pass: P.esp },
  // IKE is exempt only from charon's own sockets (test/netns/ike-exemption); BPF_PROG_RUN packets,
  // like forwarded ones, have no socket: UDP 500/4500 is guarded like any other.
  { name: 'guard_ike_13_udp500_to_tunnel_gateway_no_socket', pkt: { src: ADDR.v4.src, dst: '198.51.100.1', l4: 'udp', sport: 500, dport: 500 }, verdict: DROP, drop: D.plain_protected },
  { name: 'guard_ike_14_tcp_to_tunnel_gateway', pkt: { src: ADDR.v4.src, dst: '198.51.100.1', l4: 'tcp' }, verdict: DROP, drop: D.plain_protected },
  { name: 'guard_ike_15_udp500_to_peer_itself_no_socket', pkt: { src: ADDR.v4.src, dst: '203.0.113.5', l4: 'udp', sport: 500, dport: 500 }, verdict: DROP, drop: D.plain_protected },
  { name: 'guard_ike_16_udp500_to_tunnel_dest_not_gateway', pkt: { src: ADDR.v4.src, dst: ADDR.v4.prot, l4: 'udp', sport: 500, dport: 500 }, verdict: DROP, drop: D.plain_protected },
  { name: 'guard_ike_17_udp4500_from_other_port', pkt: { src: ADDR.v4.src, dst: ADDR.v4.prot, l4: 'udp', sport: 40000, dport: 4500 }, verdict: DROP, drop: D.plain_protected },
  { name: 'guard_ike_18_v6_udp500_to_v6_gateway_no_socket', pkt: { src: ADDR.v6.src, dst: '2001:db8:ffff::1', l4: 'udp', sport: 500, dport: 500 }, verdict: DROP, drop: D.plain_protected },
  { name: 'guard_ike_18b_v4_udp500_marked_lan_client_to_peer', pkt: { src: ADDR.v4.src, dst: '203.0.113.5', l4: 'udp', sport: 500, dport: 500 }, mark: M1, verdict: DROP, drop: D.plain_protected },
  { name: 'guard_map_19_v6_mapped_dst_protected', pkt: { src: ADDR.v6.src, dst: `::ffff:${ADDR.v4.prot}`, l4: 'tcp' }, verdict: DROP, drop: D.plain_protected },
  { name: 'guard_map_20_v6_mapped_dst_unprotected', pkt: { src: ADDR.v6.src, dst: `::ffff:${ADDR.v4.unprot}`, l4: 'tcp' }, verdict: PASS },
  { name: 'guard_grp_21_group5_client_to_group5_dest', pkt: { src: '10.1.2.3', dst: '192.0.2.20', l4: 'tcp' }, verdict: DROP, drop: D.plain_protected },
  { name: 'guard_grp_22_default_client_to_group5_dest', pkt: { src: ADDR.v4.src, dst: '192.0.2.20', l4: 'tcp' }, verdict: PASS },
  { name: 'guard_bad_23_not_ip', pkt: { src: ADDR.v4.src, dst: ADDR.v4.prot, l4: 'tcp', ethertype: 0x0806 }, verdict: PASS },
  // (a frame cut inside the IP header is refused by BPF_PROG_RUN itself; a bad IHL is the closest)
  { name: 'guard_bad_24_ipv4_ihl_too_small_unmarked', pkt: { src: ADDR.v4.src, dst: ADDR.v4.prot, l4: 'tcp', ihl: 4 }, verdict: PASS },
  { name: 'guard_bad_25_ipv4_ihl_too_small_marked', pkt: { src: ADDR.v4.src, dst: ADDR.v4.prot, l4: 'tcp', ihl: 4 }, mark: M1, verdict: DROP, drop: D.malformed },
  { name: 'guard_bad_26_udp_header_cut_protected', pkt: { src: ADDR.v4.src, dst: ADDR.v4.prot, l4: 'udp', sport: 4500, dport: 4500, truncate: 14 + 20 + 4 }, verdict: DROP, drop: D.malformed },
  { name: 'guard_nd_28_v6_neighbour_solicitation_to_protected', pkt: { src: ADDR.v6.src, dst: ADDR.v6.prot, l4: 'icmp', icmpType: 135 }, verdict: PASS, pass: P.nd },
  { name: 'guard_nd_29_v6_neighbour_advert_to_protected', pkt: { src: ADDR.v6.src, dst: ADDR.v6.prot, l4: 'icmp', icmpType: 136 }, verdict: PASS, pass: P.nd },
  { name: 'guard_nd_30_v6_echo_reply_to_protected', pkt: { src: ADDR.v6.src, dst: ADDR.v6.prot, l4: 'icmp', icmpType: 129 }, verdict: DROP, drop: D.plain_protected },
  { name: 'guard_nd_31_v4_icmp_type_135_is_not_nd', pkt: { src: ADDR.v4.src, dst: ADDR.v4.prot, l4: 'icmp', icmpType: 135 }, verdict: DROP, drop: D.plain_protected },
  { name: 'guard_mark_27_foreign_mark_unprotected', pkt: { src: ADDR.v4.src, dst: ADDR.v4.unprot, l4: 'tcp' }, mark: 0x1234, verdict: PASS },
  // A retired entry is guarded exactly like a live one (and not counted here: the marker counts).
  { name: 'guard_ret_32_v4_tcp_retired_unmarked', pkt: { src: ADDR.v4.src, dst: '192.0.2.70', l4: 'tcp' }, verdict: DROP, drop: D.plain_protected },
  { name: 'guard_ret_33_v4_esp_retired', pkt: { src: ADDR.v4.src, dst: '192.0.2.70', l4: 'esp' }, verdict: PASS, pass: P.esp },
  { name: 'guard_ret_34_v6_udp4500_retired', pkt: { src: ADDR.v6.src, dst: '2001:db8::70', l4: 'udp', sport: 4500, dport: 4500 }, mark: ENC, verdict: PASS, pass: P.esp_in_udp },
  // A blocked (peer) entry: nothing but IKE / NAT-T to the peer and neighbour discovery, ESP and marks included.
  { name: 'guard_blk_35_v4_tcp_blocked_unmarked', pkt: { src: ADDR.v4.src, dst: '192.0.2.80', l4: 'tcp' }, verdict: DROP, drop: D.blocked },
  { name: 'guard_blk_36_v4_tcp_blocked_marked', pkt: { src: ADDR.v4.src, dst: '192.0.2.80', l4: 'tcp' }, mark: M4, verdict: DROP, drop: D.blocked },
  { name: 'guard_blk_37_v4_esp_blocked', pkt: { src: ADDR.v4.src, dst: '192.0.2.80', l4: 'esp' }, mark: M4, verdict: DROP, drop: D.blocked },
  { name: 'guard_blk_38_v6_esp_blocked', pkt: { src: ADDR.v6.src, dst: '2001:db8::80', l4: 'esp' }, verdict: DROP, drop: D.blocked },
  { name: 'guard_blk_39_v4_udp500_to_blocked_peer_no_socket', pkt: { src: ADDR.v4.src, dst: '192.0.2.80', l4: 'udp', sport: 500, dport: 500 }, verdict: DROP, drop: D.blocked },
  { name: 'guard_blk_40_v4_udp4500_encrypted_to_blocked_peer', pkt: { src: ADDR.v4.src, dst: '192.0.2.80', l4: 'udp', sport: 4500, dport: 4500 }, mark: ENC, verdict: DROP, drop: D.blocked },
  { name: 'guard_blk_41_v6_nd_to_blocked_peer', pkt: { src: ADDR.v6.src, dst: '2001:db8::80', l4: 'icmp', icmpType: 135 }, verdict: PASS, pass: P.nd },
  { name: 'guard_blk_42_v6_udp_blocked', pkt: { src: ADDR.v6.src, dst: '2001:db8::80', l4: 'udp' }, verdict: DROP, drop: D.blocked },
];

interface MarkRow {
  name: string;
  pkt: PacketSpec;
  mark: number;
  /** skb->mark on arrival (the intercept NAT, before the marker on clsact, sets it). */
  markIn?: number;
  /** The packet counts in DNSSEAL_CNT_RETIRED for this channel. */
  retired?: number;
}

function markerMatrix(): MarkRow[] {
  const rows: MarkRow[] = [];
  let n = 0;
  for (const fam of ['v4', 'v6'] as const) {
    const a = ADDR[fam];
    for (const l4 of ['tcp', 'udp', 'icmp'] as L4[]) {
      for (const prot of [true, false]) {
        rows.push({ name: `marker_${fam}_${String(++n).padStart(2, '0')}_${l4}_${prot ? 'protected' : 'unprotected'}`, pkt: { src: a.src, dst: prot ? a.prot : a.unprot, l4 }, mark: prot ? M1 : 0 });
      }
    }
  }
  rows.push({ name: 'marker_grp_13_group5_client_group5_dest', pkt: { src: '10.1.2.3', dst: '192.0.2.20', l4: 'tcp' }, mark: M2 });
  rows.push({ name: 'marker_grp_14_default_client_group5_dest', pkt: { src: ADDR.v4.src, dst: '192.0.2.20', l4: 'tcp' }, mark: 0 });
  rows.push({ name: 'marker_grp_15_v6_client_in_v6_cidr', pkt: { src: 'fd00:5::7', dst: '2001:db8::20', l4: 'udp' }, mark: M2 });
  rows.push({ name: 'marker_map_16_v6_mapped_dst', pkt: { src: ADDR.v6.src, dst: `::ffff:${ADDR.v4.prot}`, l4: 'tcp' }, mark: M1 });
  rows.push({ name: 'marker_gso_17_v4_tcp_protected', pkt: { src: ADDR.v4.src, dst: ADDR.v4.prot, l4: 'tcp', payload: 2896 }, mark: M1 });
  rows.push({ name: 'marker_frag_18_v4_nonfirst_protected', pkt: { src: ADDR.v4.src, dst: ADDR.v4.prot, l4: 'udp', fragOffset: 185 }, mark: M1 });
  rows.push({ name: 'marker_ret_19_v4_retired_marked_and_counted', pkt: { src: ADDR.v4.src, dst: '192.0.2.70', l4: 'tcp' }, mark: M1, retired: 1 });
  rows.push({ name: 'marker_ret_20_v6_retired_marked_and_counted', pkt: { src: ADDR.v6.src, dst: '2001:db8::70', l4: 'udp' }, mark: M1, retired: 1 });
  rows.push({ name: 'marker_ret_21_v4_retired_already_marked_by_nat_counted_once', pkt: { src: ADDR.v4.src, dst: '192.0.2.70', l4: 'tcp' }, markIn: M1, mark: M1 });
  rows.push({ name: 'marker_ret_22_group5_retired_entry', pkt: { src: '10.1.2.3', dst: '192.0.2.71', l4: 'tcp' }, mark: M2, retired: 2 });
  rows.push({ name: 'marker_ret_23_default_client_to_group5_retired_entry', pkt: { src: ADDR.v4.src, dst: '192.0.2.71', l4: 'tcp' }, mark: 0 });
  rows.push({ name: 'marker_blk_24_blocked_entry_still_marked', pkt: { src: ADDR.v4.src, dst: '192.0.2.80', l4: 'tcp' }, mark: M4 });
  return rows;
}

const CLIENTS = [
  { cidr: '10.1.0.0/16', group: 5 },
  { cidr: 'fd00:5::/64', group: 5 },
];
/** The same classification with more CIDRs than dnsseal_config holds: the programs walk the trie. */
const FILLER = Array.from({ length: CFG_CLIENTS + 1 }, (_, i) => ({ cidr: `100.64.${i}.0/24`, group: 9 }));
const MODES: [string, { cidr: string; group: number }[], number][] = [
  ['inline client table', CLIENTS, CFG_F_INLINE],
  ['LPM trie', [...CLIENTS, ...FILLER], 0],
];

const skip = privSkipReason();
if (skip) console.log(`bpf verdict tables: skipping: ${skip}`);
const ROOT = scratchPinRoot('verdict');
let dp: EbpfDatapath;
let bpf: Bpf;
const fd: Record<string, number> = {};

function counter(kind: number, id: number): bigint {
  return dp.maps.counters().find((c) => c.kind === kind && c.id === id)?.packets ?? 0n;
}

(skip ? describe.skip : describe)('bpf tc programs (BPF_PROG_RUN)', () => {
  beforeAll(async () => {
    await wipe(ROOT);
    dp = makeDp(ROOT);
    bpf = new Bpf();
    const paths = new PinPaths(ROOT);
    fd.guard = bpf.objGet(paths.prog(PROGS.wanOut));
    fd.marker = bpf.objGet(paths.prog(PROGS.lanIn));
    const v1 = { channelId: 1, mark: M1, flags: 0 };
    const v2 = { channelId: 2, mark: M2, flags: 0 };
    dp.upsert({ group: 0, addr: ADDR.v4.prot }, v1);
    dp.upsert({ group: 0, addr: ADDR.v6.prot }, v1);
    dp.upsert({ group: 0, addr: '198.51.100.1' }, v1); // the tunnel gateway is itself protected
    dp.upsert({ group: 0, addr: '2001:db8:ffff::1' }, v1);
    dp.upsert({ group: 0, addr: '203.0.113.5' }, v2); // a peer channel destination
    dp.upsert({ group: 5, addr: '192.0.2.20' }, v2);
    dp.upsert({ group: 5, addr: '2001:db8::20' }, v2);
    dp.setClientGroups(CLIENTS);
    dp.maps.setChannels([
      { id: 1, mark: M1, up: true, peer: false, gateway: '198.51.100.1' },
      { id: 2, mark: M2, up: true, peer: true },
      { id: 3, mark: channelMark(3), up: true, peer: false, gateway: '2001:db8:ffff::1' },
      { id: 4, mark: M4, up: false, peer: true },
    ]);
    // the v6 gateway belongs to channel 3
    dp.upsert({ group: 0, addr: '2001:db8:ffff::1' }, { channelId: 3, mark: channelMark(3), flags: 0 });
    const retired = { ...v1, flags: DEST_F_RETIRED, expiresMs: realClock.monoMs() - 60_000 };
    dp.upsert({ group: 0, addr: '192.0.2.70' }, retired);
    dp.upsert({ group: 0, addr: '2001:db8::70' }, retired);
    dp.upsert({ group: 5, addr: '192.0.2.71' }, { ...v2, flags: DEST_F_RETIRED });
    const blocked = { channelId: 4, mark: M4, flags: DEST_F_BLOCKED };
    dp.upsert({ group: 0, addr: '192.0.2.80' }, blocked);
    dp.upsert({ group: 0, addr: '2001:db8::80' }, blocked);
  });

  afterAll(async () => {
    for (const f of Object.values(fd)) bpf.close(f);
    dp?.close();
    await wipe(ROOT);
  });

  const run = (prog: number, r: { pkt: PacketSpec; mark?: number; gso?: boolean }) =>
    bpf.testRun(prog, frame(r.pkt), { ctx: skbCtx({ mark: r.mark ?? 0, ...(r.gso ? { gsoSize: 1448, gsoSegs: 2 } : {}) }) });

  describe.each(MODES)('with the %s', (_mode, clients, flags) => {
    beforeAll(() => {
      dp.setClientGroups(clients);
      expect(dp.maps.config().flags).toBe(flags);
    });

    test.each([...guardMatrix(), ...SPECIAL].map((r) => [r.name, r] as [string, Row]))('%s: guard verdict and counter', (_n, r) => {
      const kind = r.drop !== undefined ? CNT_GUARD_DROP : CNT_GUARD_PASS;
      const id = r.drop ?? r.pass ?? 0;
      const before = id ? counter(kind, id) : 0n;
      const dropsBefore = dp.maps.counters().filter((c) => c.kind === CNT_GUARD_DROP).reduce((s, c) => s + c.packets, 0n);
      const retiredBefore = dp.maps.counters().filter((c) => c.kind === CNT_RETIRED).reduce((s, c) => s + c.packets, 0n);
      const res = run(fd.guard!, r);
      expect(res.retval).toBe(r.verdict);
      expect(ctxMark(res.ctxOut!)).toBe(r.mark ?? 0); // the guard never changes the mark
      if (id) expect(counter(kind, id)).toBe(before + 1n);
      if (r.verdict === PASS) {
        const dropsAfter = dp.maps.counters().filter((c) => c.kind === CNT_GUARD_DROP).reduce((s, c) => s + c.packets, 0n);
        expect(dropsAfter).toBe(dropsBefore);
      }
      // retired packets are counted where they are marked, never again at the guard
      expect(dp.maps.counters().filter((c) => c.kind === CNT_RETIRED).reduce((s, c) => s + c.packets, 0n)).toBe(retiredBefore);
    });

    test.each(markerMatrix().map((r) => [r.name, r] as [string, MarkRow]))('%s: marker sets the channel mark and passes', (_n, r) => {
      const ch = r.mark ? r.mark & 0xffff : 0;
      const before = ch ? counter(CNT_MARKED, ch) : 0n;
      const retiredBefore = new Map([1, 2, 3, 4].map((c) => [c, counter(CNT_RETIRED, c)]));
      const res = bpf.testRun(fd.marker!, frame(r.pkt), { ctx: skbCtx({ mark: r.markIn ?? 0, ...(r.name.includes('_gso_') ? { gsoSize: 1448, gsoSegs: 2 } : {}) }) });
      expect(res.retval).toBe(PASS);
      expect(ctxMark(res.ctxOut!)).toBe(r.mark);
      if (ch) expect(counter(CNT_MARKED, ch)).toBe(before + 1n);
      for (const [c, n] of retiredBefore) expect([c, counter(CNT_RETIRED, c)]).toEqual([c, n + (c === r.retired ? 1n : 0n)]);
    });
  });

  test('marker stamps last_seen in Clock.monoMs base when a packet to a protected address passes', () => {
    const key = { group: 5, addr: '192.0.2.30' };
    dp.upsert(key, { channelId: 2, mark: M2, flags: 0 });
    expect(dp.lastSeen(key)).toBeUndefined();
    const t0 = realClock.monoMs();
    run(fd.marker!, { pkt: { src: '10.1.2.3', dst: '192.0.2.30', l4: 'udp' } });
    const seen = dp.lastSeen(key);
    expect(seen).toBeDefined();
    expect(Math.abs(seen! - t0)).toBeLessThan(1000);
    expect(dp.list().find((e) => e.key.addr === '192.0.2.30')!.lastSeenMs).toBe(seen!);
  });

  test('guard stamps last_seen when it drops a clear packet to a protected address', () => {
    const key = { group: 0, addr: '203.0.113.77' };
    dp.upsert(key, { channelId: 2, mark: M2, flags: 0 });
    expect(dp.lastSeen(key)).toBeUndefined();
    const res = run(fd.guard!, { pkt: { src: ADDR.v4.src, dst: '203.0.113.77', l4: 'tcp' } });
    expect(res.retval).toBe(DROP);
    expect(dp.lastSeen(key)).toBeDefined();
  });

  test('guard passes again when the entry is removed', () => {
    dp.remove({ group: 0, addr: '203.0.113.5' });
    const res = run(fd.guard!, { pkt: { src: ADDR.v4.src, dst: '203.0.113.5', l4: 'tcp' } });
    expect(res.retval).toBe(PASS);
  });
});
