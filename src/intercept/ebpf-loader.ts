/**
 * Loads build/intercept.bpf.o next to the main object (start-up only): the shared maps
 * (dnsseal_dests4/6, _clients, _channels, _counters, _config) are pinned by the main loader and REUSED here
 * by pin path, so both objects see one table; dnsseal_icpt_fwd / _rev are adopted when pinned
 * (a restart keeps every mapping) and created otherwise. Programs are pinned under
 * <root>/progs/dnsseal_nat_in|out, where attach.ts finds them.
 * Must run after the main datapath is up (createEbpfDatapath), which created the shared maps.
 */
import { existsSync, readFileSync } from 'node:fs';
import { type Bpf, BpfError } from '../datapath/ebpf/bpf-syscall.ts';
import { loadPinnedObject, pinnedMapInfo } from '../datapath/ebpf/lib/pinned-object.ts';
import { MAPS, type PinPaths } from '../datapath/ebpf/pins.ts';
import { DnssealError, errorMessage } from '../util/errors.ts';
import type { Logger } from '../util/log.ts';
import { ICPT_MAPS } from './ebpf-store.ts';

/** Program names stay within the kernel's 15 characters (BPF_OBJ_NAME_LEN), so bpftool/tc show them whole. */
export const ICPT_PROGS = { in: 'dnsseal_nat_in', out: 'dnsseal_nat_out' } as const;
export type IcptProg = (typeof ICPT_PROGS)[keyof typeof ICPT_PROGS];

export function icptProgPath(paths: PinPaths, prog: IcptProg): string {
  return paths.prog(prog);
}

export interface InterceptLoadOptions {
  paths: PinPaths;
  log: Logger;
  /** Object bytes (default: read `objectPath`). */
  object?: Uint8Array;
  /** Default build/intercept.bpf.o (the daemon passes the embedded path from object.ts). */
  objectPath?: string;
}

export function readInterceptObject(path = 'build/intercept.bpf.o'): Uint8Array {
  try {
    return new Uint8Array(readFileSync(path));
  } catch (err) {
    throw new DnssealError('intercept', 'object_missing', `cannot read ${path}: ${errorMessage(err)} (build it: see Makefile rule for build/intercept.bpf.o)`, { cause: err });
  }
}

/** Returns whether the intercept maps were adopted (a restart) rather than created. */
export function loadIntercept(bpf: Bpf, opts: InterceptLoadOptions): { adopted: boolean } {
  const { paths, log } = opts;
  const capacity = new Map<string, number>();
  for (const name of [MAPS.dests4, MAPS.dests6]) {
    const destsPin = paths.map(name);
    const dests = pinnedMapInfo(bpf, destsPin);
    if (!dests) {
      throw new DnssealError('intercept', 'not_loaded', `${destsPin} is not pinned: start the main eBPF datapath before the intercept NAT`);
    }
    capacity.set(name, dests.maxEntries);
  }
  const adopted = existsSync(paths.map(ICPT_MAPS.fwd));
  try {
    loadPinnedObject(bpf, {
      bytes: opts.object ?? readInterceptObject(opts.objectPath),
      maps: [
        ...Object.values(MAPS).map((m) => ({ name: m, pin: paths.map(m), maxEntries: capacity.get(m) })),
        ...Object.values(ICPT_MAPS).map((m) => ({ name: m, pin: paths.map(m) })),
      ],
      progs: Object.values(ICPT_PROGS).map((p) => ({ name: p, pin: icptProgPath(paths, p) })),
    });
  } catch (err) {
    if (err instanceof DnssealError && !(err instanceof BpfError)) throw err;
    throw new DnssealError('intercept', 'load_failed', `loading the intercept eBPF object: ${errorMessage(err)}`, { cause: err });
  }
  log.info(adopted ? 'intercept: adopted pinned NAT maps, programs reloaded' : 'intercept: NAT maps created and pinned', { pins: paths.root });
  return { adopted };
}
