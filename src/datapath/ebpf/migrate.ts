/**
 * Pinned maps left by another dnsseal version, at start-up. libbpf reuses a pinned map only when
 * its type, key/value size, max_entries and flags equal the object's ("parameter mismatch"
 * otherwise), and a fresh map would forget every protected address. So before the object is
 * loaded, every pinned map is compared with the object's definition, and:
 *
 * - `dnsseal_dests` (one map for both families, 24-byte key and value: the layout before the
 *   per-family split and the kept expiry): left pinned while the object creates dnsseal_dests4 /
 *   _dests6, then every entry is copied into them (expiry unknown: 0, as that layout had none;
 *   last_seen and flags kept), and only then is the old pin removed. A crash in between leaves
 *   the old pin, and the next start copies again. The old programs, still attached, keep using
 *   the old map until the new ones replace them (the attach right after the load).
 * - `dnsseal_counters` with another max_entries (a counter kind added): unpinned, and its
 *   per-CPU values copied slot by slot into the new map (statistics only: a crash in between
 *   loses them, never a protection).
 * - any other difference (a map from a newer dnsseal, a dests map of another layout, …): refused
 *   with `incompatible_pins` and what to do. Nothing is changed: the attached programs keep
 *   protecting with the pinned maps.
 */
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { DnssealError } from '../../util/errors.ts';
import type { Logger } from '../../util/log.ts';
import * as L from '../layout.ts';
import { BPF_ANY, type Bpf, BpfError, type MapInfo, possibleCpus, stable } from './bpf-syscall.ts';
import { LibbpfObject, type MapDef } from './lib/libbpf.ts';
import { MAPS, type PinPaths } from './pins.ts';

/** The pre-split destination map (bpf/dnsseal.h before dnsseal_dests4/6). */
export const LEGACY_DESTS = 'dnsseal_dests';
const LEGACY_DESTS_DEF = { type: 1 /* HASH */, keySize: L.DestKeyLayout.size, valueSize: L.LegacyDestValLayout.size };

/** Maps whose max_entries is set at load from the pinned map (or the capacity), not fixed. */
const SIZED: readonly string[] = [MAPS.dests4, MAPS.dests6];

export interface MigrationPlan {
  /** max_entries the new dests maps get when they are not pinned yet (from the legacy map). */
  legacyCapacity?: number;
  /** Runs after the object was loaded (new maps pinned): copies, then removes the old pins. */
  finish(): void;
  /** Releases what the plan holds when the load failed (the old pins stay). */
  abort(): void;
}

function describe(d: Pick<MapDef, 'type' | 'keySize' | 'valueSize' | 'maxEntries' | 'flags'>): string {
  return `type ${d.type}, key ${d.keySize} B, value ${d.valueSize} B, max_entries ${d.maxEntries}, flags 0x${d.flags.toString(16)}`;
}

function incompatible(path: string, pinned: MapInfo, want: string): DnssealError {
  return new DnssealError(
    'datapath',
    'incompatible_pins',
    `the pinned map ${path} (${describe(pinned)}) is not what this dnsseal needs (${want}): ` +
      'another dnsseal version left it. Nothing was changed: the attached programs keep protecting with it. ' +
      "Run the dnsseal version that created it, or remove the pins with 'dnsseal down' and start this one " +
      '(the kernel then forgets every protected address until clients resolve them again).',
  );
}

/**
 * Compares every pinned map with the object (before load) and prepares the migrations above.
 * Throws `incompatible_pins` for a difference it cannot migrate.
 */
export function planMigration(bpf: Bpf, bytes: Uint8Array, paths: PinPaths, log: Logger): MigrationPlan {
  const defs = objectMapDefs(bytes, Object.values(MAPS));
  const info = (path: string): MapInfo => {
    const fd = bpf.objGet(path);
    try {
      return bpf.mapInfo(fd);
    } finally {
      bpf.close(fd);
    }
  };
  // 1. Check everything first: a refusal must leave every pin as it was.
  let resizeCounters: { from: number; to: number } | undefined;
  for (const name of Object.values(MAPS)) {
    const path = paths.map(name);
    if (!existsSync(path)) continue;
    const want = defs.get(name)!;
    const got = info(path);
    const sized = SIZED.includes(name);
    const shape = got.type === want.type && got.keySize === want.keySize && got.valueSize === want.valueSize && got.flags === want.flags;
    if (shape && (sized || got.maxEntries === want.maxEntries)) continue;
    if (shape && name === MAPS.counters) {
      resizeCounters = { from: got.maxEntries, to: want.maxEntries };
      continue;
    }
    throw incompatible(path, got, describe({ ...want, maxEntries: sized ? got.maxEntries : want.maxEntries }));
  }
  const legacyPath = `${paths.maps}/${LEGACY_DESTS}`;
  let legacyCapacity: number | undefined;
  if (existsSync(legacyPath)) {
    const got = info(legacyPath);
    if (got.type !== LEGACY_DESTS_DEF.type || got.keySize !== LEGACY_DESTS_DEF.keySize || got.valueSize !== LEGACY_DESTS_DEF.valueSize) {
      throw incompatible(legacyPath, got, `the per-family maps ${MAPS.dests4} / ${MAPS.dests6}, or a ${LEGACY_DESTS} of key 24 B, value 24 B to migrate`);
    }
    legacyCapacity = got.maxEntries;
  }

  // 2. Counters: hold the old map by fd and unpin it, so the load creates the new size.
  const countersPath = paths.map(MAPS.counters);
  let oldCounters: number | undefined;
  if (resizeCounters) {
    oldCounters = bpf.objGet(countersPath);
    rmSync(countersPath, { force: true });
  }
  const release = () => {
    if (oldCounters !== undefined) bpf.close(oldCounters);
    oldCounters = undefined;
  };
  return {
    legacyCapacity,
    finish() {
      try {
        if (oldCounters !== undefined && resizeCounters) copyCounters(bpf, oldCounters, countersPath, resizeCounters, log);
      } finally {
        release();
      }
      if (legacyCapacity !== undefined) copyLegacyDests(bpf, paths, log);
    },
    abort() {
      // The load failed: put the old counters back where they were.
      if (oldCounters !== undefined && !existsSync(countersPath)) {
        try {
          bpf.objPin(oldCounters, countersPath);
        } catch (err) {
          log.warn('datapath: could not re-pin the old counter map', { err: (err as Error).message });
        }
      }
      release();
    },
  };
}

/** The object's map definitions (opened, not loaded: nothing reaches the kernel). */
function objectMapDefs(bytes: Uint8Array, names: readonly string[]): Map<string, MapDef> {
  const obj = new LibbpfObject(bytes);
  try {
    return new Map(names.map((n) => [n, obj.mapDef(n)]));
  } finally {
    obj.close();
  }
}

/** Copies the pre-split dnsseal_dests into dnsseal_dests4 / _dests6, then removes its pin. */
function copyLegacyDests(bpf: Bpf, paths: PinPaths, log: Logger): void {
  const legacyPath = `${paths.maps}/${LEGACY_DESTS}`;
  const src = bpf.objGet(legacyPath);
  const dst = { 4: bpf.objGet(paths.map(MAPS.dests4)), 6: bpf.objGet(paths.map(MAPS.dests6)) };
  let copied = 0;
  let skipped = 0;
  try {
    const cur = stable(L.DestKeyLayout.size);
    const next = stable(L.DestKeyLayout.size);
    const oldVal = stable(L.LegacyDestValLayout.size);
    const k = { 4: stable(L.Dest4KeyLayout.size), 6: stable(L.Dest6KeyLayout.size) };
    const v = stable(L.DestValLayout.size);
    let first = true;
    while (bpf.nextKey(src, first ? null : cur, next)) {
      first = false;
      cur.buf.set(next.buf);
      if (!bpf.lookup(src, cur, oldVal)) continue;
      let key: L.RawDestKey;
      try {
        key = L.decodeFamilyDestKey(cur.buf);
      } catch {
        skipped++; // an unknown family never matched a packet either
        continue;
      }
      L.encodeDestKey(key, k[key.addr.family].buf);
      L.encodeDestVal(L.decodeLegacyDestVal(oldVal.buf), v.buf);
      try {
        bpf.update(dst[key.addr.family], k[key.addr.family], v, BPF_ANY);
      } catch (err) {
        const why = err instanceof BpfError && err.code === 'map_full' ? 'the new map is full' : (err as Error).message;
        throw new DnssealError(
          'datapath',
          'migration_failed',
          `copying ${legacyPath} into ${MAPS.dests4}/${MAPS.dests6} failed after ${copied} entries: ${why}. ` +
            'The old map stays pinned and its programs attached (still protecting); the next start copies again.',
          { cause: err },
        );
      }
      copied++;
    }
  } finally {
    bpf.close(src);
    bpf.close(dst[4]);
    bpf.close(dst[6]);
  }
  rmSync(legacyPath, { force: true });
  log.info('datapath: migrated the pinned destination map to the per-family layout', { from: LEGACY_DESTS, entries: copied, skipped });
}

/** Copies the old counters (held by `fd`, already unpinned) into the newly created map, slot by slot. */
function copyCounters(bpf: Bpf, fd: number, newPath: string, size: { from: number; to: number }, log: Logger): void {
  const dst = bpf.objGet(newPath);
  try {
    // Per-CPU values: one dnsseal_counter_val per possible CPU (16 bytes: no rounding).
    const ncpu = possibleCpus(readFileSync('/sys/devices/system/cpu/possible', 'utf8'));
    const k = stable(4);
    const v = stable(L.CounterValLayout.size * ncpu);
    let copied = 0;
    for (let slot = 0; slot < Math.min(size.from, size.to); slot++) {
      k.buf.set(L.encodeU32(slot));
      if (!bpf.lookup(fd, k, v) || v.buf.every((b) => b === 0)) continue;
      bpf.update(dst, k, v, BPF_ANY);
      copied++;
    }
    log.info('datapath: resized the pinned counter map (counter kinds added)', { ...size, copied });
  } finally {
    bpf.close(dst);
  }
}
