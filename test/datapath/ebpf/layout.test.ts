/**
 * src/datapath/layout.ts against the compiled object's BTF (sizes and member offsets of every
 * map key/value struct) and against bpf/dnsseal.h's #defines; golden bytes for the codecs.
 */
import { describe, expect, test } from 'bun:test';
import { existsSync, readFileSync } from 'node:fs';
import { DEST_F_BLOCKED, DEST_F_RETIRED, DEST_F_STATIC } from '../../../src/datapath/datapath.ts';
import * as L from '../../../src/datapath/layout.ts';
import * as T from '../../../src/datapath/tls-layout.ts';

const OBJ = 'build/dnsseal.bpf.o';
/** struct dnsseal_dest_key is no longer a key of the main object's maps, only of the intercept NAT's. */
const ICPT_OBJ = 'build/intercept.bpf.o';
const HEADER = 'bpf/dnsseal.h';

interface BtfType {
  id: number;
  kind: string;
  name: string;
  size?: number;
  type_id?: number;
  nr_elems?: number;
  members?: { name: string; type_id: number; bits_offset: number }[];
}

function loadBtf(obj = OBJ): Map<number, BtfType> | null {
  if (!existsSync(obj)) return null;
  const r = Bun.spawnSync(['bpftool', '-j', 'btf', 'dump', 'file', obj]);
  if (r.exitCode !== 0) return null;
  const types = (JSON.parse(r.stdout.toString()) as { types: BtfType[] }).types;
  return new Map(types.map((t) => [t.id, t]));
}

const btf = loadBtf();
if (!btf) console.log(`layout.test: skipping BTF comparison: ${OBJ} missing or bpftool unavailable (run make bpf)`);
const icptBtf = loadBtf(ICPT_OBJ);

function resolve(id: number): BtfType {
  let t = btf!.get(id)!;
  while (t.kind === 'TYPEDEF' || t.kind === 'CONST' || t.kind === 'VOLATILE') t = btf!.get(t.type_id!)!;
  return t;
}

function structByName(name: string): BtfType {
  const t = [...btf!.values()].find((x) => x.kind === 'STRUCT' && x.name === name);
  if (!t) throw new Error(`struct ${name} not in BTF`);
  return t;
}

const MIRRORS: [string, Record<string, number>][] = [
  ['dnsseal_dest4_key', L.Dest4KeyLayout],
  ['dnsseal_dest6_key', L.Dest6KeyLayout],
  ['dnsseal_dest_val', L.DestValLayout],
  ['dnsseal_config', L.ConfigLayout],
  ['dnsseal_cfg_client4', L.CfgClient4Layout],
  ['dnsseal_cfg_client6', L.CfgClient6Layout],
  ['dnsseal_client_key', L.ClientKeyLayout],
  ['dnsseal_client_val', L.ClientValLayout],
  ['dnsseal_channel_val', L.ChannelValLayout],
  ['dnsseal_counter_val', L.CounterValLayout],
  ['dnsseal_tls_config', T.TlsConfigLayout],
  ['dnsseal_tls_addr', T.TlsAddrLayout],
  ['dnsseal_ike_sock', L.IkeSockLayout],
];

/** bpf/lib/maps.h dnsseal_clock: the per-CPU clock cache of dnsseal_stamp(). */
const PRIVATE_MAPS = ['dnsseal_clock'];

describe('datapath/layout', () => {
  (btf ? test.each(MIRRORS) : test.skip.each(MIRRORS))(
    'mirror matches BTF size and offsets when the struct is %s',
    (name, layout) => {
      const s = structByName(name);
      const btfShape: Record<string, number> = { size: s.size! };
      for (const m of s.members!) btfShape[m.name] = m.bits_offset / 8;
      expect(layout).toEqual(btfShape);
    },
  );

  (icptBtf ? test : test.skip)('mirror matches BTF size and offsets when the struct is dnsseal_dest_key (intercept object)', () => {
    const s = [...icptBtf!.values()].find((x) => x.kind === 'STRUCT' && x.name === 'dnsseal_dest_key')!;
    const shape: Record<string, number> = { size: s.size! };
    for (const m of s.members!) shape[m.name] = m.bits_offset / 8;
    expect(L.DestKeyLayout).toEqual(shape as typeof L.DestKeyLayout);
  });

  (btf ? test : test.skip)('every map key and value struct has a mirror when the object is compiled', () => {
    const mirrored = new Set(MIRRORS.map(([n]) => n));
    const all = [...btf!.values()].filter((t) => t.kind === 'VAR' && t.name.startsWith('dnsseal_'));
    // Program-private maps: never pinned, no userspace reader or writer, so no mirror.
    expect(all.filter((m) => PRIVATE_MAPS.includes(m.name)).map((m) => m.name)).toEqual(PRIVATE_MAPS);
    const maps = all.filter((m) => !PRIVATE_MAPS.includes(m.name));
    expect(maps.map((m) => m.name).sort()).toEqual([
      'dnsseal_channels', 'dnsseal_clients', 'dnsseal_config', 'dnsseal_counters', 'dnsseal_dests4', 'dnsseal_dests6', 'dnsseal_ike_socks',
      'dnsseal_tls_config', 'dnsseal_tls_cookie', 'dnsseal_tls_counters', 'dnsseal_tls_orig',
    ]);
    for (const v of maps) {
      const def = resolve(v.type_id!);
      for (const m of def.members!) {
        if (m.name !== 'key' && m.name !== 'value') continue;
        const target = resolve(resolve(m.type_id).type_id!); // PTR → struct / int
        if (target.kind === 'STRUCT') expect(mirrored.has(target.name)).toBe(true);
        else expect(target.size).toBe(v.name === 'dnsseal_tls_cookie' && m.name === 'key' ? 8 : 4); // __u32 channel id / counter slot / int socket fd; __u64 socket cookie
      }
    }
  });

  (btf ? test : test.skip)('max_entries in the object equal the mirror constants when compiled', () => {
    const want: Record<string, number> = {
      dnsseal_dests4: L.DESTS_MAX,
      dnsseal_dests6: L.DESTS_MAX,
      dnsseal_config: 1,
      dnsseal_clients: L.CLIENTS_MAX,
      dnsseal_channels: L.CHANNELS_MAX,
      dnsseal_counters: L.COUNTERS_MAX,
      dnsseal_tls_config: 1,
      dnsseal_tls_cookie: T.TLS_SOCKS_MAX,
      dnsseal_tls_orig: T.TLS_SOCKS_MAX,
      dnsseal_tls_counters: T.TLS_CNT_MAX,
    };
    for (const v of [...btf!.values()].filter((t) => t.kind === 'VAR' && t.name in want)) {
      const def = resolve(v.type_id!);
      const me = def.members!.find((m) => m.name === 'max_entries')!;
      const arr = resolve(resolve(me.type_id).type_id!);
      expect([v.name, arr.nr_elems]).toEqual([v.name, want[v.name]]);
    }
  });

  const defines = new Map<string, number>();
  for (const m of readFileSync(HEADER, 'utf8').matchAll(/^#define\s+(DNSSEAL_\w+)\s+(0x[0-9a-fA-F]+|\d+)u?\b/gm)) {
    defines.set(m[1]!, Number(m[2]));
  }
  test.each([
    ['DNSSEAL_MARK_BASE', L.MARK_BASE],
    ['DNSSEAL_IKE_SOCK_CHARON', L.IKE_SOCK_CHARON],
    ['DNSSEAL_MARK_ENCRYPTED', L.MARK_ENCRYPTED],
    ['DNSSEAL_FAMILY_V4', L.FAMILY_V4],
    ['DNSSEAL_FAMILY_V6', L.FAMILY_V6],
    ['DNSSEAL_GROUP_DEFAULT', L.GROUP_DEFAULT],
    ['DNSSEAL_DEST_F_STATIC', L.DEST_F_STATIC],
    ['DNSSEAL_DEST_F_INTERCEPT', L.DEST_F_INTERCEPT],
    ['DNSSEAL_DEST_F_RETIRED', L.DEST_F_RETIRED],
    ['DNSSEAL_DEST_F_RETIRED', DEST_F_RETIRED],
    ['DNSSEAL_DEST_F_BLOCKED', L.DEST_F_BLOCKED],
    ['DNSSEAL_DEST_F_BLOCKED', DEST_F_BLOCKED],
    ['DNSSEAL_DEST_F_STATIC', DEST_F_STATIC],
    ['DNSSEAL_CFG_F_INLINE', L.CFG_F_INLINE],
    ['DNSSEAL_CFG_CLIENTS', L.CFG_CLIENTS],
    ['DNSSEAL_CNT_RETIRED', L.CNT_RETIRED],
    ['DNSSEAL_DROP_BLOCKED', 6],
    ['DNSSEAL_DEST_F_FORM_V4', L.DEST_F_FORM_V4],
    ['DNSSEAL_DEST_F_FORM_MAPPED', L.DEST_F_FORM_MAPPED],
    ['DNSSEAL_CHAN_UP', L.CHAN_UP],
    ['DNSSEAL_CHAN_F_PEER', L.CHAN_F_PEER],
    ['DNSSEAL_CHAN_F_HAS_GW', L.CHAN_F_HAS_GW],
    ['DNSSEAL_CHAN_F_TLS', L.CHAN_F_TLS],
    ['DNSSEAL_TLS_F_RELAY4', T.TLS_F_RELAY4],
    ['DNSSEAL_TLS_LOCAL_MARK', T.TLS_LOCAL_MARK],
    ['DNSSEAL_TLS_TABLE', T.TLS_TABLE],
    ['DNSSEAL_TLS_F_RELAY6', T.TLS_F_RELAY6],
    ['DNSSEAL_TLS_SOCKS_MAX', T.TLS_SOCKS_MAX],
    ['DNSSEAL_TLS_CNT_MAX', T.TLS_CNT_MAX],
    ['DNSSEAL_TLS_CNT_REDIRECTED', 1],
    ['DNSSEAL_TLS_CNT_NO_RELAY', 5],
    ['DNSSEAL_CNT_IDS', L.CNT_IDS],
    ['DNSSEAL_CNT_KINDS', L.CNT_KINDS],
    ['DNSSEAL_CNT_MARKED', L.CNT_MARKED],
    ['DNSSEAL_CNT_SOCK_MARKED', L.CNT_SOCK_MARKED],
    ['DNSSEAL_CNT_HOST_SENT', L.CNT_HOST_SENT],
    ['DNSSEAL_CNT_GUARD_DROP', L.CNT_GUARD_DROP],
    ['DNSSEAL_CNT_GUARD_PASS', L.CNT_GUARD_PASS],
    ['DNSSEAL_DROP_PLAIN_PROTECTED', 1],
    ['DNSSEAL_DROP_EXTHDR', 5],
  ] as [string, number][])('constant matches the header when it is %s', (name, value) => {
    expect(defines.get(name)).toBe(value);
  });

  test('drop and pass reason names cover every reason in the header', () => {
    const drops = [...defines].filter(([k]) => k.startsWith('DNSSEAL_DROP_')).map(([, v]) => v).sort();
    const passes = [...defines].filter(([k]) => k.startsWith('DNSSEAL_PASS_')).map(([, v]) => v).sort();
    expect(Object.keys(L.DROP_REASONS).map(Number).sort()).toEqual(drops);
    expect(Object.keys(L.PASS_REASONS).map(Number).sort()).toEqual(passes);
  });

  test('dest key encodes golden bytes when the address is IPv4 (dnsseal_dests4)', () => {
    const b = L.encodeDestKey({ group: 502, addr: { family: 4, bytes: new Uint8Array([192, 0, 2, 10]) } });
    expect(Buffer.from(b).toString('hex')).toBe('f6010000' + 'c000020a');
    expect(L.decodeDestKey(b, 4)).toEqual({ group: 502, addr: { family: 4, bytes: new Uint8Array([192, 0, 2, 10]) } });
  });

  test('dest key encodes golden bytes when the address is IPv6 (dnsseal_dests6)', () => {
    const a = new Uint8Array(16);
    a.set([0x20, 0x01, 0x0d, 0xb8]);
    a[15] = 0x10;
    const b = L.encodeDestKey({ group: 1, addr: { family: 6, bytes: a } });
    expect(Buffer.from(b).toString('hex')).toBe('01000000' + '20010db8' + '00'.repeat(11) + '10');
    expect(L.decodeDestKey(b, 6)).toEqual({ group: 1, addr: { family: 6, bytes: a } });
  });

  test('dest key encode throws when the address length does not fit the family', () => {
    expect(() => L.encodeDestKey({ group: 0, addr: { family: 4, bytes: new Uint8Array(16) } })).toThrow(/^bpf: dnsseal_dest4_key/);
  });

  test('dest value round-trips when last_seen and expires are set', () => {
    const v = { channelId: 7, mark: 0x5e510007, flags: 1 | L.DEST_F_RETIRED, lastSeenNs: 123456789012345n, expiresNs: 0x0102030405060708n };
    const b = L.encodeDestVal(v);
    expect(b.length).toBe(32);
    expect(Buffer.from(b.subarray(0, 16)).toString('hex')).toBe('07000000' + '0700515e' + '05000000' + '00000000');
    expect(Buffer.from(b.subarray(24, 32)).toString('hex')).toBe('0807060504030201');
    expect(L.decodeDestVal(b)).toEqual(v);
  });

  test('legacy dest key and value decode golden bytes when read from the pre-split map', () => {
    const k = Buffer.from('f6010000' + '04000000' + 'c000020a' + '00'.repeat(12), 'hex');
    expect(L.decodeFamilyDestKey(new Uint8Array(k))).toEqual({ group: 502, addr: { family: 4, bytes: new Uint8Array([192, 0, 2, 10]) } });
    const v = Buffer.from('07000000' + '0700515e' + '01000000' + '00000000' + '79df0d8648700000', 'hex');
    expect(L.decodeLegacyDestVal(new Uint8Array(v))).toEqual({ channelId: 7, mark: 0x5e510007, flags: 1, lastSeenNs: 123456789012345n, expiresNs: 0n });
  });

  test('config encodes golden bytes and round-trips when it holds an inline client table', () => {
    const c = {
      flags: L.CFG_F_INLINE,
      v4: [{ net: new Uint8Array([10, 1, 0, 0]), mask: new Uint8Array([255, 255, 0, 0]), group: 5 }],
      v6: [{ net: new Uint8Array(16).fill(0xfd, 0, 1), mask: new Uint8Array(16).fill(0xff, 0, 8), group: 7 }],
    };
    const b = L.encodeConfig(c);
    expect(b.length).toBe(400);
    expect(Buffer.from(b.subarray(0, 28)).toString('hex')).toBe('01000000' + '01000000' + '01000000' + '00000000' + '0a010000' + 'ffff0000' + '05000000');
    expect(Buffer.from(b.subarray(112, 148)).toString('hex')).toBe('fd' + '00'.repeat(15) + 'ff'.repeat(8) + '00'.repeat(8) + '07000000');
    expect(L.decodeConfig(b)).toEqual(c);
  });

  test('config encode throws when a family has more rows than fit', () => {
    const row = { net: new Uint8Array(4), mask: new Uint8Array(4), group: 1 };
    expect(() => L.encodeConfig({ flags: 0, v4: Array(L.CFG_CLIENTS + 1).fill(row), v6: [] })).toThrow(/^bpf: dnsseal_config/);
  });

  test('client key is IPv4-mapped with prefix + 96 when the CIDR is IPv4', () => {
    const b = L.encodeClientKey({ family: 4, bytes: new Uint8Array([10, 1, 0, 0]) }, 16);
    expect(Buffer.from(b).toString('hex')).toBe('70000000' + '00'.repeat(10) + 'ffff' + '0a010000');
  });

  test('tls counter names cover every DNSSEAL_TLS_CNT_* in the header', () => {
    const slots = [...defines].filter(([k]) => k.startsWith('DNSSEAL_TLS_CNT_') && k !== 'DNSSEAL_TLS_CNT_MAX').map(([, v]) => v).sort();
    expect(Object.keys(T.TLS_COUNTERS).map(Number).sort()).toEqual(slots);
  });

  test('channel value keeps the tls port in network order when the channel is a tls peer', () => {
    const b = L.encodeChannelVal({ mark: 0x5e510002, state: 0, flags: L.CHAN_F_TLS, tlsPort: 9853 });
    expect(Buffer.from(b.subarray(8, 16)).toString('hex')).toBe('04000000' + '0000' + '267d');
    expect(L.decodeChannelVal(b)).toEqual({ mark: 0x5e510002, state: 0, flags: L.CHAN_F_TLS, tlsPort: 9853 });
  });

  test('tls config encodes golden bytes when the relay listens on IPv4', () => {
    const b = T.encodeTlsConfig({ relayTgid: 4242, relay4: { addr: { family: 4, bytes: new Uint8Array([127, 0, 0, 1]) }, port: 9854 } });
    expect(Buffer.from(b.subarray(0, 16)).toString('hex')).toBe('01000000' + '92100000' + '7f000001' + '267e' + '0000');
    expect(T.decodeTlsConfig(b)).toEqual({ relayTgid: 4242, relay4: { addr: { family: 4, bytes: new Uint8Array([127, 0, 0, 1]) }, port: 9854 } });
  });

  test('tls address round-trips and refuses an unknown family', () => {
    const a = { addr: { family: 6 as const, bytes: new Uint8Array(16).fill(0x20, 0, 1) }, port: 443 };
    const b = T.encodeTlsAddr(a);
    expect(Buffer.from(b.subarray(0, 4)).toString('hex')).toBe('060001bb');
    expect(T.decodeTlsAddr(b)).toEqual(a);
    b[0] = 5;
    expect(() => T.decodeTlsAddr(b)).toThrow(/unknown family 5/);
  });

  test('channel value sets HAS_GW when a gateway is given', () => {
    const gw = { family: 6 as const, bytes: new Uint8Array(16).fill(0x20, 0, 1) };
    const v = L.decodeChannelVal(L.encodeChannelVal({ mark: 0x5e510001, state: 1, flags: L.CHAN_F_PEER, gateway: gw }));
    expect(v).toEqual({ mark: 0x5e510001, state: 1, flags: L.CHAN_F_PEER | L.CHAN_F_HAS_GW, gateway: gw });
  });

  test.each([
    ['dest4 key', () => L.decodeDestKey(new Uint8Array(7), 4)],
    ['dest6 key', () => L.decodeDestKey(new Uint8Array(19), 6)],
    ['legacy dest key', () => L.decodeFamilyDestKey(new Uint8Array(23))],
    ['dest value', () => L.decodeDestVal(new Uint8Array(24))],
    ['legacy dest value', () => L.decodeLegacyDestVal(new Uint8Array(23))],
    ['config', () => L.decodeConfig(new Uint8Array(399))],
    ['channel value', () => L.decodeChannelVal(new Uint8Array(31))],
    ['counter sum', () => L.sumCounterVals(new Uint8Array(16), 2)],
  ] as [string, () => unknown][])('decoder throws bpf layout error when the %s buffer is short', (_n, fn) => {
    expect(fn).toThrow(/^bpf: /);
  });

  test('legacy dest key decode throws when the family byte is unknown', () => {
    const b = new Uint8Array(24);
    b[4] = 5;
    expect(() => L.decodeFamilyDestKey(b)).toThrow(/unknown family 5/);
  });

  test('counter slot splits into kind and id when decoded', () => {
    expect(L.counterSlot(4 * L.CNT_IDS + 3)).toEqual({ kind: L.CNT_GUARD_DROP, id: 3 });
  });

  test('percpu counters sum over CPUs when several CPUs counted', () => {
    const b = new Uint8Array(32);
    const dv = new DataView(b.buffer);
    dv.setBigUint64(0, 3n, true);
    dv.setBigUint64(8, 300n, true);
    dv.setBigUint64(16, 2n, true);
    dv.setBigUint64(24, 200n, true);
    expect(L.sumCounterVals(b, 2)).toEqual({ packets: 5n, bytes: 500n });
  });
});
