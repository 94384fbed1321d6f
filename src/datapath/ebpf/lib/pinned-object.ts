/**
 * Loading an eBPF object whose maps and programs live in bpffs (start-up only):
 * - maps are ADOPTED when pinned (libbpf reuses the pinned map after checking type, key/value
 *   size and max_entries; entries and counters survive restarts and upgrades) and created and
 *   pinned otherwise; maps of another object are shared the same way, by pin path;
 * - programs are pinned afresh (the previous pin removed): attachments then move to the new
 *   programs atomically (link update / tc filter replace), nothing is detached in between.
 */
import { existsSync, rmSync } from 'node:fs';
import type { Bpf, MapInfo } from '../bpf-syscall.ts';
import { LibbpfObject } from './libbpf.ts';

export interface PinnedObjectSpec {
  /** The ELF object. */
  bytes: Uint8Array;
  /** Maps the object declares, by name: where they are (or will be) pinned. */
  maps: readonly { name: string; pin: string; maxEntries?: number }[];
  /** Programs to pin, by name. */
  progs: readonly { name: string; pin: string }[];
}

/** Loads the object and pins its maps and programs; errors are thrown as they come (callers wrap them). */
export function loadPinnedObject(bpf: Pick<Bpf, 'objPin'>, spec: PinnedObjectSpec): void {
  const obj = new LibbpfObject(spec.bytes);
  try {
    for (const m of spec.maps) {
      if (m.maxEntries !== undefined) obj.setMaxEntries(m.name, m.maxEntries);
      obj.setPinPath(m.name, m.pin);
    }
    obj.load();
    for (const p of spec.progs) {
      rmSync(p.pin, { force: true });
      bpf.objPin(obj.progFd(p.name), p.pin);
    }
  } finally {
    obj.close();
  }
}

/** What the kernel says of the map pinned at `pin`, or undefined when nothing is pinned there. */
export function pinnedMapInfo(bpf: Pick<Bpf, 'objGet' | 'mapInfo' | 'close'>, pin: string): MapInfo | undefined {
  if (!existsSync(pin)) return undefined;
  const fd = bpf.objGet(pin);
  try {
    return bpf.mapInfo(fd);
  } finally {
    bpf.close(fd);
  }
}

/** Opens pinned maps by key; all or nothing (the ones opened are closed again when one fails). */
export function openPinnedMaps<K extends string>(bpf: Pick<Bpf, 'objGet' | 'close'>, pins: Record<K, string>): Record<K, number> {
  const fds: Partial<Record<K, number>> = {};
  try {
    for (const [k, pin] of Object.entries(pins) as [K, string][]) fds[k] = bpf.objGet(pin);
  } catch (err) {
    for (const fd of Object.values(fds) as number[]) bpf.close(fd);
    throw err;
  }
  return fds as Record<K, number>;
}
