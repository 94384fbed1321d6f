/**
 * Attaching the pinned programs, idempotently:
 * - cgroup hooks through bpf_links pinned under <root>/links (attaching twice updates the one
 *   link to the new program instead of adding a second attachment);
 * - tc through tcx links where the kernel has them (6.6+), else the clsact qdisc with one
 *   `tc filter replace` at a fixed pref/handle (Debian 12's 6.1).
 * Links and filters outlive the process: kill -9 leaves every hook in place.
 */
import { openSync, closeSync, rmSync } from 'node:fs';
import { DnssealError, errorMessage } from '../../util/errors.ts';
import type { Logger } from '../../util/log.ts';
import { AttachType, Bpf, BpfError, EINVAL } from './bpf-syscall.ts';
import { openProg } from './loader.ts';
import { PROGS, PinPaths, TC_HANDLE, TC_PREF, pinExists, type ProgName } from './pins.ts';

export type TcHook = 'lan' | 'wan';
export type TcMode = 'tcx' | 'clsact';

const CGROUP_HOOKS: [ProgName, number][] = [
  [PROGS.conn4, AttachType.cgroupInet4Connect],
  [PROGS.conn6, AttachType.cgroupInet6Connect],
  [PROGS.send4, AttachType.cgroupUdp4Sendmsg],
  [PROGS.send6, AttachType.cgroupUdp6Sendmsg],
  [PROGS.cgOut, AttachType.cgroupInetEgress],
];

const TC_PROG: Record<TcHook, ProgName> = { lan: PROGS.lanIn, wan: PROGS.wanOut };
const TCX_TYPE: Record<TcHook, number> = { lan: AttachType.tcxIngress, wan: AttachType.tcxEgress };
const TC_DIR: Record<TcHook, string> = { lan: 'ingress', wan: 'egress' };

/**
 * The pin name of an interface's tcx link. bpffs refuses names with a dot (EPERM, reserved), and
 * VLAN uplinks are usually named like `eth0.100`: a dot becomes `:`, which no interface name can
 * hold (so no two interfaces share a pin). Names without a dot keep the pins they always had.
 */
export function tcxLinkName(hook: TcHook, ifname: string): string {
  return `tcx_${hook}_${pinSafeIfname(ifname)}`;
}

/** An interface name as a bpffs pin name part: a dot (refused by bpffs) becomes `:`. */
export function pinSafeIfname(ifname: string): string {
  return ifname.replaceAll('.', ':');
}

/** Points an existing pinned link at `progFd`, or creates and pins a new one. */
function ensureLink(bpf: Bpf, pin: string, progFd: number, create: () => number, stillValid: (linkFd: number) => boolean): 'updated' | 'created' {
  if (pinExists(pin)) {
    let linkFd = -1;
    try {
      linkFd = bpf.objGet(pin);
      if (stillValid(linkFd)) {
        bpf.linkUpdate(linkFd, progFd);
        return 'updated';
      }
    } catch {
      /* defunct or foreign: replace it below */
    } finally {
      if (linkFd >= 0) bpf.close(linkFd);
    }
    rmSync(pin, { force: true });
  }
  const linkFd = create();
  try {
    bpf.objPin(linkFd, pin);
  } finally {
    bpf.close(linkFd);
  }
  return 'created';
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
      const progFd = openProg(bpf, paths, prog);
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

export type TcResult = { state: 'attached'; mode: TcMode; ifindex: number } | { state: 'absent' };

/**
 * Attaches the LAN marker (ingress) or the WAN guard (egress) to one interface. `mode` is the
 * caller's memory of what the kernel supports (undefined = probe tcx first).
 */
export function attachTc(bpf: Bpf, paths: PinPaths, ifname: string, hook: TcHook, log: Logger, mode?: TcMode): TcResult {
  const ifindex = bpf.ifIndex(ifname);
  if (ifindex === 0) return { state: 'absent' };
  const prog = TC_PROG[hook];
  if (mode !== 'clsact') {
    const progFd = openProg(bpf, paths, prog);
    try {
      const how = ensureLink(
        bpf,
        paths.link(tcxLinkName(hook, ifname)),
        progFd,
        () => bpf.linkCreate(progFd, ifindex, TCX_TYPE[hook]),
        (linkFd) => bpf.linkInfo(linkFd).ifindex === ifindex,
      );
      log.info('datapath: tc program attached', { prog, dev: ifname, mode: 'tcx', how });
      return { state: 'attached', mode: 'tcx', ifindex };
    } catch (err) {
      // No tcx in this kernel (< 6.6): attach type unknown → EINVAL. Anything else is real.
      if (!(err instanceof BpfError && err.errno === EINVAL) || mode === 'tcx') throw err;
    } finally {
      bpf.close(progFd);
    }
  }
  attachClsact(paths, ifname, hook);
  log.info('datapath: tc program attached', { prog, dev: ifname, mode: 'clsact' });
  return { state: 'attached', mode: 'clsact', ifindex };
}

function run(argv: string[]): { ok: boolean; err: string } {
  const r = Bun.spawnSync(argv, { stdout: 'pipe', stderr: 'pipe' });
  return { ok: r.exitCode === 0, err: r.stderr.toString().trim() };
}

function attachClsact(paths: PinPaths, ifname: string, hook: TcHook): void {
  const q = run(['tc', 'qdisc', 'add', 'dev', ifname, 'clsact']);
  if (!q.ok && !/exists|Exclusivity/i.test(q.err)) {
    throw new DnssealError('datapath', 'attach_failed', `tc qdisc add dev ${ifname} clsact: ${q.err}`);
  }
  const f = run([
    'tc', 'filter', 'replace', 'dev', ifname, TC_DIR[hook], 'pref', String(TC_PREF), 'handle', String(TC_HANDLE),
    'bpf', 'object-pinned', paths.prog(TC_PROG[hook]), 'direct-action',
  ]);
  if (!f.ok) throw new DnssealError('datapath', 'attach_failed', `tc filter replace dev ${ifname} ${TC_DIR[hook]}: ${f.err}`);
}

/** Removes dnsseal's clsact filters (pref TC_PREF) from every interface of this netns; returns lines. */
export function detachClsactAll(): string[] {
  const out: string[] = [];
  const links = Bun.spawnSync(['ip', '-j', 'link', 'show'], { stdout: 'pipe', stderr: 'pipe' });
  if (links.exitCode !== 0) return out;
  let devs: { ifname: string }[] = [];
  try {
    devs = JSON.parse(links.stdout.toString()) as { ifname: string }[];
  } catch {
    return out;
  }
  for (const { ifname } of devs) {
    for (const dir of ['ingress', 'egress']) {
      const show = Bun.spawnSync(['tc', 'filter', 'show', 'dev', ifname, dir, 'pref', String(TC_PREF)], { stdout: 'pipe', stderr: 'pipe' });
      if (!/dnsseal_/.test(show.stdout.toString())) continue;
      if (run(['tc', 'filter', 'del', 'dev', ifname, dir, 'pref', String(TC_PREF)]).ok) out.push(`tc filter ${ifname} ${dir}`);
    }
  }
  return out;
}

export interface WatchedInterface {
  name: string;
  hook: TcHook;
}

/**
 * Keeps the configured LAN/WAN interfaces covered: attaches what is missing now and then polls
 * every `intervalMs` (an interface that appears later, or is re-created, gets its program within
 * one interval). A poll, not a netlink watch: simple, and a few seconds is acceptable here.
 *
 * With `defaultRoutes` (the `wan` list was derived from the default routes, not configured), each
 * pass also reads the default-route interfaces and adds every one not guarded yet as a WAN
 * interface: the guard follows the default route within one interval.
 */
export class InterfaceWatcher {
  private readonly known = new Map<string, number>();
  private readonly ifaces: WatchedInterface[];
  /** Interfaces added because a default route moved there, not attached yet (logged once attached). */
  private readonly announce = new Set<string>();
  private routesUnreadable = false;
  /** Attach errors by `hook:name` (the last message), so a failure that repeats on every poll is logged once. */
  private readonly failing = new Map<string, string>();
  private timer: ReturnType<typeof setInterval> | undefined;

  constructor(
    private readonly bpf: Bpf,
    private readonly paths: PinPaths,
    ifaces: WatchedInterface[],
    private readonly log: Logger,
    private mode?: TcMode,
    private readonly defaultRoutes?: () => string[],
  ) {
    this.ifaces = [...ifaces];
  }

  /**
   * Adds the default-route interfaces not watched yet. Nothing is ever removed: an interface that
   * lost its default route keeps its guard (fail closed: it may get the route back, and a guard
   * too many lets nothing leak); one that disappears is handled by sync() like any other.
   */
  private followDefaultRoutes(): void {
    if (!this.defaultRoutes) return;
    let devs: string[];
    try {
      devs = this.defaultRoutes();
    } catch (err) {
      if (!this.routesUnreadable) this.log.warn('datapath: cannot read the default routes; the guard stays where it is', { err: errorMessage(err) });
      this.routesUnreadable = true;
      return;
    }
    this.routesUnreadable = false;
    for (const name of devs) {
      if (this.ifaces.some((i) => i.hook === 'wan' && i.name === name)) continue;
      this.ifaces.push({ name, hook: 'wan' });
      this.announce.add(name);
    }
  }

  /** One pass; returns the interfaces that are still absent. */
  sync(): string[] {
    this.followDefaultRoutes();
    const absent: string[] = [];
    for (const { name, hook } of this.ifaces) {
      const key = `${hook}:${name}`;
      const now = this.bpf.ifIndex(name);
      if (now === 0) {
        if (this.known.has(key)) this.log.warn('datapath: interface gone; will attach when it returns', { dev: name, hook });
        this.known.delete(key);
        absent.push(name);
        continue;
      }
      if (this.known.get(key) === now && !this.linkDefunct(name, hook)) continue;
      try {
        const r = attachTc(this.bpf, this.paths, name, hook, this.log, this.mode);
        if (r.state === 'attached') {
          this.mode = r.mode;
          this.known.set(key, r.ifindex);
          if (this.failing.delete(key)) this.log.info('datapath: tc program attached after earlier failures', { dev: name, hook });
          if (hook === 'wan' && this.announce.delete(name)) this.log.info(`datapath: default route now via ${name}; leak guard attached`, { dev: name });
        } else absent.push(name);
      } catch (err) {
        const msg = errorMessage(err);
        if (this.failing.get(key) !== msg) {
          this.log.error('datapath: attaching tc program failed; retrying on every poll (logged again only if the error changes)', { dev: name, hook, err: msg });
          this.failing.set(key, msg);
        }
        absent.push(name);
      }
    }
    return absent;
  }

  private linkDefunct(name: string, hook: TcHook): boolean {
    if (this.mode !== 'tcx') return false;
    const pin = this.paths.link(tcxLinkName(hook, name));
    if (!pinExists(pin)) return true;
    try {
      const fd = this.bpf.objGet(pin);
      try {
        return this.bpf.linkInfo(fd).ifindex !== this.bpf.ifIndex(name);
      } finally {
        this.bpf.close(fd);
      }
    } catch {
      return true;
    }
  }

  start(intervalMs: number): void {
    this.stop();
    this.timer = setInterval(() => this.sync(), intervalMs);
    (this.timer as { unref?: () => void }).unref?.();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}
