/**
 * Start-up over maps pinned by the previous layout (root only): the pre-split dnsseal_dests
 * (24-byte key and value) and the 6-kind counter map, created here with bpftool exactly as the
 * previous object declared them. Its entries must reach dnsseal_dests4/6 (the programs protect
 * them), counters and the client table survive, and a layout that cannot be migrated is refused
 * with nothing changed.
 */
import { afterAll, beforeEach, describe, expect, test } from 'bun:test';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { Bpf, BPF_ANY, possibleCpus, stable } from '../../../src/datapath/ebpf/bpf-syscall.ts';
import { LEGACY_DESTS } from '../../../src/datapath/ebpf/migrate.ts';
import { MAPS, PinPaths, PROGS } from '../../../src/datapath/ebpf/pins.ts';
import { CNT_GUARD_DROP, DEST_F_FORM_MAPPED, DEST_F_FORM_V4, DEST_F_STATIC } from '../../../src/datapath/layout.ts';
import { DnssealError } from '../../../src/util/errors.ts';
import { frame, skbCtx } from '../../bpf/packets.ts';
import { makeDp, privSkipReason, scratchPinRoot, wipe } from './helpers.ts';

const skip = privSkipReason() ?? (Bun.which('bpftool') ? undefined : 'bpftool missing');
if (skip) console.log(`datapath/ebpf/migrate: skipping: ${skip}`);
const ROOT = scratchPinRoot('migrate');
const paths = new PinPaths(ROOT);
const OLD_COUNTERS_MAX = 6 * 1024;
const DROP = 2;

function bpftool(...args: string[]): void {
  const r = Bun.spawnSync(['bpftool', ...args], { stdout: 'pipe', stderr: 'pipe' });
  if (r.exitCode !== 0) throw new Error(`bpftool ${args.join(' ')}: ${r.stderr.toString()}`);
}

/** The maps as the previous object pinned them (bpf/lib/maps.h before the per-family split). */
function pinPreviousLayout(): void {
  mkdirSync(paths.maps, { recursive: true });
  bpftool('map', 'create', `${paths.maps}/${LEGACY_DESTS}`, 'type', 'hash', 'key', '24', 'value', '24', 'entries', '4096', 'name', 'dnsseal_dests', 'flags', '1');
  bpftool('map', 'create', paths.map(MAPS.clients), 'type', 'lpm_trie', 'key', '20', 'value', '4', 'entries', '65536', 'name', 'dnsseal_clients', 'flags', '1');
  bpftool('map', 'create', paths.map(MAPS.channels), 'type', 'hash', 'key', '4', 'value', '32', 'entries', '4096', 'name', 'dnsseal_channels');
  bpftool('map', 'create', paths.map(MAPS.counters), 'type', 'percpu_array', 'key', '4', 'value', '16', 'entries', String(OLD_COUNTERS_MAX), 'name', 'dnsseal_counters');
}

/** Golden bytes of the previous struct dnsseal_dest_key / dnsseal_dest_val (24 + 24 bytes). */
function legacyEntry(group: number, family: number, addr: number[], channel: number, flags: number, lastSeenNs: bigint): [Uint8Array, Uint8Array] {
  const k = new Uint8Array(24);
  const kv = new DataView(k.buffer);
  kv.setUint32(0, group, true);
  k[4] = family;
  k.set(addr, 8);
  const v = new Uint8Array(24);
  const vv = new DataView(v.buffer);
  vv.setUint32(0, channel, true);
  vv.setUint32(4, (0x5e510000 | channel) >>> 0, true);
  vv.setUint32(8, flags >>> 0, true);
  vv.setBigUint64(16, lastSeenNs, true);
  return [k, v];
}

function put(bpf: Bpf, pin: string, key: Uint8Array, val: Uint8Array): void {
  const fd = bpf.objGet(pin);
  try {
    const k = stable(key.length);
    const v = stable(val.length);
    k.buf.set(key);
    v.buf.set(val);
    bpf.update(fd, k, v, BPF_ANY);
  } finally {
    bpf.close(fd);
  }
}

function mapId(bpf: Bpf, pin: string): number {
  const fd = bpf.objGet(pin);
  try {
    return bpf.mapInfo(fd).id;
  } finally {
    bpf.close(fd);
  }
}

const V6 = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10];
const LAST_SEEN = 5_000_000_000n;

(skip ? describe.skip : describe)('datapath/ebpf/migrate', () => {
  const bpf = skip ? (undefined as unknown as Bpf) : new Bpf();
  beforeEach(() => wipe(ROOT));
  afterAll(() => wipe(ROOT));

  function seedLegacy(): void {
    pinPreviousLayout();
    const legacy = `${paths.maps}/${LEGACY_DESTS}`;
    put(bpf, legacy, ...legacyEntry(0, 4, [192, 0, 2, 10], 1, DEST_F_FORM_V4 | DEST_F_FORM_MAPPED, LAST_SEEN));
    put(bpf, legacy, ...legacyEntry(5, 6, V6, 2, 0, 0n));
    put(bpf, legacy, ...legacyEntry(0, 4, [198, 51, 100, 0], 1, DEST_F_STATIC | DEST_F_FORM_V4, 0n));
    put(bpf, legacy, ...legacyEntry(0, 9, [1, 2, 3, 4], 1, 0, 0n)); // unknown family: matched no packet, skipped
    // a guard drop counted by the previous programs (kind 4, id 1), on CPU 0
    const ncpu = possibleCpus(readFileSync('/sys/devices/system/cpu/possible', 'utf8'));
    const cnt = new Uint8Array(16 * ncpu);
    new DataView(cnt.buffer).setBigUint64(0, 42n, true);
    const slot = new Uint8Array(4);
    new DataView(slot.buffer).setUint32(0, CNT_GUARD_DROP * 1024 + 1, true);
    put(bpf, paths.map(MAPS.counters), slot, cnt);
    // a client CIDR 10.1.0.0/16 → group 5 (IPv4-mapped, prefix 112)
    const ck = new Uint8Array(20);
    new DataView(ck.buffer).setUint32(0, 112, true);
    ck.set([0xff, 0xff, 10, 1, 0, 0], 14);
    put(bpf, paths.map(MAPS.clients), ck, new Uint8Array([5, 0, 0, 0]));
  }

  test('entries of a pinned pre-split map are in the per-family maps, and protected, when the backend starts', () => {
    seedLegacy();
    const dp = makeDp(ROOT);
    try {
      const rows = dp.list().map((e) => ({ key: `${e.key.group}/${e.key.addr}`, value: e.value, seen: e.lastSeenMs !== undefined }));
      const byKey = (a: { key: string }, b: { key: string }) => (a.key < b.key ? -1 : 1);
      expect(rows.sort(byKey)).toEqual([
        { key: '0/192.0.2.10', value: { channelId: 1, mark: 0x5e510001, flags: 0 }, seen: true },
        { key: '0/198.51.100.0', value: { channelId: 1, mark: 0x5e510001, flags: DEST_F_STATIC }, seen: false },
        { key: '0/::ffff:c000:20a', value: { channelId: 1, mark: 0x5e510001, flags: 0 }, seen: true },
        { key: '5/2001:db8::10', value: { channelId: 2, mark: 0x5e510002, flags: 0 }, seen: false },
      ].sort(byKey));
      expect(existsSync(`${paths.maps}/${LEGACY_DESTS}`)).toBe(false);
      // counters and the client table came along
      expect(dp.maps.counters().find((c) => c.kind === CNT_GUARD_DROP && c.id === 1)?.packets).toBe(42n);
      // the new programs see the entries: a clear packet from a group-5 client to the v6 entry is dropped
      const guard = bpf.objGet(paths.prog(PROGS.wanOut));
      try {
        expect(bpf.testRun(guard, frame({ src: '10.9.9.9', dst: '192.0.2.10', l4: 'tcp' }), { ctx: skbCtx() }).retval).toBe(DROP);
        dp.setClientGroups([{ cidr: 'fd00:5::/64', group: 5 }]);
        expect(bpf.testRun(guard, frame({ src: 'fd00:5::7', dst: '2001:db8::10', l4: 'udp' }), { ctx: skbCtx() }).retval).toBe(DROP);
      } finally {
        bpf.close(guard);
      }
    } finally {
      dp.close();
    }
  });

  test('the client table pinned by the previous layout is adopted when the backend starts', () => {
    seedLegacy();
    const dp = makeDp(ROOT);
    try {
      const marker = bpf.objGet(paths.prog(PROGS.lanIn));
      try {
        // nothing rewrote the client table yet: the programs walk the adopted trie (config is new, zero)
        expect(dp.maps.config().flags).toBe(0);
        dp.upsert({ group: 5, addr: '192.0.2.77' }, { channelId: 2, mark: 0x5e510002, flags: 0 });
        const res = bpf.testRun(marker, frame({ src: '10.1.2.3', dst: '192.0.2.77', l4: 'tcp' }), { ctx: skbCtx() });
        expect(new DataView(res.ctxOut!.buffer, res.ctxOut!.byteOffset).getUint32(8, true)).toBe(0x5e510002);
      } finally {
        bpf.close(marker);
      }
    } finally {
      dp.close();
    }
  });

  test('a migration cut short after the load is finished by the next start when the old map is still pinned', () => {
    seedLegacy();
    // the state a crash between load and copy leaves: new maps pinned (empty), old one still there
    bpftool('map', 'create', paths.map(MAPS.dests4), 'type', 'hash', 'key', '8', 'value', '32', 'entries', '4096', 'name', 'dnsseal_dests4', 'flags', '1');
    bpftool('map', 'create', paths.map(MAPS.dests6), 'type', 'hash', 'key', '20', 'value', '32', 'entries', '4096', 'name', 'dnsseal_dests6', 'flags', '1');
    const id4 = mapId(bpf, paths.map(MAPS.dests4));
    const dp = makeDp(ROOT);
    try {
      expect(mapId(bpf, paths.map(MAPS.dests4))).toBe(id4); // adopted, not replaced
      expect(dp.list().map((e) => `${e.key.group}/${e.key.addr}`).sort()).toEqual(['0/192.0.2.10', '0/198.51.100.0', '0/::ffff:c000:20a', '5/2001:db8::10']);
      expect(existsSync(`${paths.maps}/${LEGACY_DESTS}`)).toBe(false);
    } finally {
      dp.close();
    }
  });

  test('a pinned map of a layout that cannot be migrated is refused with what to do and every pin is left as it was', () => {
    seedLegacy();
    bpftool('map', 'create', paths.map(MAPS.dests4), 'type', 'hash', 'key', '8', 'value', '24', 'entries', '4096', 'name', 'dnsseal_dests4', 'flags', '1');
    const before = Object.fromEntries([LEGACY_DESTS, MAPS.dests4, MAPS.counters, MAPS.clients].map((m) => [m, mapId(bpf, `${paths.maps}/${m}`)]));
    let err: unknown;
    try {
      makeDp(ROOT).close();
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(DnssealError);
    expect((err as DnssealError).code).toBe('incompatible_pins');
    expect((err as DnssealError).message).toMatch(/dnsseal_dests4 .*value 24 B.*value 32 B.*dnsseal down/);
    const after = Object.fromEntries(Object.keys(before).map((m) => [m, mapId(bpf, `${paths.maps}/${m}`)]));
    expect(after).toEqual(before);
  });
});
