/**
 * Where the main object's programs go, on the shared kernel library (./lib):
 * - host mode: the socket hooks and egress stamp on a cgroup, as bpf_links pinned under
 *   <root>/links/cg_<prog> (attaching twice updates the one link to the new program);
 * - gateway/intercept: the LAN marker on LAN ingress and the leak guard on the egress of EVERY
 *   interface but lo and the LAN ones: a forwarded packet to a protected address is encrypted or
 *   dropped whichever uplink the route picks (a second NIC, a policy route, a VPN interface);
 *   interfaces that appear later get it on the next poll. On the LAN ones the guard by destination
 *   only (dnsseal_lan_out: a protected address routed back out of the LAN): packets XFRM decrypted
 *   for LAN clients carry the channel mark (set_mark_in) and would be taken for marked clear ones;
 * - host mode: the guard on WAN egress (the cgroup egress hook already guards every local
 *   socket on every interface), following the default routes when `wan` was derived from them.
 * - every mode: the inbound guard (clear packets FROM protected addresses) on the ingress of every
 *   interface but lo and the LAN ones.
 * tcx links `tcx_<lan|wan|in|lanout>_<ifname>`, or clsact filters at pref TC_PREF, kept there by the
 * interface poll (InterfaceWatcher).
 * Links and filters outlive the process: kill -9 leaves every hook in place.
 */
import { openSync, closeSync } from 'node:fs';
import { DnssealError, errorMessage } from '../../util/errors.ts';
import type { Logger } from '../../util/log.ts';
import { DefaultRouteFollower } from '../guard-interfaces.ts';
import { AttachType, type Bpf } from './bpf-syscall.ts';
import { allInterfacesExcept, namedInterfaces } from './lib/interfaces.ts';
import { ensureLink, ifLinkName, openPinnedProg } from './lib/link-pin.ts';
import { TC_COMMANDS, detachClsact, pinnedTcProgram, tcKernel, type TcMode, type TcProgram } from './lib/tc-attach.ts';
import { type TcRule, TcWatcher } from './lib/tc-watcher.ts';
import { PROGS, PinPaths, TC_HANDLE, TC_PREF, type ProgName } from './pins.ts';

/** lan: the marker (LAN ingress); wan: the guard (egress); in: the inbound guard (ingress); lanout: the guard by destination (LAN egress). */
export type TcHook = 'lan' | 'wan' | 'in' | 'lanout';
export type { TcMode };

const CGROUP_HOOKS: [ProgName, number][] = [
  [PROGS.conn4, AttachType.cgroupInet4Connect],
  [PROGS.conn6, AttachType.cgroupInet6Connect],
  [PROGS.send4, AttachType.cgroupUdp4Sendmsg],
  [PROGS.send6, AttachType.cgroupUdp6Sendmsg],
  [PROGS.cgOut, AttachType.cgroupInetEgress],
  [PROGS.tlsOps, AttachType.cgroupSockOps],
  [PROGS.tlsPeer4, AttachType.cgroupInet4Getpeername],
  [PROGS.tlsPeer6, AttachType.cgroupInet6Getpeername],
];

/** The pin name of an interface's tcx link (a dot in the name becomes `:`, see pinSafeIfname). */
export function tcxLinkName(hook: TcHook, ifname: string): string {
  return ifLinkName(`tcx_${hook}`, ifname);
}

const TC_PROGS: Record<TcHook, [ProgName, 'ingress' | 'egress']> = {
  lan: [PROGS.lanIn, 'ingress'],
  wan: [PROGS.wanOut, 'egress'],
  in: [PROGS.in, 'ingress'],
  lanout: [PROGS.lanOut, 'egress'],
};

/**
 * The LAN marker (ingress), the guard (egress), the inbound guard (ingress) or the LAN egress guard
 * as a tc program of this pin root. The marker and the inbound guard share the clsact pref/handle,
 * and so do the two egress guards: they never sit on the same interface (LAN ones get the marker
 * and the LAN egress guard, the others the inbound guard and the guard).
 */
export function tcProgram(paths: PinPaths, hook: TcHook): TcProgram {
  const [name, dir] = TC_PROGS[hook];
  return pinnedTcProgram(paths, { name, dir, linkPrefix: `tcx_${hook}`, pref: TC_PREF, handle: TC_HANDLE });
}

/** The host-mode socket hooks and egress stamp on a cgroup v2 directory (normally the root). */
export function attachCgroup(bpf: Bpf, paths: PinPaths, cgroupPath: string, log: Logger): void {
  let cgFd: number;
  try {
    cgFd = openSync(cgroupPath, 'r');
  } catch (err) {
    throw new DnssealError('datapath', 'no_cgroup', `cannot open cgroup v2 directory ${cgroupPath}: ${errorMessage(err)}`);
  }
  try {
    for (const [prog, type] of CGROUP_HOOKS) {
      const progFd = openPinnedProg(bpf, paths.prog(prog), prog, 'datapath');
      try {
        const how = ensureLink(bpf, paths.link(`cg_${prog}`), progFd, () => bpf.linkCreate(progFd, cgFd, type), () => true);
        log.debug('datapath: cgroup hook attached', { prog, cgroup: cgroupPath, how });
      } finally {
        bpf.close(progFd);
      }
    }
  } finally {
    closeSync(cgFd);
  }
  log.info('datapath: host socket hooks attached', { cgroup: cgroupPath });
}

/** Removes dnsseal's clsact filters (pref TC_PREF) from every interface of this netns; returns lines. */
export function detachClsactAll(): string[] {
  return detachClsact(TC_COMMANDS, { pref: TC_PREF, programs: /dnsseal_/ });
}

export interface WatchedInterface {
  name: string;
  hook: TcHook;
}

/**
 * Where the egress guard goes: every interface but lo, or the `wan` ones (host mode); `off`
 * (tests of the marker or the NAT alone) attaches neither guard.
 */
export type GuardScope = 'everywhere' | 'wan' | 'off';

/**
 * Keeps the interfaces covered: the LAN marker on every `lan` interface; the guard on every
 * interface but lo (`everywhere`) or on every `wan` one (TcWatcher: attached now, then on every
 * poll when one appears or is re-created). With `defaultRoutes` (the `wan` list was derived from
 * the default routes, not configured), each pass also puts the `wan` guard on the default-route
 * interfaces: it follows the default route within one interval.
 */
export class InterfaceWatcher extends TcWatcher {
  constructor(bpf: Bpf, paths: PinPaths, ifaces: WatchedInterface[], log: Logger, mode?: TcMode, defaultRoutes?: () => string[], scope: GuardScope = 'wan') {
    const of = (hook: TcHook) => ifaces.filter((i) => i.hook === hook).map((i) => i.name);
    const follower = defaultRoutes && scope === 'wan' ? new DefaultRouteFollower(of('wan'), defaultRoutes, log) : undefined;
    // gateway/intercept: the LAN ones also get the guard by destination on their egress.
    const lanProgs = scope === 'everywhere' ? [tcProgram(paths, 'lan'), tcProgram(paths, 'lanout')] : [tcProgram(paths, 'lan')];
    const rules: TcRule[] = [{ name: 'lan', ifaces: namedInterfaces(of('lan')), progs: lanProgs }];
    if (scope !== 'off') {
      rules.push(
        {
          name: 'wan',
          ifaces: scope === 'everywhere' ? allInterfacesExcept(['lo', ...of('lan')]) : namedInterfaces(follower ? () => follower.names() : of('wan')),
          progs: [tcProgram(paths, 'wan')],
          onAttached: follower ? (name) => follower.attached(name) : undefined,
        },
        // Clear packets from protected addresses: on every interface they can arrive by but the LAN.
        { name: 'in', ifaces: allInterfacesExcept(['lo', ...of('lan')]), progs: [tcProgram(paths, 'in')] },
      );
    }
    super(tcKernel(bpf), rules, log, { component: 'datapath', mode });
  }
}
