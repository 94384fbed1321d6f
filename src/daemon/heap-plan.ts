/**
 * The daemon's JavaScript heap sizing (`memory_plan`): what `dnsseal run` does about it at start.
 *
 * JavaScriptCore lets its heap grow between full collections by 2× while the heap is under a
 * quarter of the RAM it believes the machine has, 1.5× under a half and 1.24× above. It reads
 * that RAM size once, when the process starts, from the machine (or from the environment
 * variable BUN_JSC_forceRAMSize, an option Bun passes to JSC and calls unstable between
 * releases). On a 24 GB machine a daemon whose live heap is 40 MB swings up to 2× that before
 * each full collection, and its RSS follows (bench/soak.ts). So `run` starts itself once more,
 * the same process (execve: same pid, same arguments), with that variable set to the memory the
 * operator plans for, before it opens anything. This module decides whether and how (pure, unit
 * tested); src/daemon/reexec.ts does it.
 *
 * It never starts itself again when the variable is there already (the operator's own value
 * wins, and a started-again process has it), nor when the plan is 0 (the engine's own sizing)
 * or at least the machine's RAM (nothing to change), nor when the arguments of the process are
 * not known.
 */

/**
 * `memory_plan`'s default, MiB: 256. Under churn (8k qps over 100k names with TTL 1, bench/soak.ts,
 * 2026-12-03) it holds the median RSS at 117 MB where the engine's own sizing (24 GB machine)
 * gives 157 (peaks 131 against 205), for 7% more CPU per answer; at saturation (bench-dns, cache
 * on and off) no difference was measured; with 200k rules (60 s) a median of 177 MB, peak 202,
 * against 191 / 226. A machine with no more RAM than the plan keeps the engine's sizing.
 */
export const MEMORY_PLAN_DEFAULT_MB = 256;

/** The JSC option (through Bun's BUN_JSC_ prefix) that sets the RAM size the heap is sized against. */
export const JSC_RAM_VAR = 'BUN_JSC_forceRAMSize';
/** Set in the started-again process: says why the variable is there (and stops any loop). */
export const REEXEC_MARK = 'DNSSEAL_MEMORY_PLAN';

export type HeapPlan =
  /** Start again: execve(`/proc/self/exe`, argv, env). */
  | { kind: 'exec'; argv: string[]; env: string[]; ramBytes: number }
  /** Go on as is; `applied`: this process already runs with the plan (started again by us). */
  | { kind: 'keep'; why: 'off' | 'applied' | 'operator' | 'no-argv' | 'machine'; ramBytes?: number };

export interface HeapPlanInput {
  /** `memory_plan` in MB; 0: leave the engine its default. */
  planMb: number;
  /** The process's environment now. */
  env: Readonly<Record<string, string | undefined>>;
  /** The process's own argument vector as the kernel holds it (/proc/self/cmdline); undefined: unknown. */
  argv: readonly string[] | undefined;
  /**
   * The machine's RAM, MiB (os.totalmem()); undefined: unknown. A plan of at least this much
   * changes nothing the engine would not do by itself (it sizes for the machine's RAM), so the
   * process is not started again for it.
   */
  machineMb?: number;
}

export function heapPlan(i: HeapPlanInput): HeapPlan {
  const current = i.env[JSC_RAM_VAR];
  if (current !== undefined) {
    const ramBytes = Number(current);
    return { kind: 'keep', why: i.env[REEXEC_MARK] !== undefined ? 'applied' : 'operator', ...(Number.isFinite(ramBytes) ? { ramBytes } : {}) };
  }
  if (i.planMb <= 0) return { kind: 'keep', why: 'off' };
  if (i.machineMb !== undefined && i.planMb >= i.machineMb) return { kind: 'keep', why: 'machine' };
  if (i.argv === undefined || i.argv.length === 0) return { kind: 'keep', why: 'no-argv' };
  const ramBytes = i.planMb * 1024 * 1024;
  const env: string[] = [];
  for (const [k, v] of Object.entries(i.env)) if (v !== undefined && k !== REEXEC_MARK) env.push(`${k}=${v}`);
  env.push(`${JSC_RAM_VAR}=${ramBytes}`, `${REEXEC_MARK}=${i.planMb}`);
  return { kind: 'exec', argv: [...i.argv], env, ramBytes };
}

/** /proc/self/cmdline's bytes → the argument vector (NUL-terminated strings, latin1 so any byte round-trips). */
export function parseCmdline(bytes: Uint8Array): string[] {
  const text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1');
  const parts = text.split('\0');
  if (parts.at(-1) === '') parts.pop();
  return parts;
}
