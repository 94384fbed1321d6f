/**
 * Start-up: lock the pin root, load the object with libbpf, ADOPT the pinned maps (never flush:
 * entries and counters survive restarts and upgrades) and pin the freshly loaded programs.
 * Attachments then point at the new programs atomically (link update / tc filter replace).
 */
import { openSync, closeSync } from 'node:fs';
import { DnssealError, errorMessage } from '../../util/errors.ts';
import type { Logger } from '../../util/log.ts';
import { DESTS_MAX } from '../layout.ts';
import type { Bpf } from './bpf-syscall.ts';
import { loadPinnedObject, pinnedMapInfo } from './lib/pinned-object.ts';
import { readBpfObject } from './object.ts';
import { MAPS, PROGS, PinPaths, preparePinDirs } from './pins.ts';

export interface LoadOptions {
  paths: PinPaths;
  log: Logger;
  /** max_entries of dnsseal_dests when it is created (an adopted map keeps its own). */
  destsCapacity?: number;
  /** Object bytes; default the embedded build/dnsseal.bpf.o. */
  object?: Uint8Array;
}

export interface Loaded {
  /** dnsseal_dests existed and was adopted (a restart). */
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
  let capacity = opts.destsCapacity ?? DESTS_MAX;
  const pinned = pinnedMapInfo(bpf, paths.map(MAPS.dests));
  const adopted = pinned !== undefined;
  if (pinned) {
    if (opts.destsCapacity !== undefined && pinned.maxEntries !== opts.destsCapacity) {
      log.warn('datapath: keeping the pinned destination map size (dnsseal down, then run, to resize)', {
        pinned: pinned.maxEntries,
        requested: opts.destsCapacity,
      });
    }
    capacity = pinned.maxEntries;
  }

  try {
    loadPinnedObject(bpf, {
      bytes: opts.object ?? readBpfObject(),
      maps: Object.values(MAPS).map((m) => ({ name: m, pin: paths.map(m), maxEntries: m === MAPS.dests ? capacity : undefined })),
      progs: Object.values(PROGS).map((p) => ({ name: p, pin: paths.prog(p) })),
    });
  } catch (err) {
    if (err instanceof DnssealError) throw err;
    throw new DnssealError('bpf', 'load_failed', `loading the eBPF object: ${errorMessage(err)}`, { cause: err });
  }
  log.info(adopted ? 'datapath: adopted pinned maps, programs reloaded' : 'datapath: maps created and pinned', {
    pins: paths.root,
    capacity,
  });
  return { adopted, capacity };
}
