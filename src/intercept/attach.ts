/**
 * Where the intercept NAT goes, on the shared kernel library (src/datapath/ebpf/lib): both NAT
 * programs on every LAN interface, next to the LAN marker, kept there by the interface poll.
 * - tcx (6.6+): one ingress and one egress bpf_link per interface, pinned as
 *   <root>/links/icpt_in_<if> and icpt_out_<if> (a dot in <if> is written `:`: bpffs refuses
 *   dots); a second start updates them in place; `dnsseal down` detaches them with every other
 *   pinned link. tcx multi-attach appends after the marker;
 *   order does not matter (both return TCX_NEXT, and the NAT sets the mark itself).
 * - clsact (Debian 12's 6.1): `tc filter replace` at pref ICPT_TC_PREF (0x5e50, before the
 *   marker's 0x5e51) and handle 1, direct-action. `detachInterceptClsact()` removes those.
 */
import { namedInterfaces } from '../datapath/ebpf/lib/interfaces.ts';
import { TC_COMMANDS, detachClsact, pinnedTcProgram, type TcKernel, type TcMode, type TcProgram } from '../datapath/ebpf/lib/tc-attach.ts';
import { TcWatcher } from '../datapath/ebpf/lib/tc-watcher.ts';
import type { PinPaths } from '../datapath/ebpf/pins.ts';
import type { Logger } from '../util/log.ts';
import { ICPT_PROGS } from './ebpf-loader.ts';

export type IcptTcMode = TcMode;
export const ICPT_TC_PREF = 0x5e50;
export const ICPT_TC_HANDLE = 1;

/** The two NAT programs of this pin root as tc programs: translation on ingress, replies on egress. */
export function interceptPrograms(paths: PinPaths): TcProgram[] {
  return (['in', 'out'] as const).map((d) =>
    pinnedTcProgram(paths, { name: ICPT_PROGS[d], dir: d === 'in' ? 'ingress' : 'egress', linkPrefix: `icpt_${d}`, pref: ICPT_TC_PREF, handle: ICPT_TC_HANDLE }),
  );
}

/** Removes the NAT's clsact filters (pref ICPT_TC_PREF) in this netns; returns a line per filter. */
export function detachInterceptClsact(k: Pick<TcKernel, 'run' | 'interfaces'> = TC_COMMANDS): string[] {
  return detachClsact(k, { pref: ICPT_TC_PREF, programs: /dnsseal_nat_(in|out)/, label: 'intercept' });
}

/** Keeps the LAN interfaces covered (an interface that appears later gets the NAT within one poll). */
export function interceptWatcher(k: TcKernel, paths: PinPaths, lan: string[], log: Logger, mode?: IcptTcMode): TcWatcher {
  return new TcWatcher(k, [{ name: 'nat', ifaces: namedInterfaces(lan), progs: interceptPrograms(paths) }], log, { component: 'intercept', mode });
}
