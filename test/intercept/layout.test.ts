/**
 * The intercept section of src/datapath/layout.ts against build/intercept.bpf.o's BTF (size and
 * member offsets of struct dnsseal_icpt_val, the map key/value types, max_entries) and the
 * #defines of bpf/dnsseal.h; golden bytes for the intercept map codecs.
 */
import { describe, expect, test } from 'bun:test';
import { readFileSync } from 'node:fs';
import * as L from '../../src/datapath/layout.ts';
import { decodeIcptKey, decodeIcptVal, encodeIcptKey, encodeIcptVal } from '../../src/intercept/ebpf-store.ts';
import { parseIPv4, parseIPv6 } from '../../src/util/ip.ts';
import { ensureInterceptObject, ICPT_OBJ } from './helpers.ts';

interface BtfType {
  id: number;
  kind: string;
  name: string;
  size?: number;
  type_id?: number;
  nr_elems?: number;
  members?: { name: string; type_id: number; bits_offset: number }[];
}

function loadBtf(): Map<number, BtfType> | null {
  if (ensureInterceptObject()) return null;
  const r = Bun.spawnSync(['bpftool', '-j', 'btf', 'dump', 'file', ICPT_OBJ]);
  if (r.exitCode !== 0) return null;
  return new Map((JSON.parse(r.stdout.toString()) as { types: BtfType[] }).types.map((t) => [t.id, t]));
}

const btf = loadBtf();
if (!btf) console.log(`intercept layout: skipping BTF comparison: ${ICPT_OBJ} cannot be built or bpftool is missing`);
const resolve = (id: number): BtfType => {
  let t = btf!.get(id)!;
  while (t.kind === 'TYPEDEF' || t.kind === 'CONST' || t.kind === 'VOLATILE') t = btf!.get(t.type_id!)!;
  return t;
};

describe('intercept/layout', () => {
  (btf ? test : test.skip)('mirror matches BTF size and offsets when the struct is dnsseal_icpt_val', () => {
    const s = [...btf!.values()].find((x) => x.kind === 'STRUCT' && x.name === 'dnsseal_icpt_val')!;
    const shape: Record<string, number> = { size: s.size! };
    for (const m of s.members!) shape[m.name] = m.bits_offset / 8;
    expect(L.IcptValLayout).toEqual(shape as typeof L.IcptValLayout);
  });

  (btf ? test : test.skip).each([
    ['dnsseal_icpt_fwd', 'dnsseal_dest_key', 'dnsseal_icpt_val', L.ICPT_MAX],
    ['dnsseal_icpt_rev', 'dnsseal_dest_key', 'dnsseal_icpt_val', L.ICPT_MAX],
    ['dnsseal_icpt_counters', 'int', 'dnsseal_counter_val', L.ICPT_CNT_KINDS * L.CNT_IDS],
  ])('map %s has key %s, value %s and max_entries %i when compiled', (name, key, value, max) => {
    const v = [...btf!.values()].find((t) => t.kind === 'VAR' && t.name === name)!;
    const def = resolve(v.type_id!);
    const member = (n: string) => resolve(resolve(def.members!.find((m) => m.name === n)!.type_id).type_id!);
    const k = member('key');
    expect(k.kind === 'STRUCT' ? k.name : 'int').toBe(key);
    expect(member('value').name).toBe(value);
    expect(member('max_entries').nr_elems).toBe(max);
  });

  const defines = new Map<string, number>();
  for (const m of readFileSync('bpf/dnsseal.h', 'utf8').matchAll(/^#define\s+(DNSSEAL_\w+)\s+(0x[0-9a-fA-F]+|\d+)u?\b/gm)) defines.set(m[1]!, Number(m[2]));
  test.each([
    ['DNSSEAL_ICPT_MAX', L.ICPT_MAX],
    ['DNSSEAL_ICPT_CNT_KINDS', L.ICPT_CNT_KINDS],
    ['DNSSEAL_ICPT_CNT_IN', L.ICPT_CNT_IN],
    ['DNSSEAL_ICPT_CNT_OUT', L.ICPT_CNT_OUT],
    ['DNSSEAL_ICPT_CNT_DROP', L.ICPT_CNT_DROP],
    ['DNSSEAL_ICPT_DROP_UNPROTECTED', 1],
    ['DNSSEAL_ICPT_DROP_FAMILY', 2],
    ['DNSSEAL_ICPT_DROP_REWRITE', 3],
  ])('header constant %s equals the mirror %i', (name, want) => {
    expect(defines.get(name)).toBe(want);
    if (name.startsWith('DNSSEAL_ICPT_DROP_')) expect(L.ICPT_DROP_REASONS[want]).toBeDefined();
  });

  test('encodes the golden bytes when the value is an IPv4 real address', () => {
    const b = encodeIcptVal({ addr: parseIPv4('192.0.2.10')!, expiresNs: 0x0102030405060708n, lastSeenNs: 0n });
    expect(Buffer.from(b).toString('hex')).toBe(
      '04000000' + 'c000020a' + '00'.repeat(12) + '00000000' + '0807060504030201' + '0000000000000000',
    );
    expect(decodeIcptVal(b)).toEqual({ addr: parseIPv4('192.0.2.10')!, expiresNs: 0x0102030405060708n, lastSeenNs: 0n });
  });

  test('encodes the golden bytes when the key is an IPv6 intercept address of group 7', () => {
    const a = parseIPv6('fd00:fe80::3090')!;
    const k = encodeIcptKey(7, a);
    expect(Buffer.from(k).toString('hex')).toBe('07000000' + '06000000' + 'fd00fe80000000000000000000003090');
    expect(decodeIcptKey(k)).toEqual({ group: 7, addr: a });
  });

  test.each([
    ['a short value', () => decodeIcptVal(new Uint8Array(39))],
    ['a value of family 5', () => decodeIcptVal(new Uint8Array(40).fill(5, 0, 1))],
    ['a short key', () => decodeIcptKey(new Uint8Array(23))],
  ])('refuses %s when decoding', (_what, fn) => {
    expect(fn).toThrow();
  });
});
