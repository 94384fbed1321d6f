/** Shared set-up for the privileged intercept tests: the object, a scratch pin root, the NAT loaded. */
import { existsSync, statSync } from 'node:fs';
import { Bpf } from '../../src/datapath/ebpf/bpf-syscall.ts';
import { PinPaths } from '../../src/datapath/ebpf/pins.ts';
import { loadIntercept } from '../../src/intercept/ebpf-loader.ts';
import { EbpfInterceptStore, clockOffset } from '../../src/intercept/ebpf-store.ts';
import type { Clock } from '../../src/util/clock.ts';
import { silentLogger } from '../../src/util/log.ts';
import { makeDp, privSkipReason } from '../datapath/ebpf/helpers.ts';

export const ICPT_OBJ = 'build/intercept.bpf.o';
const SOURCES = ['bpf/intercept.bpf.c', 'bpf/dnsseal.h', 'bpf/lib/intercept_nat.h', 'bpf/lib/intercept_csum.h', 'bpf/lib/intercept_maps.h', 'bpf/lib/maps.h', 'bpf/lib/lookup.h', 'bpf/lib/common.h'];

/**
 * Compiles build/intercept.bpf.o when missing or older than its sources (same flags as the
 * Makefile's main object; until the Makefile has the rule, the tests build it themselves).
 */
export function ensureInterceptObject(): string | undefined {
  const stale = !existsSync(ICPT_OBJ) || SOURCES.some((s) => statSync(s).mtimeMs > statSync(ICPT_OBJ).mtimeMs);
  if (!stale) return undefined;
  const arch = process.arch === 'arm64' ? 'arm64' : 'x86';
  const triple = process.arch === 'arm64' ? 'aarch64-linux-gnu' : 'x86_64-linux-gnu';
  const r = Bun.spawnSync(['clang', '-target', 'bpf', '-O2', '-g', '-Wall', '-Werror', `-D__TARGET_ARCH_${arch}`, `-I/usr/include/${triple}`, '-Ibpf', '-c', 'bpf/intercept.bpf.c', '-o', ICPT_OBJ], { stderr: 'pipe' });
  return r.exitCode === 0 ? undefined : `compiling ${ICPT_OBJ} failed: ${r.stderr.toString().slice(0, 400)}`;
}

export function icptSkipReason(): string | undefined {
  return privSkipReason() ?? ensureInterceptObject();
}

/** Main datapath (maps only, nothing attached) + intercept object loaded into `pinRoot`. */
export function loadNat(pinRoot: string, clock: Clock) {
  const dp = makeDp(pinRoot);
  const bpf = new Bpf();
  const paths = new PinPaths(pinRoot);
  loadIntercept(bpf, { paths, log: silentLogger });
  const store = new EbpfInterceptStore(bpf, paths, clockOffset(bpf, clock));
  return { dp, bpf, paths, store };
}
