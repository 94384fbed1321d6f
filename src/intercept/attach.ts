/**
 * Attaching the intercept NAT to the LAN interfaces, idempotently, next to the LAN marker:
 * - tcx (6.6+): one ingress and one egress bpf_link per interface, pinned as
 *   <root>/links/icpt_in_<if> and icpt_out_<if> (a dot in <if> is written `:`: bpffs refuses
 *   dots); a second start updates them in place; `dnsseal down` detaches them with every other
 *   pinned link. tcx multi-attach appends after the marker;
 *   order does not matter (both return TCX_NEXT, and the NAT sets the mark itself).
 * - clsact (Debian 12's 6.1): `tc filter replace` at pref ICPT_TC_PREF (0x5e50, before the
 *   marker's 0x5e51) and handle 1, direct-action. `detachInterceptClsact()` removes those.
 */
import { rmSync } from 'node:fs';
import { pinSafeIfname } from '../datapath/ebpf/attach.ts';
import { AttachType, type Bpf, BpfError, EINVAL } from '../datapath/ebpf/bpf-syscall.ts';
import type { PinPaths } from '../datapath/ebpf/pins.ts';
import { DnssealError, errorMessage } from '../util/errors.ts';
import type { Logger } from '../util/log.ts';
import { ICPT_PROGS, type IcptProg, icptProgPath } from './ebpf-loader.ts';

export type IcptTcMode = 'tcx' | 'clsact';
export const ICPT_TC_PREF = 0x5e50;
export const ICPT_TC_HANDLE = 1;

const HOOKS: { dir: 'in' | 'out'; prog: IcptProg; tcx: number; tc: string }[] = [
  { dir: 'in', prog: ICPT_PROGS.in, tcx: AttachType.tcxIngress, tc: 'ingress' },
  { dir: 'out', prog: ICPT_PROGS.out, tcx: AttachType.tcxEgress, tc: 'egress' },
];

function run(argv: string[]): { ok: boolean; out: string; err: string } {
  const r = Bun.spawnSync(argv, { stdout: 'pipe', stderr: 'pipe' });
  return { ok: r.exitCode === 0, out: r.stdout.toString(), err: r.stderr.toString().trim() };
}

function tcxLink(bpf: Bpf, pin: string, progFd: number, ifindex: number, type: number): void {
  try {
    const fd = bpf.objGet(pin);
    try {
      if (bpf.linkInfo(fd).ifindex === ifindex) {
        bpf.linkUpdate(fd, progFd);
        return;
      }
    } finally {
      bpf.close(fd);
    }
  } catch {
    /* absent or defunct: create below */
  }
  rmSync(pin, { force: true });
  const link = bpf.linkCreate(progFd, ifindex, type);
  try {
    bpf.objPin(link, pin);
  } finally {
    bpf.close(link);
  }
}

/** Attaches both NAT programs to `ifname`; returns the mode used, or 'absent'. */
export function attachIntercept(bpf: Bpf, paths: PinPaths, ifname: string, log: Logger, mode?: IcptTcMode): IcptTcMode | 'absent' {
  const ifindex = bpf.ifIndex(ifname);
  if (ifindex === 0) return 'absent';
  if (mode !== 'clsact') {
    try {
      for (const h of HOOKS) {
        const progFd = bpf.objGet(icptProgPath(paths, h.prog));
        try {
          tcxLink(bpf, `${paths.links}/icpt_${h.dir}_${pinSafeIfname(ifname)}`, progFd, ifindex, h.tcx);
        } finally {
          bpf.close(progFd);
        }
      }
      log.info('intercept: NAT attached', { dev: ifname, mode: 'tcx' });
      return 'tcx';
    } catch (err) {
      if (!(err instanceof BpfError && err.errno === EINVAL) || mode === 'tcx') throw err;
    }
  }
  const q = run(['tc', 'qdisc', 'add', 'dev', ifname, 'clsact']);
  if (!q.ok && !/exists|Exclusivity/i.test(q.err)) throw new DnssealError('intercept', 'attach_failed', `tc qdisc add dev ${ifname} clsact: ${q.err}`);
  for (const h of HOOKS) {
    const f = run([
      'tc', 'filter', 'replace', 'dev', ifname, h.tc, 'pref', String(ICPT_TC_PREF), 'handle', String(ICPT_TC_HANDLE),
      'bpf', 'object-pinned', icptProgPath(paths, h.prog), 'direct-action',
    ]);
    if (!f.ok) throw new DnssealError('intercept', 'attach_failed', `tc filter replace dev ${ifname} ${h.tc}: ${f.err}`);
  }
  log.info('intercept: NAT attached', { dev: ifname, mode: 'clsact' });
  return 'clsact';
}

/** Removes the NAT's clsact filters (pref ICPT_TC_PREF) in this netns; returns a line per filter. */
export function detachInterceptClsact(): string[] {
  const out: string[] = [];
  const links = run(['ip', '-j', 'link', 'show']);
  if (!links.ok) return out;
  let devs: { ifname: string }[] = [];
  try {
    devs = JSON.parse(links.out) as { ifname: string }[];
  } catch {
    return out;
  }
  for (const { ifname } of devs) {
    for (const h of HOOKS) {
      const show = run(['tc', 'filter', 'show', 'dev', ifname, h.tc, 'pref', String(ICPT_TC_PREF)]);
      if (!/dnsseal_nat_(in|out)/.test(show.out)) continue;
      if (run(['tc', 'filter', 'del', 'dev', ifname, h.tc, 'pref', String(ICPT_TC_PREF)]).ok) out.push(`tc filter ${ifname} ${h.tc} (intercept)`);
    }
  }
  return out;
}

/** Keeps the LAN interfaces covered (an interface that appears later gets the NAT within one poll). */
export class InterceptAttacher {
  private readonly known = new Map<string, number>();
  private timer: ReturnType<typeof setInterval> | undefined;

  constructor(
    private readonly bpf: Bpf,
    private readonly paths: PinPaths,
    private readonly lan: string[],
    private readonly log: Logger,
    private mode?: IcptTcMode,
  ) {}

  /** One pass; returns the interfaces still absent. */
  sync(): string[] {
    const absent: string[] = [];
    for (const name of this.lan) {
      const idx = this.bpf.ifIndex(name);
      if (idx === 0) {
        this.known.delete(name);
        absent.push(name);
        continue;
      }
      if (this.known.get(name) === idx) continue;
      try {
        const r = attachIntercept(this.bpf, this.paths, name, this.log, this.mode);
        if (r === 'absent') absent.push(name);
        else {
          this.mode = r;
          this.known.set(name, idx);
        }
      } catch (err) {
        this.log.error('intercept: attaching the NAT failed', { dev: name, err: errorMessage(err) });
        absent.push(name);
      }
    }
    return absent;
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
