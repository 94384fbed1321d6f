/**
 * Loading the object with libbpf (libbpf.so.1, the library bpftool and iproute2 use) through
 * bun:ffi, at start-up only. Used instead of spawning `bpftool prog loadall` because the loader
 * must size dnsseal_dests4/6 (max_entries), compare pinned maps with the object and adopt pinned maps, which bpftool cannot do.
 */
import { dlopen, FFIType, ptr, type Pointer } from 'bun:ffi';
import { DnssealError } from '../../../util/errors.ts';
import { errnoName } from '../bpf-syscall.ts';
import { cstr } from '../libc.ts';
import { loadFailureMessage, ownCapabilities } from './capabilities.ts';

function openLib() {
  for (const name of ['libbpf.so.1', 'libbpf.so']) {
    try {
      return dlopen(name, {
        bpf_object__open_mem: { args: [FFIType.ptr, FFIType.u64, FFIType.ptr], returns: FFIType.ptr },
        bpf_object__find_map_by_name: { args: [FFIType.ptr, FFIType.ptr], returns: FFIType.ptr },
        bpf_object__find_program_by_name: { args: [FFIType.ptr, FFIType.ptr], returns: FFIType.ptr },
        bpf_map__set_max_entries: { args: [FFIType.ptr, FFIType.u32], returns: FFIType.i32 },
        bpf_map__type: { args: [FFIType.ptr], returns: FFIType.i32 },
        bpf_map__key_size: { args: [FFIType.ptr], returns: FFIType.u32 },
        bpf_map__value_size: { args: [FFIType.ptr], returns: FFIType.u32 },
        bpf_map__max_entries: { args: [FFIType.ptr], returns: FFIType.u32 },
        bpf_map__map_flags: { args: [FFIType.ptr], returns: FFIType.u32 },
        bpf_map__set_pin_path: { args: [FFIType.ptr, FFIType.ptr], returns: FFIType.i32 },
        bpf_map__fd: { args: [FFIType.ptr], returns: FFIType.i32 },
        bpf_program__fd: { args: [FFIType.ptr], returns: FFIType.i32 },
        bpf_object__load: { args: [FFIType.ptr], returns: FFIType.i32 },
        bpf_object__close: { args: [FFIType.ptr], returns: FFIType.void },
      });
    } catch {
      /* try the next name */
    }
  }
  throw new DnssealError('bpf', 'unavailable', 'libbpf (libbpf.so.1) not found: install the libbpf1 package');
}

/** Why libbpf cannot be loaded, or undefined when it can. */
export function libbpfUnavailableReason(): string | undefined {
  try {
    openLib().close();
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

/** What libbpf compares before it reuses a pinned map (besides the BTF it does not check). */
export interface MapDef {
  type: number;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  flags: number;
}

/** One opened object. Keep it until the program fds have been pinned/attached, then close(). */
export class LibbpfObject {
  private readonly lib = openLib();
  private readonly elf: Uint8Array;
  private obj: Pointer | null;
  private readonly keep: Uint8Array[] = [];

  constructor(bytes: Uint8Array) {
    this.elf = bytes;
    this.obj = this.lib.symbols.bpf_object__open_mem(ptr(this.elf), this.elf.length, null) as Pointer | null;
    if (!this.obj) throw new DnssealError('bpf', 'load_failed', 'libbpf could not open the eBPF object');
  }

  private map(name: string): Pointer {
    const n = cstr(name);
    const m = this.lib.symbols.bpf_object__find_map_by_name(this.live(), ptr(n)) as Pointer | null;
    if (!m) throw new DnssealError('bpf', 'load_failed', `map ${name} is not in the eBPF object`);
    return m;
  }

  private live(): Pointer {
    if (!this.obj) throw new DnssealError('bpf', 'closed', 'eBPF object already closed');
    return this.obj;
  }

  setMaxEntries(name: string, n: number): void {
    const r = this.lib.symbols.bpf_map__set_max_entries(this.map(name), n);
    if (r < 0) throw new DnssealError('bpf', 'load_failed', `set max_entries of ${name}: ${errnoName(-r)}`);
  }

  /** A map's definition as it will be created (before load: after setMaxEntries). */
  mapDef(name: string): MapDef {
    const m = this.map(name);
    const l = this.lib.symbols;
    return { type: l.bpf_map__type(m), keySize: l.bpf_map__key_size(m), valueSize: l.bpf_map__value_size(m), maxEntries: l.bpf_map__max_entries(m), flags: l.bpf_map__map_flags(m) };
  }

  /** Pinned path: reused when it exists (libbpf checks type/sizes/max_entries), created and pinned otherwise. */
  setPinPath(name: string, path: string): void {
    const p = cstr(path);
    this.keep.push(p);
    const r = this.lib.symbols.bpf_map__set_pin_path(this.map(name), ptr(p));
    if (r < 0) throw new DnssealError('bpf', 'load_failed', `set pin path of ${name}: ${errnoName(-r)}`);
  }

  load(): void {
    const r = this.lib.symbols.bpf_object__load(this.live());
    // EPERM from a process without the capabilities is not about pins: say which are missing
    if (r < 0) throw new DnssealError('bpf', 'load_failed', loadFailureMessage(-r, ownCapabilities()));
  }

  progFd(name: string): number {
    const n = cstr(name);
    const p = this.lib.symbols.bpf_object__find_program_by_name(this.live(), ptr(n));
    if (!p) throw new DnssealError('bpf', 'load_failed', `program ${name} is not in the eBPF object`);
    const fd = this.lib.symbols.bpf_program__fd(p);
    if (fd < 0) throw new DnssealError('bpf', 'load_failed', `program ${name} was not loaded`);
    return fd;
  }

  mapFd(name: string): number {
    const fd = this.lib.symbols.bpf_map__fd(this.map(name));
    if (fd < 0) throw new DnssealError('bpf', 'load_failed', `map ${name} was not created`);
    return fd;
  }

  /** Closes the object and its fds (pins and attachments keep the kernel objects alive). */
  close(): void {
    if (this.obj) this.lib.symbols.bpf_object__close(this.obj);
    this.obj = null;
  }
}
