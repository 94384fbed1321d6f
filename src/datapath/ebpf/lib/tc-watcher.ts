/**
 * Keeps tc programs on the interfaces they belong to. A watcher holds rules, each "these
 * programs (hook by hook) on these interfaces", where the interfaces are a list of names
 * (configured, or asked again on every poll) or every interface of the namespace except some:
 *
 *   new TcWatcher(tcKernel(bpf), [
 *     { name: 'lan', ifaces: namedInterfaces(['br-lan']), progs: [marker] },
 *     { name: 'guard', ifaces: allInterfacesExcept(['lo', 'br-lan']), progs: [guardOut, guardIn] },
 *   ], log, { component: 'datapath' });
 *
 * sync() attaches what is missing now; start() repeats it every interval, so an interface that
 * appears later, or is deleted and re-created, gets its programs on the first pass after it
 * shows up. A poll, not a netlink watch: simple, and a few seconds is acceptable here. A pass
 * also re-attaches a tcx link someone else detached (defunct, or its pin removed), logs an
 * attach error once per distinct message (not on every poll), and unpins the links of
 * interfaces that went away (they do nothing any more). Nothing is ever detached from an
 * interface that is still there: fail closed.
 */
import { readdirSync } from 'node:fs';
import { errorMessage } from '../../../util/errors.ts';
import type { Logger } from '../../../util/log.ts';
import { type InterfaceSet, resolveInterfaces } from './interfaces.ts';
import { linkIfindex, pruneDefunctLink } from './link-pin.ts';
import { attachTc, type TcKernel, type TcMode, type TcProgram, tcLinkPin } from './tc-attach.ts';

export interface TcRule {
  /** Names the rule in logs (`hook`) and in the watcher's state: 'lan', 'wan', 'nat'. */
  name: string;
  ifaces: InterfaceSet;
  /** What every covered interface gets, attached in this order. */
  progs: readonly TcProgram[];
  /** Called when the rule's programs were (re)attached to `ifname`. */
  onAttached?: (ifname: string) => void;
}

export interface TcWatcherOptions {
  /** Component of log lines and errors ('datapath', 'intercept'). */
  component: string;
  /** Forced attach mechanism (default: tcx when the kernel has it, else clsact; remembered). */
  mode?: TcMode;
}

export class TcWatcher {
  /** ifindex each `rule:ifname` was covered at. */
  private readonly known = new Map<string, number>();
  /** Attach errors by `rule:ifname` (the last message), so a failure that repeats on every poll is logged once. */
  private readonly failing = new Map<string, string>();
  /** Link pins of interfaces that went away, unpinned once their link is defunct. */
  private readonly stale = new Set<string>();
  private swept = false;
  private mode: TcMode | undefined;
  private timer: ReturnType<typeof setInterval> | undefined;

  constructor(
    private readonly kernel: TcKernel,
    private readonly rules: readonly TcRule[],
    private readonly log: Logger,
    private readonly opts: TcWatcherOptions,
  ) {
    this.mode = opts.mode;
  }

  /** The attach mechanism in use (undefined until the first attach when not forced). */
  get tcMode(): TcMode | undefined {
    return this.mode;
  }

  /** One pass; returns the named interfaces that do not exist (yet). */
  sync(): string[] {
    if (!this.swept) this.sweep();
    this.pruneStale();
    const absent = new Set<string>();
    let present: string[] | undefined;
    const interfaces = () => (present ??= this.kernel.interfaces());
    for (const rule of this.rules) {
      let names: string[];
      try {
        names = resolveInterfaces(rule.ifaces, interfaces);
      } catch (err) {
        this.failed(`${rule.name}:*`, { hook: rule.name }, err);
        continue;
      }
      this.failing.delete(`${rule.name}:*`);
      for (const name of names) if (!this.cover(rule, name)) absent.add(name);
      const listed = new Set(names);
      for (const key of this.known.keys()) {
        const name = key.slice(rule.name.length + 1);
        if (key.startsWith(`${rule.name}:`) && !listed.has(name)) this.forget(rule, name);
      }
    }
    return [...absent];
  }

  /** Puts the rule's programs on `name` unless they are there; false when it is absent or failed. */
  private cover(rule: TcRule, name: string): boolean {
    const { component } = this.opts;
    const key = `${rule.name}:${name}`;
    const now = this.kernel.bpf.ifIndex(name);
    if (now === 0) {
      if (this.known.has(key)) this.forget(rule, name);
      return rule.ifaces.kind === 'allExcept'; // gone between the listing and now: nothing to report
    }
    if (this.known.get(key) === now && !this.defunct(rule, name, now)) return true;
    try {
      for (const prog of rule.progs) {
        const r = attachTc(this.kernel, prog, name, { mode: this.mode, component });
        if (r.state === 'absent') return rule.ifaces.kind === 'allExcept';
        this.mode = r.mode;
        this.log.info(`${component}: tc program attached`, { prog: prog.name, dev: name, mode: r.mode, ...(r.mode === 'tcx' ? { how: r.how } : {}) });
        this.stale.delete(tcLinkPin(prog, name));
      }
    } catch (err) {
      this.failed(key, { dev: name, hook: rule.name }, err);
      return false;
    }
    this.known.set(key, now);
    if (this.failing.delete(key)) this.log.info(`${component}: tc program attached after earlier failures`, { dev: name, hook: rule.name });
    rule.onAttached?.(name);
    return true;
  }

  private failed(key: string, fields: Record<string, string>, err: unknown): void {
    const msg = errorMessage(err);
    if (this.failing.get(key) === msg) return;
    this.log.error(`${this.opts.component}: attaching tc program failed; retrying on every poll (logged again only if the error changes)`, { ...fields, err: msg });
    this.failing.set(key, msg);
  }

  /** `name` is gone or no longer covered by `rule`: forget it, and unpin its links once defunct. */
  private forget(rule: TcRule, name: string): void {
    this.known.delete(`${rule.name}:${name}`);
    const fields = { dev: name, hook: rule.name };
    if (rule.ifaces.kind === 'named') this.log.warn(`${this.opts.component}: interface gone; will attach when it returns`, fields);
    else this.log.debug(`${this.opts.component}: interface gone`, fields);
    for (const prog of rule.progs) this.stale.add(tcLinkPin(prog, name));
    this.pruneStale();
  }

  private pruneStale(): void {
    for (const pin of this.stale) {
      if (linkIfindex(this.kernel.bpf, pin) === undefined || pruneDefunctLink(this.kernel.bpf, pin)) this.stale.delete(pin);
    }
  }

  /** Once: unpins the defunct links a previous run left for interfaces that are gone now. */
  private sweep(): void {
    this.swept = true;
    for (const prog of this.rules.flatMap((r) => r.progs)) {
      let entries: string[] = [];
      try {
        entries = readdirSync(prog.linksDir);
      } catch {
        continue;
      }
      for (const e of entries) if (e.startsWith(`${prog.linkPrefix}_`)) pruneDefunctLink(this.kernel.bpf, `${prog.linksDir}/${e}`);
    }
  }

  /** A tcx link of the rule on `name` is missing, unreadable, or attached elsewhere (defunct). */
  private defunct(rule: TcRule, name: string, ifindex: number): boolean {
    if (this.mode !== 'tcx') return false;
    return rule.progs.some((p) => linkIfindex(this.kernel.bpf, tcLinkPin(p, name)) !== ifindex);
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
