/**
 * Putting a pinned program on an interface's tc hook, idempotently, by the best mechanism the
 * kernel has:
 * - tcx (6.6+): a bpf_link per (program, interface), pinned as <linksDir>/<prefix>_<ifname>
 *   (link-pin.ts); attaching again updates that link in place; several programs on one hook
 *   chain (multi-attach), each returning TCX_NEXT to let the next one run;
 * - clsact (Debian 12's 6.1): the clsact qdisc and one `tc filter replace` at the program's
 *   fixed pref/handle, direct-action (replace at a fixed pref/handle is what makes it idempotent).
 * Links and filters outlive the process; `detachClsact` and the link pins' removal (teardown)
 * take them off again.
 */
import { DnssealError } from '../../../util/errors.ts';
import { AttachType, type Bpf, BpfError, EINVAL } from '../bpf-syscall.ts';
import { listInterfaces } from './interfaces.ts';
import { ensureLink, ifLinkName, type LinkBpf, type LinkHow, openPinnedProg } from './link-pin.ts';

export type TcDir = 'ingress' | 'egress';
export type TcMode = 'tcx' | 'clsact';

/** One program for one tc hook, as its feature names and pins it. */
export interface TcProgram {
  /** Program name: logs, and what `tc filter show` prints for its clsact filter. */
  name: string;
  /** Where the program is pinned (tcx opens it; clsact's `object-pinned` reads it). */
  pin: string;
  dir: TcDir;
  /** Its tcx links are pinned as `<linksDir>/<linkPrefix>_<ifname>` (see ifLinkName). */
  linksDir: string;
  linkPrefix: string;
  /** clsact fallback: one filter at this pref and handle (lower pref runs first). */
  pref: number;
  handle: number;
}

/** A program pinned in a pin root (`PinPaths`), its tcx links pinned in the root's links directory. */
export function pinnedTcProgram(root: { readonly links: string; prog(name: string): string }, p: Omit<TcProgram, 'pin' | 'linksDir'>): TcProgram {
  return { ...p, pin: root.prog(p.name), linksDir: root.links };
}

export interface CommandResult {
  ok: boolean;
  out: string;
  err: string;
}
export type CommandRunner = (argv: string[]) => CommandResult;

/** Runs a command (tc) to completion. */
export const runCommand: CommandRunner = (argv) => {
  const r = Bun.spawnSync(argv, { stdout: 'pipe', stderr: 'pipe' });
  return { ok: r.exitCode === 0, out: r.stdout.toString(), err: r.stderr.toString().trim() };
};

/** What tc attachment needs of the kernel: bpf(2), the `tc` command, the interface list. */
export interface TcKernel {
  bpf: LinkBpf & Pick<Bpf, 'ifIndex'>;
  run: CommandRunner;
  /** Interface names of this network namespace. */
  interfaces: () => string[];
}

/** The real commands: `tc` spawned, interfaces from /proc/net/dev (all detachClsact needs). */
export const TC_COMMANDS: Pick<TcKernel, 'run' | 'interfaces'> = { run: runCommand, interfaces: () => listInterfaces() };

/** The real kernel: bpf(2) through `bpf`, and TC_COMMANDS. */
export function tcKernel(bpf: LinkBpf & Pick<Bpf, 'ifIndex'>): TcKernel {
  return { bpf, ...TC_COMMANDS };
}

/** The pin path of `prog`'s tcx link on `ifname`. */
export function tcLinkPin(prog: TcProgram, ifname: string): string {
  return `${prog.linksDir}/${ifLinkName(prog.linkPrefix, ifname)}`;
}

const TCX_TYPE: Record<TcDir, number> = { ingress: AttachType.tcxIngress, egress: AttachType.tcxEgress };

export type TcResult =
  | { state: 'attached'; mode: 'tcx'; ifindex: number; how: LinkHow }
  | { state: 'attached'; mode: 'clsact'; ifindex: number }
  | { state: 'absent' };

/**
 * Attaches `prog` to `ifname`. `mode` is the caller's memory of what the kernel supports
 * (undefined = probe tcx first and fall back to clsact when the kernel has no tcx). Errors are
 * DnssealError(`component`, 'attach_failed' | 'not_loaded') or the BpfError of the kernel.
 */
export function attachTc(k: TcKernel, prog: TcProgram, ifname: string, opts: { mode?: TcMode; component: string }): TcResult {
  const ifindex = k.bpf.ifIndex(ifname);
  if (ifindex === 0) return { state: 'absent' };
  if (opts.mode !== 'clsact') {
    const progFd = openPinnedProg(k.bpf, prog.pin, prog.name, opts.component);
    try {
      const how = ensureLink(
        k.bpf,
        tcLinkPin(prog, ifname),
        progFd,
        () => k.bpf.linkCreate(progFd, ifindex, TCX_TYPE[prog.dir]),
        (linkFd) => k.bpf.linkInfo(linkFd).ifindex === ifindex,
      );
      return { state: 'attached', mode: 'tcx', ifindex, how };
    } catch (err) {
      // No tcx in this kernel (< 6.6): attach type unknown → EINVAL. Anything else is real.
      if (!(err instanceof BpfError && err.errno === EINVAL) || opts.mode === 'tcx') throw err;
    } finally {
      k.bpf.close(progFd);
    }
  }
  attachClsact(k.run, prog, ifname, opts.component);
  return { state: 'attached', mode: 'clsact', ifindex };
}

function attachClsact(run: CommandRunner, prog: TcProgram, ifname: string, component: string): void {
  const q = run(['tc', 'qdisc', 'add', 'dev', ifname, 'clsact']);
  if (!q.ok && !/exists|Exclusivity/i.test(q.err)) {
    throw new DnssealError(component, 'attach_failed', `tc qdisc add dev ${ifname} clsact: ${q.err}`);
  }
  const f = run([
    'tc', 'filter', 'replace', 'dev', ifname, prog.dir, 'pref', String(prog.pref), 'handle', String(prog.handle),
    'bpf', 'object-pinned', prog.pin, 'direct-action',
  ]);
  if (!f.ok) throw new DnssealError(component, 'attach_failed', `tc filter replace dev ${ifname} ${prog.dir}: ${f.err}`);
}

/** The clsact filters of one feature: its pref, and what `tc filter show` prints for its programs. */
export interface ClsactFilters {
  pref: number;
  /** Matched against `tc filter show … pref <pref>`: only a filter that shows one of our programs is removed. */
  programs: RegExp;
  /** Appended to each returned line: `tc filter eth0 egress (intercept)`. */
  label?: string;
}

/**
 * Removes the feature's clsact filters from every interface of this network namespace (whatever
 * put them there: the configured interfaces, the ones a poll added); returns a line per filter.
 */
export function detachClsact(k: Pick<TcKernel, 'run' | 'interfaces'>, filters: ClsactFilters): string[] {
  const out: string[] = [];
  let devs: string[];
  try {
    devs = k.interfaces();
  } catch {
    return out;
  }
  const pref = String(filters.pref);
  for (const ifname of devs) {
    for (const dir of ['ingress', 'egress'] as const) {
      const show = k.run(['tc', 'filter', 'show', 'dev', ifname, dir, 'pref', pref]);
      if (!filters.programs.test(show.out)) continue;
      if (k.run(['tc', 'filter', 'del', 'dev', ifname, dir, 'pref', pref]).ok) out.push(`tc filter ${ifname} ${dir}${filters.label ? ` (${filters.label})` : ''}`);
    }
  }
  return out;
}
