/**
 * An in-memory kernel for the tc library (src/datapath/ebpf/lib): interfaces, programs, tcx
 * bpf_links and their pins, the clsact qdisc and filters as `tc` reports them. Pins are real
 * files in a scratch directory, so the library's existsSync/rmSync/readdirSync see them as on
 * bpffs. The shared suite (tc-contract.ts) runs against this and the real kernel, so the fake
 * cannot drift from it.
 *
 * Modelled as the kernel does it: a tcx link is attached while something refers to it (an open
 * fd or its pin); it is defunct (ifindex 0) once its device is gone; link_update on a defunct
 * link fails (ENOLINK); a kernel without tcx refuses the attach type (EINVAL).
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { AttachType, BpfError, EINVAL, ENOENT, EEXIST, type LinkInfo } from '../../../../src/datapath/ebpf/bpf-syscall.ts';
import type { CommandResult, TcDir, TcKernel } from '../../../../src/datapath/ebpf/lib/tc-attach.ts';

type Obj = { kind: 'prog'; name: string; id: number } | { kind: 'link'; link: Link };
interface Link {
  id: number;
  prog: { name: string; id: number };
  ifindex: number;
  dir: TcDir;
}

const ENOLINK = 67;
const LINK_TYPE_TCX = 11;

export class FakeTcKernel implements TcKernel {
  private readonly devs = new Map<string, number>();
  private nextIfindex = 1;
  private nextId = 1;
  private nextFd = 100;
  private readonly fds = new Map<number, Obj>();
  /** Pinned objects by path (valid while the file exists). */
  private readonly pins = new Map<string, Obj>();
  private readonly links: Link[] = [];
  private readonly clsact = new Set<string>();
  /** `${ifname}/${dir}` → pref → program name. */
  private readonly filters = new Map<string, Map<number, string>>();
  /** Every command `run` was given. */
  readonly commands: string[][] = [];
  /** Refuses tcx attach types (EINVAL), as kernels before 6.6 do. */
  noTcx = false;
  /** How many tcx links were asked for (created or refused). */
  tcxAttempts = 0;

  constructor(readonly dir: string) {
    mkdirSync(dir, { recursive: true });
    this.addInterface('lo');
  }

  addInterface(name: string): number {
    const idx = this.nextIfindex++;
    this.devs.set(name, idx);
    return idx;
  }

  delInterface(name: string): void {
    const idx = this.devs.get(name);
    if (idx === undefined) throw new Error(`fake: no interface ${name}`);
    this.devs.delete(name);
    for (const l of this.links) if (l.ifindex === idx) l.ifindex = 0;
    this.clsact.delete(name);
    for (const key of [...this.filters.keys()]) if (key.startsWith(`${name}/`)) this.filters.delete(key);
  }

  /** Pins a program (what the loader does). */
  pinProg(name: string, pin: string): void {
    writeFileSync(pin, '');
    this.pins.set(pin, { kind: 'prog', name, id: this.nextId++ });
  }

  /** Program names on a hook: tcx links in creation order, then clsact filters by pref. */
  attached(ifname: string, dir: TcDir): string[] {
    const idx = this.devs.get(ifname);
    if (idx === undefined) return [];
    const live = this.links.filter((l) => l.ifindex === idx && l.dir === dir && this.referenced(l));
    const tc = [...(this.filters.get(`${ifname}/${dir}`) ?? new Map<number, string>()).entries()].sort((a, b) => a[0] - b[0]);
    return [...live.map((l) => l.prog.name), ...tc.map(([, name]) => name)];
  }

  private referenced(l: Link): boolean {
    for (const o of this.fds.values()) if (o.kind === 'link' && o.link === l) return true;
    for (const [path, o] of this.pins) if (o.kind === 'link' && o.link === l && existsSync(path)) return true;
    return false;
  }

  private obj(fd: number): Obj {
    const o = this.fds.get(fd);
    if (!o) throw new BpfError('kernel', `fake: bad fd ${fd}`, 9);
    return o;
  }

  private link(fd: number): Link {
    const o = this.obj(fd);
    if (o.kind !== 'link') throw new BpfError('kernel', `fake: fd ${fd} is not a link`, EINVAL);
    return o.link;
  }

  private prog(fd: number): { name: string; id: number } {
    const o = this.obj(fd);
    if (o.kind !== 'prog') throw new BpfError('kernel', `fake: fd ${fd} is not a program`, EINVAL);
    return o;
  }

  readonly bpf = {
    ifIndex: (name: string): number => this.devs.get(name) ?? 0,
    objGet: (path: string): number => {
      const o = existsSync(path) ? this.pins.get(path) : undefined;
      if (!o) throw new BpfError('not_found', `BPF_OBJ_GET ${path}: ENOENT`, ENOENT);
      const fd = this.nextFd++;
      this.fds.set(fd, o);
      return fd;
    },
    objPin: (fd: number, path: string): void => {
      if (existsSync(path)) throw new BpfError('exists', `BPF_OBJ_PIN ${path}: EEXIST`, EEXIST);
      const o = this.obj(fd);
      writeFileSync(path, '');
      this.pins.set(path, o);
    },
    close: (fd: number): void => {
      this.fds.delete(fd);
    },
    linkCreate: (progFd: number, target: number, attachType: number): number => {
      const prog = this.prog(progFd);
      this.tcxAttempts++;
      const dir: TcDir | undefined = attachType === AttachType.tcxIngress ? 'ingress' : attachType === AttachType.tcxEgress ? 'egress' : undefined;
      if (this.noTcx || !dir) throw new BpfError('kernel', `BPF_LINK_CREATE (attach type ${attachType}): EINVAL`, EINVAL);
      if (![...this.devs.values()].includes(target)) throw new BpfError('kernel', 'BPF_LINK_CREATE: ENODEV', 19);
      const link: Link = { id: this.nextId++, prog, ifindex: target, dir };
      this.links.push(link);
      const fd = this.nextFd++;
      this.fds.set(fd, { kind: 'link', link });
      return fd;
    },
    linkUpdate: (linkFd: number, progFd: number): void => {
      const l = this.link(linkFd);
      if (l.ifindex === 0) throw new BpfError('kernel', 'BPF_LINK_UPDATE: ENOLINK', ENOLINK);
      l.prog = this.prog(progFd);
    },
    linkInfo: (fd: number): LinkInfo => {
      const l = this.link(fd);
      return { type: LINK_TYPE_TCX, id: l.id, progId: l.prog.id, ifindex: l.ifindex, attachType: l.dir === 'ingress' ? AttachType.tcxIngress : AttachType.tcxEgress };
    },
  };

  interfaces = (): string[] => [...this.devs.keys()];

  /** The `tc` commands the library spawns: qdisc add, filter replace/show/del. */
  run = (argv: string[]): CommandResult => {
    this.commands.push(argv);
    const ok = (out = ''): CommandResult => ({ ok: true, out, err: '' });
    const fail = (err: string): CommandResult => ({ ok: false, out: '', err });
    const [tc, obj, verb, , dev, dir, , pref] = argv;
    if (tc !== 'tc') return fail(`fake: not tc: ${argv.join(' ')}`);
    if (!dev || !this.devs.has(dev)) return fail(`Cannot find device "${dev}"`);
    if (obj === 'qdisc' && verb === 'add') {
      if (this.clsact.has(dev)) return fail('Error: Exclusivity flag on, cannot modify.');
      this.clsact.add(dev);
      return ok();
    }
    const key = `${dev}/${dir}`;
    const p = Number(pref);
    if (obj === 'filter' && verb === 'replace') {
      if (!this.clsact.has(dev)) return fail('Error: Parent Qdisc doesn\'t exists.');
      const o = this.pins.get(argv[argv.indexOf('object-pinned') + 1] ?? '');
      if (!o || o.kind !== 'prog') return fail('Error: no pinned program');
      if (!this.filters.has(key)) this.filters.set(key, new Map());
      this.filters.get(key)!.set(p, o.name);
      return ok();
    }
    if (obj === 'filter' && verb === 'show') {
      const name = this.filters.get(key)?.get(p);
      return ok(name ? `filter protocol all pref ${p} bpf chain 0 \nfilter protocol all pref ${p} bpf chain 0 handle 0x1 ${name}:[${p}] direct-action not_in_hw id 1 tag 0 jited \n` : '');
    }
    if (obj === 'filter' && verb === 'del') {
      return this.filters.get(key)?.delete(p) ? ok() : fail('Error: Filter with specified priority/protocol not found.');
    }
    return fail(`fake: unknown tc command ${argv.join(' ')}`);
  };
}
