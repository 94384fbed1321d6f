/**
 * The bpf(2) system call, in-process through bun:ffi (libc `syscall`). Every map operation on
 * the DNS path goes through here: no process is spawned per query. Errors become DnssealError
 * (component 'bpf'); a full HASH map (E2BIG / ENOSPC) becomes code 'map_full'.
 * Layouts of `union bpf_attr` follow include/uapi/linux/bpf.h (stable ABI, append-only).
 */
import { ptr, read, type Pointer } from 'bun:ffi';
import { arch } from 'node:os';
import { closeSync } from 'node:fs';
import { DnssealError } from '../../util/errors.ts';
import { cstr, openLibc, type Libc } from './libc.ts';

const SYS_BPF: Record<string, number> = { x64: 321, arm64: 280, ia32: 357, arm: 386, riscv64: 280, ppc64: 361, s390x: 351 };

export const enum BpfCmd {
  MapLookupElem = 1,
  MapUpdateElem = 2,
  MapDeleteElem = 3,
  MapGetNextKey = 4,
  ObjPin = 6,
  ObjGet = 7,
  ProgTestRun = 10,
  ProgGetFdById = 13,
  ObjGetInfoByFd = 15,
  ProgQuery = 16,
  MapLookupBatch = 24,
  MapUpdateBatch = 26,
  MapDeleteBatch = 27,
  LinkCreate = 28,
  LinkUpdate = 29,
  LinkDetach = 34,
}

/** enum bpf_attach_type values used by dnsseal. */
export const AttachType = {
  cgroupInetEgress: 1,
  cgroupInet4Connect: 10,
  cgroupInet6Connect: 11,
  cgroupUdp4Sendmsg: 14,
  cgroupUdp6Sendmsg: 15,
  cgroupSockOps: 3,
  cgroupInet4Getpeername: 29,
  cgroupInet6Getpeername: 30,
  tcxIngress: 46,
  tcxEgress: 47,
} as const;

export const BPF_ANY = 0;
export const BPF_NOEXIST = 1;
export const BPF_EXIST = 2;

const ERRNO: Record<number, string> = {
  1: 'EPERM', 2: 'ENOENT', 7: 'E2BIG', 9: 'EBADF', 12: 'ENOMEM', 13: 'EACCES', 14: 'EFAULT',
  16: 'EBUSY', 17: 'EEXIST', 22: 'EINVAL', 28: 'ENOSPC', 38: 'ENOSYS', 95: 'EOPNOTSUPP', 524: 'ENOTSUPP',
};
export const ENOENT = 2;
export const E2BIG = 7;
export const EEXIST = 17;
export const EINVAL = 22;
export const ENOSPC = 28;

/** A failed bpf() call; `errno` kept for callers that branch on it. */
export class BpfError extends DnssealError {
  readonly errno: number;
  constructor(code: string, message: string, errno: number) {
    super('bpf', code, message);
    this.name = 'BpfError';
    this.errno = errno;
  }
}

export function errnoName(e: number): string {
  return ERRNO[e] ?? `errno ${e}`;
}

/** A pointer (a non-negative integer below 2^53) as a little-endian u64, without a BigInt. */
function setPtr(dv: DataView, off: number, addr: number): void {
  const hi = Math.floor(addr / 0x1_0000_0000);
  dv.setUint32(off, addr - hi * 0x1_0000_0000, true);
  dv.setUint32(off + 4, hi, true);
}

/** A stable buffer: allocated once, its address taken once. */
function scratch(size: number): { buf: Uint8Array; dv: DataView; addr: number } {
  const buf = new Uint8Array(new ArrayBuffer(size));
  return { buf, dv: new DataView(buf.buffer), addr: ptr(buf) as unknown as number };
}

export interface MapInfo {
  type: number;
  id: number;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  flags: number;
  name: string;
}

export interface ProgInfo {
  type: number;
  id: number;
  name: string;
}

export interface LinkInfo {
  type: number;
  id: number;
  progId: number;
  /** tcx links: the interface index (0 once the device is gone). */
  ifindex?: number;
  attachType?: number;
}

export interface TestRunResult {
  retval: number;
  /** Average ns per run as reported by the kernel. */
  durationNs: number;
  dataOut: Uint8Array;
  ctxOut?: Uint8Array;
}

/** bpf(2) with one reusable attr buffer. Not re-entrant (nor is JS). */
export class Bpf {
  private readonly nr: number;
  private readonly attr = scratch(128);
  private readonly errno: Pointer;

  constructor(private readonly libc: Libc = openLibc()) {
    const nr = SYS_BPF[arch()];
    if (nr === undefined) throw new DnssealError('bpf', 'unsupported', `no bpf() syscall number known for ${arch()}`);
    this.nr = nr;
    this.errno = libc.errnoPtr();
  }

  get lib(): Libc {
    return this.libc;
  }

  /** Runs a command with the attr prepared by `fill`; returns the result or throws. */
  private call(cmd: BpfCmd, what: string, fill: (dv: DataView) => void): number {
    this.attr.buf.fill(0);
    fill(this.attr.dv);
    const r = this.libc.syscall(this.nr, cmd, this.attr.addr as unknown as Pointer, 128);
    if (r >= 0) return r;
    const e = read.i32(this.errno, 0);
    throw this.error(e, what);
  }

  private error(e: number, what: string): BpfError {
    if (e === E2BIG || e === ENOSPC) return new BpfError('map_full', `${what}: map is full (${errnoName(e)})`, e);
    if (e === ENOENT) return new BpfError('not_found', `${what}: ${errnoName(e)}`, e);
    if (e === EEXIST) return new BpfError('exists', `${what}: ${errnoName(e)}`, e);
    if (e === 1 || e === 13) return new BpfError('permission', `${what}: ${errnoName(e)} (needs root / CAP_BPF)`, e);
    return new BpfError('kernel', `${what}: ${errnoName(e)}`, e);
  }

  objGet(path: string): number {
    const p = cstr(path);
    return this.call(BpfCmd.ObjGet, `BPF_OBJ_GET ${path}`, (dv) => dv.setBigUint64(0, BigInt(ptr(p)), true));
  }

  objPin(fd: number, path: string): void {
    const p = cstr(path);
    this.call(BpfCmd.ObjPin, `BPF_OBJ_PIN ${path}`, (dv) => {
      dv.setBigUint64(0, BigInt(ptr(p)), true);
      dv.setUint32(8, fd, true);
    });
  }

  /**
   * The map element commands of the registration path, without an exception or a BigInt: the
   * attr's pointers are written as two 32-bit halves and a failure comes back as its errno
   * (0: done). A thrown BpfError costs a stack capture and a message string, several times the
   * syscall itself, and an existing key's refresh used to pay for one on every cache hit.
   */
  private elem(cmd: BpfCmd, fd: number, key: StableBuf, value: StableBuf | null, flags: number): number {
    const dv = this.attr.dv;
    this.attr.buf.fill(0);
    dv.setUint32(0, fd, true);
    setPtr(dv, 8, key.addr);
    if (value) setPtr(dv, 16, value.addr);
    dv.setUint32(24, flags, true);
    const r = this.libc.syscall(this.nr, cmd, this.attr.addr as unknown as Pointer, 128);
    return r >= 0 ? 0 : read.i32(this.errno, 0);
  }

  /** BPF_MAP_LOOKUP_ELEM: 0 (found, `value` filled) or the errno (ENOENT: absent). Never throws. */
  tryLookup(fd: number, key: StableBuf, value: StableBuf): number {
    return this.elem(BpfCmd.MapLookupElem, fd, key, value, 0);
  }

  /** BPF_MAP_UPDATE_ELEM: 0 or the errno (EEXIST, ENOENT, E2BIG…). Never throws. */
  tryUpdate(fd: number, key: StableBuf, value: StableBuf, flags: number): number {
    return this.elem(BpfCmd.MapUpdateElem, fd, key, value, flags);
  }

  /** The BpfError `errno` of a `try*` call stands for (what `call` would have thrown). */
  errorOf(errno: number, what: string): BpfError {
    return this.error(errno, what);
  }

  /** key/value must be buffers from `stable()` (their addresses are passed to the kernel). */
  lookup(fd: number, key: StableBuf, value: StableBuf): boolean {
    try {
      this.call(BpfCmd.MapLookupElem, 'BPF_MAP_LOOKUP_ELEM', (dv) => {
        dv.setUint32(0, fd, true);
        dv.setBigUint64(8, BigInt(key.addr), true);
        dv.setBigUint64(16, BigInt(value.addr), true);
      });
      return true;
    } catch (err) {
      if (err instanceof BpfError && err.errno === ENOENT) return false;
      throw err;
    }
  }

  update(fd: number, key: StableBuf, value: StableBuf, flags: number): void {
    this.call(BpfCmd.MapUpdateElem, 'BPF_MAP_UPDATE_ELEM', (dv) => {
      dv.setUint32(0, fd, true);
      dv.setBigUint64(8, BigInt(key.addr), true);
      dv.setBigUint64(16, BigInt(value.addr), true);
      dv.setBigUint64(24, BigInt(flags), true);
    });
  }

  /** Returns false when the key was absent. */
  delete(fd: number, key: StableBuf): boolean {
    try {
      this.call(BpfCmd.MapDeleteElem, 'BPF_MAP_DELETE_ELEM', (dv) => {
        dv.setUint32(0, fd, true);
        dv.setBigUint64(8, BigInt(key.addr), true);
      });
      return true;
    } catch (err) {
      if (err instanceof BpfError && err.errno === ENOENT) return false;
      throw err;
    }
  }

  /** First key when `key` is null. Returns false at the end. */
  nextKey(fd: number, key: StableBuf | null, next: StableBuf): boolean {
    try {
      this.call(BpfCmd.MapGetNextKey, 'BPF_MAP_GET_NEXT_KEY', (dv) => {
        dv.setUint32(0, fd, true);
        dv.setBigUint64(8, key ? BigInt(key.addr) : 0n, true);
        dv.setBigUint64(16, BigInt(next.addr), true);
      });
      return true;
    } catch (err) {
      if (err instanceof BpfError && err.errno === ENOENT) return false;
      throw err;
    }
  }

  /**
   * BPF_MAP_LOOKUP_BATCH: up to `count` entries after the opaque position `inBatch` (null = start).
   * Returns how many were copied and whether the map is exhausted. Hash maps need
   * in/out batch buffers of key size.
   */
  lookupBatch(fd: number, inBatch: StableBuf | null, outBatch: StableBuf, keys: StableBuf, values: StableBuf, count: number): { count: number; done: boolean } {
    let got = 0;
    let done = false;
    try {
      this.call(BpfCmd.MapLookupBatch, 'BPF_MAP_LOOKUP_BATCH', (dv) => {
        dv.setBigUint64(0, inBatch ? BigInt(inBatch.addr) : 0n, true);
        dv.setBigUint64(8, BigInt(outBatch.addr), true);
        dv.setBigUint64(16, BigInt(keys.addr), true);
        dv.setBigUint64(24, BigInt(values.addr), true);
        dv.setUint32(32, count, true);
        dv.setUint32(36, fd, true);
      });
    } catch (err) {
      if (!(err instanceof BpfError && err.errno === ENOENT)) throw err;
      done = true;
    }
    got = this.attr.dv.getUint32(32, true);
    return { count: got, done };
  }

  /** BPF_MAP_UPDATE_BATCH; returns how many were written before an error (rethrown). */
  updateBatch(fd: number, keys: StableBuf, values: StableBuf, count: number, elemFlags: number): number {
    this.call(BpfCmd.MapUpdateBatch, 'BPF_MAP_UPDATE_BATCH', (dv) => {
      dv.setBigUint64(16, BigInt(keys.addr), true);
      dv.setBigUint64(24, BigInt(values.addr), true);
      dv.setUint32(32, count, true);
      dv.setUint32(36, fd, true);
      dv.setBigUint64(40, BigInt(elemFlags), true);
    });
    return this.attr.dv.getUint32(32, true);
  }

  mapInfo(fd: number): MapInfo {
    const info = scratch(96);
    this.call(BpfCmd.ObjGetInfoByFd, 'BPF_OBJ_GET_INFO_BY_FD (map)', (dv) => {
      dv.setUint32(0, fd, true);
      dv.setUint32(4, 96, true);
      dv.setBigUint64(8, BigInt(info.addr), true);
    });
    const d = info.dv;
    return {
      type: d.getUint32(0, true),
      id: d.getUint32(4, true),
      keySize: d.getUint32(8, true),
      valueSize: d.getUint32(12, true),
      maxEntries: d.getUint32(16, true),
      flags: d.getUint32(20, true),
      name: cString(info.buf.subarray(24, 40)),
    };
  }

  progInfo(fd: number): ProgInfo {
    const info = scratch(256);
    this.call(BpfCmd.ObjGetInfoByFd, 'BPF_OBJ_GET_INFO_BY_FD (prog)', (dv) => {
      dv.setUint32(0, fd, true);
      dv.setUint32(4, 256, true);
      dv.setBigUint64(8, BigInt(info.addr), true);
    });
    return { type: info.dv.getUint32(0, true), id: info.dv.getUint32(4, true), name: cString(info.buf.subarray(64, 80)) };
  }

  linkInfo(fd: number): LinkInfo {
    const info = scratch(64);
    this.call(BpfCmd.ObjGetInfoByFd, 'BPF_OBJ_GET_INFO_BY_FD (link)', (dv) => {
      dv.setUint32(0, fd, true);
      dv.setUint32(4, 64, true);
      dv.setBigUint64(8, BigInt(info.addr), true);
    });
    const d = info.dv;
    const out: LinkInfo = { type: d.getUint32(0, true), id: d.getUint32(4, true), progId: d.getUint32(8, true) };
    if (out.type === 11 /* BPF_LINK_TYPE_TCX */) {
      out.ifindex = d.getUint32(16, true);
      out.attachType = d.getUint32(20, true);
    }
    return out;
  }

  /** BPF_LINK_CREATE: cgroup (target = cgroup dir fd) or tcx (target = ifindex). */
  linkCreate(progFd: number, target: number, attachType: number): number {
    return this.call(BpfCmd.LinkCreate, `BPF_LINK_CREATE (attach type ${attachType})`, (dv) => {
      dv.setUint32(0, progFd, true);
      dv.setUint32(4, target, true);
      dv.setUint32(8, attachType, true);
    });
  }

  linkUpdate(linkFd: number, newProgFd: number): void {
    this.call(BpfCmd.LinkUpdate, 'BPF_LINK_UPDATE', (dv) => {
      dv.setUint32(0, linkFd, true);
      dv.setUint32(4, newProgFd, true);
    });
  }

  linkDetach(linkFd: number): void {
    this.call(BpfCmd.LinkDetach, 'BPF_LINK_DETACH', (dv) => dv.setUint32(0, linkFd, true));
  }

  /** BPF_PROG_TEST_RUN on a tc/skb program: packet in, verdict, packet and __sk_buff ctx out. */
  testRun(progFd: number, data: Uint8Array, opts: { repeat?: number; ctx?: Uint8Array } = {}): TestRunResult {
    const din = stable(Math.max(data.length, 1));
    din.buf.set(data);
    const dout = stable(data.length + 256);
    const cin = opts.ctx ? stable(opts.ctx.length) : null;
    if (cin && opts.ctx) cin.buf.set(opts.ctx);
    const cout = opts.ctx ? stable(opts.ctx.length) : null;
    this.call(BpfCmd.ProgTestRun, 'BPF_PROG_TEST_RUN', (dv) => {
      dv.setUint32(0, progFd, true);
      dv.setUint32(8, data.length, true);
      dv.setUint32(12, dout.buf.length, true);
      dv.setBigUint64(16, BigInt(din.addr), true);
      dv.setBigUint64(24, BigInt(dout.addr), true);
      dv.setUint32(32, opts.repeat ?? 1, true);
      if (cin && cout) {
        dv.setUint32(40, cin.buf.length, true);
        dv.setUint32(44, cout.buf.length, true);
        dv.setBigUint64(48, BigInt(cin.addr), true);
        dv.setBigUint64(56, BigInt(cout.addr), true);
      }
    });
    const d = this.attr.dv;
    const outLen = d.getUint32(12, true);
    return {
      retval: d.getInt32(4, true),
      durationNs: d.getUint32(36, true),
      dataOut: dout.buf.slice(0, outLen),
      ctxOut: cout ? cout.buf.slice() : undefined,
    };
  }

  /** Program ids attached at a cgroup (target = dir fd) or a tcx hook (target = ifindex). */
  progQuery(target: number, attachType: number): number[] {
    const ids = stable(4 * 64);
    this.call(BpfCmd.ProgQuery, `BPF_PROG_QUERY (attach type ${attachType})`, (dv) => {
      dv.setUint32(0, target, true);
      dv.setUint32(4, attachType, true);
      dv.setBigUint64(16, BigInt(ids.addr), true);
      dv.setUint32(24, 64, true);
    });
    const n = this.attr.dv.getUint32(24, true);
    const dv = new DataView(ids.buf.buffer);
    return Array.from({ length: Math.min(n, 64) }, (_, i) => dv.getUint32(4 * i, true));
  }

  progFdById(id: number): number {
    return this.call(BpfCmd.ProgGetFdById, `BPF_PROG_GET_FD_BY_ID ${id}`, (dv) => dv.setUint32(0, id, true));
  }

  /** flock(fd, LOCK_EX|LOCK_NB); false when another process holds it. */
  tryLock(fd: number): boolean {
    return this.libc.flock(fd, 2 | 4) === 0;
  }

  /** Interface index in the current network namespace, 0 when absent. */
  ifIndex(name: string): number {
    return this.libc.ifIndex(cstr(name));
  }

  close(fd: number): void {
    try {
      closeSync(fd);
    } catch {
      /* already closed */
    }
  }
}

export interface StableBuf {
  buf: Uint8Array;
  addr: number;
}

/** A buffer whose address may be handed to the kernel repeatedly. */
export function stable(size: number): StableBuf {
  const s = scratch(size);
  return { buf: s.buf, addr: s.addr };
}

function cString(b: Uint8Array): string {
  const z = b.indexOf(0);
  return Buffer.from(z < 0 ? b : b.subarray(0, z)).toString('latin1');
}

/** Number of possible CPUs (PERCPU map values hold one slot per possible CPU). */
export function possibleCpus(text: string): number {
  let n = 0;
  for (const part of text.trim().split(',')) {
    const [a, b] = part.split('-').map(Number);
    if (a === undefined || Number.isNaN(a)) continue;
    n += (b === undefined || Number.isNaN(b) ? a : b) - a + 1;
  }
  return n;
}
