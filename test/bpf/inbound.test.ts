/**
 * BPF_PROG_RUN table for the inbound guard (dnsseal_in, tc ingress; root only; issue #11 item 5):
 * from a protected address only ESP, decrypted packets (secpath: the lab proves those), UDP to
 * charon's own sockets (test/netns/inbound-guard) and ICMPv6 neighbour discovery are accepted;
 * clear TCP/UDP/ICMP — a spoofed packet claiming to come from a protected peer — is dropped and
 * counted; from a `protocol: tls` channel's address only TCP from its TLS port. The entry is looked up in the group of the receiving client (the destination). Runs
 * with the client table inline and with the LPM trie.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { Bpf } from '../../src/datapath/ebpf/bpf-syscall.ts';
import type { EbpfDatapath } from '../../src/datapath/ebpf/index.ts';
import { PinPaths, PROGS } from '../../src/datapath/ebpf/pins.ts';
import { CFG_CLIENTS, CNT_GUARD_DROP, CNT_GUARD_PASS } from '../../src/datapath/layout.ts';
import { channelMark } from '../../src/policy/types.ts';
import { makeDp, privSkipReason, scratchPinRoot, wipe } from '../datapath/ebpf/helpers.ts';
import { frame, skbCtx, type L4, type PacketSpec } from './packets.ts';

const PASS = -1;
const DROP = 2;
const D = { in_plain: 7, in_fragment: 8 } as const;
const P = { nd: 4, in_esp: 5, in_ike: 7, tls: 16 } as const;
/** A `protocol: tls` peer channel's address (channel 3, the peer's TLS on TLS_PORT). */
const TLS_ADDR = '192.0.2.30';
const TLS_PORT = 9853;
const PEER = { v4: '192.0.2.10', v6: '2001:db8::10' };
const OTHER = { v4: '192.0.2.99', v6: '2001:db8::99' };
const CLIENT = { v4: '10.9.9.9', v6: 'fd00:9::9' };

interface Row {
  name: string;
  pkt: PacketSpec;
  verdict: number;
  drop?: number;
  pass?: number;
}

function matrix(): Row[] {
  const rows: Row[] = [];
  let n = 0;
  for (const fam of ['v4', 'v6'] as const) {
    for (const l4 of ['tcp', 'udp', 'icmp', 'esp'] as L4[]) {
      for (const prot of [true, false]) {
        const src = prot ? PEER[fam] : OTHER[fam];
        const esp = l4 === 'esp';
        rows.push({
          name: `in_${fam}_${String(++n).padStart(2, '0')}_${l4}_from_${prot ? 'protected' : 'unprotected'}`,
          pkt: { src, dst: CLIENT[fam], l4 },
          verdict: prot && !esp ? DROP : PASS,
          drop: prot && !esp ? D.in_plain : undefined,
          pass: prot && esp ? P.in_esp : undefined,
        });
      }
    }
  }
  return rows;
}

const SPECIAL: Row[] = [
  { name: 'in_ike_01_udp500_from_peer_no_socket', pkt: { src: PEER.v4, dst: CLIENT.v4, l4: 'udp', sport: 500, dport: 500 }, verdict: DROP, drop: D.in_plain },
  { name: 'in_ike_02_udp4500_4500_from_peer_no_socket', pkt: { src: PEER.v6, dst: CLIENT.v6, l4: 'udp', sport: 4500, dport: 4500 }, verdict: DROP, drop: D.in_plain },
  { name: 'in_frag_03_v4_nonfirst_udp_from_peer', pkt: { src: PEER.v4, dst: CLIENT.v4, l4: 'udp', fragOffset: 185 }, verdict: DROP, drop: D.in_fragment },
  { name: 'in_frag_04_v4_nonfirst_esp_from_peer', pkt: { src: PEER.v4, dst: CLIENT.v4, l4: 'esp', fragOffset: 185 }, verdict: PASS, pass: P.in_esp },
  { name: 'in_ext_05_v6_five_ext_headers_from_peer', pkt: { src: PEER.v6, dst: CLIENT.v6, l4: 'udp', ext: ['hop', 'dst', 'dst', 'dst', 'dst'] }, verdict: DROP, drop: D.in_fragment },
  { name: 'in_nd_06_v6_neighbour_advert_from_peer', pkt: { src: PEER.v6, dst: CLIENT.v6, l4: 'icmp', icmpType: 136 }, verdict: PASS, pass: P.nd },
  { name: 'in_nd_07_v6_echo_request_from_peer', pkt: { src: PEER.v6, dst: CLIENT.v6, l4: 'icmp', icmpType: 128 }, verdict: DROP, drop: D.in_plain },
  { name: 'in_map_08_v6_mapped_src_protected', pkt: { src: `::ffff:${PEER.v4}`, dst: CLIENT.v6, l4: 'tcp' }, verdict: DROP, drop: D.in_plain },
  // The group is the receiving client's (the destination), as the marker picks it for its packets.
  { name: 'in_grp_09_group5_client_from_group5_entry', pkt: { src: '192.0.2.20', dst: '10.1.2.3', l4: 'tcp' }, verdict: DROP, drop: D.in_plain },
  { name: 'in_grp_10_default_client_from_group5_entry', pkt: { src: '192.0.2.20', dst: CLIENT.v4, l4: 'tcp' }, verdict: PASS },
  { name: 'in_bad_11_not_ip', pkt: { src: PEER.v4, dst: CLIENT.v4, l4: 'tcp', ethertype: 0x0806 }, verdict: PASS },
  // A tls channel's address: only its peer's TLS (TCP from tls_port, answering the relay).
  { name: 'in_tls_13_tcp_from_tls_port', pkt: { src: TLS_ADDR, dst: CLIENT.v4, l4: 'tcp', sport: TLS_PORT, dport: 40000 }, verdict: PASS, pass: P.tls },
  { name: 'in_tls_14_tcp_from_other_port', pkt: { src: TLS_ADDR, dst: CLIENT.v4, l4: 'tcp', sport: 80, dport: 40000 }, verdict: DROP, drop: D.in_plain },
  { name: 'in_tls_15_udp_from_tls_port', pkt: { src: TLS_ADDR, dst: CLIENT.v4, l4: 'udp', sport: TLS_PORT, dport: 40000 }, verdict: DROP, drop: D.in_plain },
  { name: 'in_tls_16_esp_from_tls_addr', pkt: { src: TLS_ADDR, dst: CLIENT.v4, l4: 'esp' }, verdict: DROP, drop: D.in_plain },
  { name: 'in_gso_12_v4_tcp_from_peer', pkt: { src: PEER.v4, dst: CLIENT.v4, l4: 'tcp', payload: 2896 }, verdict: DROP, drop: D.in_plain },
];

const CLIENTS = [{ cidr: '10.1.0.0/16', group: 5 }];
const FILLER = Array.from({ length: CFG_CLIENTS + 1 }, (_, i) => ({ cidr: `100.64.${i}.0/24`, group: 9 }));
const MODES: [string, { cidr: string; group: number }[]][] = [
  ['inline client table', CLIENTS],
  ['LPM trie', [...CLIENTS, ...FILLER]],
];

const skip = privSkipReason();
if (skip) console.log(`bpf inbound guard: skipping: ${skip}`);
const ROOT = scratchPinRoot('inbound');
let dp: EbpfDatapath;
let bpf: Bpf;
let prog = -1;

function counter(kind: number, id: number): bigint {
  return dp.maps.counters().find((c) => c.kind === kind && c.id === id)?.packets ?? 0n;
}

(skip ? describe.skip : describe)('bpf inbound guard (dnsseal_in, BPF_PROG_RUN)', () => {
  beforeAll(async () => {
    await wipe(ROOT);
    dp = makeDp(ROOT);
    bpf = new Bpf();
    prog = bpf.objGet(new PinPaths(ROOT).prog(PROGS.in));
    const v1 = { channelId: 1, mark: channelMark(1), flags: 0 };
    dp.upsert({ group: 0, addr: PEER.v4 }, v1);
    dp.upsert({ group: 0, addr: PEER.v6 }, v1);
    dp.upsert({ group: 5, addr: '192.0.2.20' }, { channelId: 2, mark: channelMark(2), flags: 0 });
    dp.maps.setChannels([{ id: 3, mark: channelMark(3), up: true, peer: true, tls: { port: TLS_PORT } }]);
    dp.upsert({ group: 0, addr: TLS_ADDR }, { channelId: 3, mark: channelMark(3), flags: 0 });
  });

  afterAll(async () => {
    if (prog >= 0) bpf.close(prog);
    dp?.close();
    await wipe(ROOT);
  });

  for (const [label, clients] of MODES) {
    describe(`with the ${label}`, () => {
      beforeAll(() => dp.setClientGroups(clients));
      test.each([...matrix(), ...SPECIAL].map((r) => [r.name, r] as const))('%s: inbound verdict and counter', (_n, r) => {
        const drop0 = r.drop ? counter(CNT_GUARD_DROP, r.drop) : 0n;
        const pass0 = r.pass ? counter(CNT_GUARD_PASS, r.pass) : 0n;
        const gso = r.pkt.payload ? { gsoSize: 1448, gsoSegs: 2 } : {};
        const res = bpf.testRun(prog, frame(r.pkt), { ctx: skbCtx(gso) });
        expect(res.retval).toBe(r.verdict);
        if (r.drop) expect(counter(CNT_GUARD_DROP, r.drop)).toBe(drop0 + 1n);
        if (r.pass) expect(counter(CNT_GUARD_PASS, r.pass)).toBe(pass0 + 1n);
      });
    });
  }
});
