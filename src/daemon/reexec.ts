/**
 * `memory_plan` applied (src/daemon/heap-plan.ts says what and why): the process starts itself
 * again with execve(2) through bun:ffi — same pid, same arguments, the environment with the
 * JSC option — before the daemon opens anything. Works for the compiled executable and for
 * `bun src/main.ts` alike: /proc/self/exe and /proc/self/cmdline are whatever the kernel started.
 *
 * Harmless when the option goes: Bun refuses to start at all with a BUN_JSC_ variable it does
 * not know (exit 1, before any JavaScript), and after execve there is no way back. So the option
 * is tried first in a throw-away child (the same executable as Bun's CLI, BUN_BE_BUN=1, which
 * the compiled executable honours); when that child does not print its word, or anything else
 * fails, the daemon warns and runs with the engine's default.
 */
import { dlopen, FFIType, ptr, read } from 'bun:ffi';
import { readFileSync } from 'node:fs';
import { totalmem } from 'node:os';
import { errorMessage } from '../util/errors.ts';
import type { Logger } from '../util/log.ts';
import { heapPlan, JSC_RAM_VAR, parseCmdline, type HeapPlan } from './heap-plan.ts';

const SELF = '/proc/self/exe';
const PROBE_WORD = 'dnsseal-jsc-option-ok';

/** What applying a plan touches outside: tests replace it. */
export interface ReexecDeps {
  /** Runs `SELF` as Bun's CLI with `env` and this script; true when it printed PROBE_WORD and exited 0. */
  probe(env: Record<string, string>): boolean;
  /** execve(2); returns only when it failed (the errno). */
  execve(path: string, argv: readonly string[], env: readonly string[]): number;
}

export const realReexecDeps: ReexecDeps = {
  probe(env) {
    try {
      const r = Bun.spawnSync([SELF, '-e', `process.stdout.write(${JSON.stringify(PROBE_WORD)})`], {
        env: { ...env, BUN_BE_BUN: '1' },
        stdin: 'ignore',
        stdout: 'pipe',
        stderr: 'ignore',
        timeout: 10_000,
      });
      return r.exitCode === 0 && r.stdout.toString() === PROBE_WORD;
    } catch {
      return false;
    }
  },
  execve(path, argv, env) {
    const lib = dlopen('libc.so.6', {
      execve: { args: [FFIType.ptr, FFIType.ptr, FFIType.ptr], returns: FFIType.i32 },
      __errno_location: { args: [], returns: FFIType.ptr },
    });
    try {
      // NUL-terminated strings and NULL-terminated pointer arrays; `keep` holds them until the call
      const keep: Buffer[] = [];
      const cstr = (s: string, enc: BufferEncoding) => {
        const b = Buffer.concat([Buffer.from(s, enc), Buffer.alloc(1)]);
        keep.push(b);
        return BigInt(ptr(b));
      };
      const vec = (xs: readonly string[], enc: BufferEncoding) => {
        const v = new BigUint64Array(xs.length + 1);
        xs.forEach((x, i) => (v[i] = cstr(x, enc)));
        return v;
      };
      // argv came from /proc/self/cmdline as latin1 (any byte round-trips); the environment is text
      const argvV = vec(argv, 'latin1');
      const envV = vec(env, 'utf8');
      lib.symbols.execve(ptr(Buffer.from(path + '\0')), ptr(argvV), ptr(envV));
      const errno = read.i32(lib.symbols.__errno_location()!, 0);
      keep.length = 0;
      return errno;
    } finally {
      lib.close();
    }
  },
};

/**
 * Applies `memory_plan` (MB; 0: off) to this process: returns (having logged what it did) when
 * nothing is to be done or it could not be done; does not return when the process started again.
 */
export function applyMemoryPlan(planMb: number, log: Logger, deps: ReexecDeps = realReexecDeps, env: Readonly<Record<string, string | undefined>> = process.env): HeapPlan {
  let argv: string[] | undefined;
  try {
    argv = parseCmdline(readFileSync('/proc/self/cmdline'));
  } catch {
    argv = undefined;
  }
  const plan = heapPlan({ planMb, env, argv, machineMb: Math.floor(totalmem() / (1024 * 1024)) });
  if (plan.kind === 'keep') {
    if (plan.why === 'applied') log.debug('memory_plan: the JavaScript heap is sized for it', { ram_bytes: plan.ramBytes });
    else if (plan.why === 'operator') log.info(`memory_plan: ${JSC_RAM_VAR} is set in the environment; it wins`, { ram_bytes: plan.ramBytes });
    else if (plan.why === 'machine') log.debug('memory_plan: the machine has no more RAM than that; the engine sizes the heap for it by itself', { memory_plan_mb: planMb });
    else if (plan.why === 'no-argv') log.warn('memory_plan: /proc/self/cmdline cannot be read; the JavaScript heap is sized for the whole machine');
    return plan;
  }
  const probeEnv: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (v !== undefined) probeEnv[k] = v;
  probeEnv[JSC_RAM_VAR] = String(plan.ramBytes);
  if (!deps.probe(probeEnv)) {
    log.warn(`memory_plan: this Bun does not take ${JSC_RAM_VAR}; the JavaScript heap is sized for the whole machine`, { memory_plan_mb: planMb });
    return { kind: 'keep', why: 'off' };
  }
  let errno: number;
  try {
    errno = deps.execve(SELF, plan.argv, plan.env);
  } catch (err) {
    log.warn('memory_plan: cannot start again with it; the JavaScript heap is sized for the whole machine', { error: errorMessage(err) });
    return { kind: 'keep', why: 'off' };
  }
  log.warn('memory_plan: execve failed; the JavaScript heap is sized for the whole machine', { errno });
  return { kind: 'keep', why: 'off' };
}
