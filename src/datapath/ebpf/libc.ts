/**
 * The few libc functions the eBPF backend needs, through bun:ffi: syscall (for bpf(2)), errno,
 * flock, if_nametoindex (in the caller's network namespace) and clock_gettime(CLOCK_MONOTONIC).
 */
import { dlopen, FFIType, ptr, type Pointer } from 'bun:ffi';

export interface Libc {
  syscall(nr: number, cmd: number, attr: Pointer, size: number): number;
  errnoPtr(): Pointer;
  flock(fd: number, op: number): number;
  ifIndex(name: Uint8Array): number;
  /** clock_gettime(CLOCK_MONOTONIC) in ns: the base of bpf_ktime_get_ns(). */
  monotonicNs(): bigint;
}

/** Loads libc once per caller (no module-level state): pass the result around. */
export function openLibc(): Libc {
  const lib = dlopen('libc.so.6', {
    syscall: { args: [FFIType.i64, FFIType.i64, FFIType.ptr, FFIType.i64], returns: FFIType.i64_fast },
    __errno_location: { args: [], returns: FFIType.ptr },
    flock: { args: [FFIType.i32, FFIType.i32], returns: FFIType.i32 },
    if_nametoindex: { args: [FFIType.ptr], returns: FFIType.u32 },
    clock_gettime: { args: [FFIType.i32, FFIType.ptr], returns: FFIType.i32 },
  });
  const ts = new BigInt64Array(2);
  return {
    syscall: (nr, cmd, attr, size) => Number(lib.symbols.syscall(nr, cmd, attr, size)),
    errnoPtr: () => lib.symbols.__errno_location() as Pointer,
    flock: (fd, op) => lib.symbols.flock(fd, op),
    ifIndex: (name) => lib.symbols.if_nametoindex(ptr(name)),
    monotonicNs: () => {
      lib.symbols.clock_gettime(1 /* CLOCK_MONOTONIC */, ptr(ts));
      return ts[0]! * 1_000_000_000n + ts[1]!;
    },
  };
}

export function cstr(s: string): Uint8Array {
  const b = new Uint8Array(Buffer.byteLength(s) + 1);
  b.set(Buffer.from(s));
  return b;
}

