/**
 * Start-up: lock the pin root, load the object with libbpf, ADOPT the pinned maps (never flush:
 * entries and counters survive restarts and upgrades; maps of an older layout are migrated,
 * see migrate.ts) and pin the freshly loaded programs.
 * Attachments then point at the new programs atomically (link update / tc filter replace).
 */
import { openSync, closeSync } from 'node:fs';
import { DnssealError, errorMessage } from '../../util/errors.ts';
import type { Logger } from '../../util/log.ts';
import { DESTS_MAX } from '../layout.ts';
import type { Bpf } from './bpf-syscall.ts';
import { loadPinnedObject, pinnedMapInfo } from './lib/pinned-object.ts';
import { readBpfObject } from './object.ts';
import { planMigration, type MigrationPlan } from './migrate.ts';
import { MAPS, PROGS, PinPaths, TLS_MAPS, preparePinDirs } from './pins.ts';

export interface LoadOptions {
  paths: PinPaths;
  log: Logger;
  /** max_entries of dnsseal_dests4 / _dests6 when created (adopted maps keep their own). */
  destsCapacity?: number;
  /** Object bytes; default the embedded build/dnsseal.bpf.o. */
  object?: Uint8Array;
}

export interface Loaded {
  /** The destination maps existed and were adopted (a restart), or migrated from an older layout. */
  adopted: boolean;
  capacity: number;
}

/**
 * Takes an exclusive flock on the pin root directory; the fd must stay open while running.
 * A second `dnsseal run` on the same pins is refused here. The kernel drops the lock when the
 * process dies (kill -9 included), so a crash never leaves a stale lock.
 */
export function lockPinRoot(bpf: Bpf, paths: PinPaths): number {
  const fd = openSync(paths.root, 'r');
  if (!bpf.tryLock(fd)) {
    closeSync(fd);
    throw new DnssealError(
      'datapath',
      'busy',
      `another dnsseal process is using ${paths.root}; stop it first (a second 'dnsseal run' on the same pins is refused)`,
    );
  }
  return fd;
}

export function loadAndPin(bpf: Bpf, opts: LoadOptions): Loaded {
  const { paths, log } = opts;
  preparePinDirs(paths, log);
  const bytes = opts.object ?? readBpfObject();
  let plan: MigrationPlan | undefined;
  let capacity = opts.destsCapacity ?? DESTS_MAX;
  let adopted = false;
  try {
    // Maps pinned by another version: migrated (the pre-split dests, resized counters) or refused.
    plan = planMigration(bpf, bytes, paths, log);
    if (plan.legacyCapacity !== undefined) {
      adopted = true;
      capacity = plan.legacyCapacity;
    }
    const sizes = new Map<string, number>();
    for (const name of [MAPS.dests4, MAPS.dests6]) {
      const pinned = pinnedMapInfo(bpf, paths.map(name))?.maxEntries;
      if (pinned !== undefined) {
        adopted = true;
        if (opts.destsCapacity !== undefined && pinned !== opts.destsCapacity) {
          log.warn('datapath: keeping the pinned destination map size (dnsseal down, then run, to resize)', { map: name, pinned, requested: opts.destsCapacity });
        }
        if (name === MAPS.dests4) capacity = pinned;
      }
      sizes.set(name, pinned ?? capacity);
    }
    loadPinnedObject(bpf, {
      bytes,
      maps: [...Object.values(MAPS), ...Object.values(TLS_MAPS)].map((m) => ({ name: m, pin: paths.map(m), maxEntries: sizes.get(m) })),
      progs: Object.values(PROGS).map((p) => ({ name: p, pin: paths.prog(p) })),
    });
    // The new programs are pinned, not attached yet: the old ones keep protecting while this copies.
    plan.finish();
  } catch (err) {
    plan?.abort();
    if (err instanceof DnssealError) throw err;
    throw new DnssealError('bpf', 'load_failed', `loading the eBPF object: ${errorMessage(err)}`, { cause: err });
  }
  log.info(adopted ? 'datapath: adopted pinned maps, programs reloaded' : 'datapath: maps created and pinned', {
    pins: paths.root,
    capacity,
  });
  return { adopted, capacity };
}
