/**
 * The running configuration and how a reload changes it: one transaction, in three steps.
 *
 * 1. **plan** (pure): compare the running config with the new one key by key. Each changed key
 *    is either owned by a *part* that can apply it live, or needs a restart (reported by name,
 *    its running value stays). A part also runs when a key it only reads changed.
 * 2. **validate**: every part that runs prepares its change (`prepare`) and throws when the new
 *    config cannot be applied; then nothing has changed. A prepare may be asynchronous and open
 *    what the change needs (new upstream sockets) while the running config serves; `abort`
 *    undoes that when the reload does not go through.
 * 3. **apply**: the parts apply in order; when one throws, those applied before it roll back in
 *    reverse and the running config stays as it was. Once all applied, the merged config (the
 *    running one with every owned key from the file) becomes the running one, and each part
 *    settles (work that is not undone, such as withdrawing entries no rule wants).
 *
 * Apply and commit are synchronous: no query is decided half on the old and half on the new
 * config.
 *
 * Today the daemon's parts are `upstreams` and `cache` (src/daemon/live-upstreams.ts), `channels`
 * and `policy` (src/daemon/live-parts.ts) and `enforce_dns`. Making another setting live (listen
 * addresses, log level/format, loading and unloading channels in strongSwan) means writing a
 * part that owns its keys: nothing here changes, and the key leaves the restart-needed list by
 * itself.
 */
import type { Config } from '../config/types.ts';
import { DnssealError, errorMessage } from '../util/errors.ts';

export type ConfigKey = keyof Config;

/** One piece of the running daemon that a reload can change live. */
export interface LivePart<P = unknown> {
  /** Named in plans and errors. */
  readonly name: string;
  /** The keys this part applies. A changed key that no part owns needs a restart. */
  readonly owns: readonly ConfigKey[];
  /** Keys owned elsewhere whose change also makes this part run (it is built from them). */
  readonly reads?: readonly ConfigKey[];
  /**
   * Checks `next` against `running` and prepares the change; throws when invalid. May be
   * asynchronous; side effects only when `abort` undoes them (new sockets opened that nothing
   * uses yet): until `apply`, the running state serves.
   */
  prepare(running: Config, next: Config): P | Promise<P>;
  /** Undoes what `prepare` did: the reload does not go through (another part refused or failed). */
  abort?(prepared: P): void;
  /** Makes the change; throws, leaving its own state as before, when it cannot. */
  apply(prepared: P): void;
  /** Undoes a successful apply (a later part failed). */
  rollback(prepared: P): void;
  /** After the new config is running: what is not undone; the figures go into the result. */
  settle?(prepared: P): Record<string, number>;
}

export interface ReloadPlan {
  /** Keys whose value differs between the running config and the new one, in key order. */
  changed: ConfigKey[];
  /** The parts that run, in order, with the changed keys (owned or read) that make them run. */
  parts: { name: string; keys: ConfigKey[] }[];
  /** Changed keys no part applies: they keep their running value until a restart. */
  restartNeeded: ConfigKey[];
  /** The config that runs after the reload: the running one with every owned key from the new one. */
  merged: Config;
}

export interface ReloadOutcome {
  plan: ReloadPlan;
  /** Figures from the parts' `settle`, summed by name. */
  figures: Record<string, number>;
}

/** Keys in a stable order (running config's order, then keys only the new one has). */
function unionKeys(a: Config, b: Config): ConfigKey[] {
  return [...new Set([...Object.keys(a), ...Object.keys(b)])] as ConfigKey[];
}

/** What changes, what runs, what needs a restart — pure, for any pair of configs. */
export function planReload(running: Config, next: Config, parts: readonly LivePart[]): ReloadPlan {
  const changed = unionKeys(running, next).filter((k) => !Bun.deepEquals(running[k], next[k]));
  const owned = new Set(parts.flatMap((p) => p.owns));
  const merged = { ...running } as Record<ConfigKey, unknown>;
  for (const k of owned) {
    if (k in next) merged[k] = next[k];
    else delete merged[k];
  }
  return {
    changed,
    parts: parts
      .map((p) => ({ name: p.name, keys: changed.filter((k) => p.owns.includes(k) || (p.reads ?? []).includes(k)) }))
      .filter((p) => p.keys.length > 0),
    restartNeeded: changed.filter((k) => !owned.has(k)),
    merged: merged as unknown as Config,
  };
}

/** The running configuration and its reload transaction. */
export class LiveConfig {
  private running: Config;

  constructor(
    initial: Config,
    private readonly parts: readonly LivePart[],
  ) {
    const owners = new Map<ConfigKey, string>();
    for (const p of parts) {
      for (const k of p.owns) {
        const other = owners.get(k);
        if (other) throw new DnssealError('daemon', 'live_parts', `config key ${k} is applied by two parts (${other}, ${p.name})`);
        owners.set(k, p.name);
      }
    }
    this.running = initial;
  }

  /** The config the daemon runs with now (what the file said at the last successful reload). */
  get config(): Config {
    return this.running;
  }

  plan(next: Config): ReloadPlan {
    return planReload(this.running, next, this.parts);
  }

  /**
   * Validates, applies and commits `next`; throws `reload_invalid` (nothing changed, the new
   * config cannot be applied) or `reload_failed` (a part could not apply; everything was rolled
   * back). Either way the running config stays as it was.
   */
  async reload(next: Config): Promise<ReloadOutcome> {
    const running = this.running;
    const plan = this.plan(next);
    const run = plan.parts.map((p) => this.parts.find((x) => x.name === p.name)!);
    // 2. Validate: every part prepares before any applies.
    const prepared: unknown[] = [];
    const abortAll = () => {
      for (let j = prepared.length - 1; j >= 0; j--) {
        try {
          run[j]!.abort?.(prepared[j]);
        } catch {
          /* best effort: what a prepare opened and cannot close is logged by its owner */
        }
      }
    };
    for (const part of run) {
      try {
        prepared.push(await part.prepare(running, next));
      } catch (err) {
        abortAll();
        throw new DnssealError('daemon', 'reload_invalid', `reload refused, the running policy is unchanged: ${errorMessage(err)}`, { cause: err });
      }
    }
    if (this.running !== running) {
      abortAll();
      throw new DnssealError('daemon', 'reload_busy', 'reload refused: another reload applied meanwhile; try again');
    }
    // 3. Apply in order; on a failure, roll back what was applied, last first.
    for (let i = 0; i < run.length; i++) {
      try {
        run[i]!.apply(prepared[i]);
      } catch (err) {
        const rollbackErrors: string[] = [];
        for (let j = i - 1; j >= 0; j--) {
          try {
            run[j]!.rollback(prepared[j]);
          } catch (e) {
            rollbackErrors.push(`${run[j]!.name}: ${errorMessage(e)}`);
          }
        }
        abortAll();
        const also = rollbackErrors.length ? ` (rolling back also failed: ${rollbackErrors.join('; ')})` : '';
        throw new DnssealError(
          'daemon',
          'reload_failed',
          `reload: could not apply ${run[i]!.name}, the running policy is unchanged: ${errorMessage(err)}${also}`,
          { cause: err },
        );
      }
    }
    this.running = plan.merged;
    const figures: Record<string, number> = {};
    for (let i = 0; i < run.length; i++) {
      for (const [k, v] of Object.entries(run[i]!.settle?.(prepared[i]) ?? {})) figures[k] = (figures[k] ?? 0) + v;
    }
    return { plan, figures };
  }
}

/**
 * For a part's `apply`: runs `change`; when it throws, `restore` puts the part back as it was
 * and the error is rethrown (with the restore's own error, if that failed too).
 */
export function applyOrRestore(change: () => void, restore: () => void): void {
  try {
    change();
  } catch (err) {
    try {
      restore();
    } catch (e) {
      throw new DnssealError('daemon', 'reload_restore', `${errorMessage(err)}; putting the running state back also failed: ${errorMessage(e)}`, { cause: err });
    }
    throw err;
  }
}
