/**
 * Client classification (root only, BPF_PROG_RUN on the LAN marker): the inline client table in
 * dnsseal_config must answer exactly what the dnsseal_clients LPM trie answers. Random tables
 * (seeded) of nested IPv4 / IPv6 CIDRs, IPv6 CIDRs covering the IPv4-mapped range included, and
 * sources in and around them; every (group, destination) entry has its own channel, so the mark
 * the marker sets names the group it chose. Each table runs inline, then with filler CIDRs
 * (that no source falls in) that push it into the trie.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { Bpf } from '../../src/datapath/ebpf/bpf-syscall.ts';
import { compileClientTable } from '../../src/datapath/ebpf/client-table.ts';
import type { EbpfDatapath } from '../../src/datapath/ebpf/index.ts';
import { PinPaths, PROGS } from '../../src/datapath/ebpf/pins.ts';
import { CFG_CLIENTS, CFG_F_INLINE } from '../../src/datapath/layout.ts';
import { channelMark } from '../../src/policy/types.ts';
import { makeDp, privSkipReason, scratchPinRoot, wipe } from '../datapath/ebpf/helpers.ts';
import { ctxMark, frame, skbCtx } from './packets.ts';

const POOL4 = ['0.0.0.0/0', '10.0.0.0/8', '10.1.0.0/16', '10.1.2.0/24', '10.1.2.128/25', '10.1.2.130/32', '172.16.0.0/12', '192.168.1.0/24'];
const POOL6 = ['::/0', '::/64', '::/80', '::/96', 'fd00::/8', 'fd00:5::/64', 'fd00:5::/96', 'fd00:5::1/128', '2001:db8::/32'];
const SRC4 = ['10.1.2.130', '10.1.2.129', '10.1.2.5', '10.1.9.9', '10.9.9.9', '172.16.5.5', '192.168.1.7', '8.8.8.8', '0.0.0.1'];
const SRC6 = ['fd00:5::1', 'fd00:5::2', 'fd00:5::1:0:0:1', 'fd00:6::1', '2001:db8::9', '2001:db9::1', '::1', '::2:0:0:1', '::1:0:0:0:1'];
const SRC_MAPPED = ['::ffff:10.1.2.130', '::ffff:10.9.9.9', '::ffff:8.8.8.8'];
const DST4 = '192.0.2.200';
const DST6 = '2001:db8:aaaa::200';
const GROUPS = [0, 1, 2, 3, 4];
/** No source lies in these: they only push a table past what dnsseal_config holds. */
const FILLER = Array.from({ length: CFG_CLIENTS + 1 }, (_, i) => ({ cidr: `198.18.${i}.0/24`, group: 4 }));
const TABLES = 40;

/** Small deterministic PRNG (mulberry32), so a failure names a reproducible table. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function randomTable(seed: number): { cidr: string; group: number }[] {
  const r = rng(seed);
  const pick = (pool: string[], max: number) => pool.filter(() => r() < max / pool.length);
  for (;;) {
    const rows = [...pick(POOL4, 4), ...pick(POOL6, 3)].map((cidr) => ({ cidr, group: 1 + Math.floor(r() * 4) }));
    const t = compileClientTable(rows);
    if (t && t.v4.length + t.v6.length > 0) return rows; // fits inline and is not all-default
  }
}

const skip = privSkipReason();
if (skip) console.log(`bpf client groups: skipping: ${skip}`);
const ROOT = scratchPinRoot('groups');

(skip ? describe.skip : describe)('bpf client classification (inline table vs LPM trie)', () => {
  let dp: EbpfDatapath;
  let bpf: Bpf;
  let marker = -1;

  beforeAll(async () => {
    await wipe(ROOT);
    dp = makeDp(ROOT);
    bpf = new Bpf();
    marker = bpf.objGet(new PinPaths(ROOT).prog(PROGS.lanIn));
    for (const g of GROUPS) {
      const v = { channelId: 10 + g, mark: channelMark(10 + g), flags: 0 };
      dp.upsert({ group: g, addr: DST4 }, v);
      dp.upsert({ group: g, addr: DST6 }, v);
    }
  });

  afterAll(async () => {
    if (marker >= 0) bpf.close(marker);
    dp?.close();
    await wipe(ROOT);
  });

  /** The group the marker put `src` in (from the channel of the mark it set). */
  function groupOf(src: string): number {
    const dst = src.includes(':') && !src.startsWith('::ffff:') ? DST6 : src.includes(':') ? `::ffff:${DST4}` : DST4;
    const res = bpf.testRun(marker, frame({ src, dst, l4: 'udp' }), { ctx: skbCtx() });
    return (ctxMark(res.ctxOut!) & 0xffff) - 10;
  }

  test.each(Array.from({ length: TABLES }, (_, i) => [i + 1]))('random table %i: inline and trie put every source in the same group', (seed) => {
    const table = randomTable(seed);
    const sources = [...SRC4, ...SRC6, ...SRC_MAPPED];
    dp.setClientGroups(table);
    expect(dp.maps.config().flags).toBe(CFG_F_INLINE);
    const inline = sources.map((s) => `${s}→${groupOf(s)}`);
    dp.setClientGroups([...table, ...FILLER]);
    expect(dp.maps.config().flags).toBe(0);
    const trie = sources.map((s) => `${s}→${groupOf(s)}`);
    expect({ table, groups: inline }).toEqual({ table, groups: trie });
  });

  test('every client is in the default group without a lookup when the table is empty', () => {
    dp.setClientGroups([]);
    expect(dp.maps.config()).toEqual({ flags: CFG_F_INLINE, v4: [], v6: [] });
    for (const s of [...SRC4, ...SRC6]) expect([s, groupOf(s)]).toEqual([s, 0]);
  });

  test('the trie answers again when a table grows past the inline size', () => {
    dp.setClientGroups([{ cidr: '10.1.0.0/16', group: 2 }]);
    expect(groupOf('10.1.2.3')).toBe(2);
    dp.setClientGroups([{ cidr: '10.1.0.0/16', group: 3 }, ...FILLER]);
    expect(dp.maps.config().flags).toBe(0);
    expect(groupOf('10.1.2.3')).toBe(3);
    dp.setClientGroups([{ cidr: '10.1.0.0/16', group: 1 }]);
    expect(dp.maps.config().flags).toBe(CFG_F_INLINE);
    expect(groupOf('10.1.2.3')).toBe(1);
  });
});
