/**
 * The running configuration and how a reload changes it: one transaction, in four steps.
 *
 * 1. **plan** (pure): compare the running config with the new one key by key. Each changed key
 *    is either owned by a *part* that can apply it live, or needs a restart (reported by name,
 *    its running value stays). A part also runs when a key it only reads changed.
 * 2. **prepare**: every part that runs prepares its change and throws when the new config
 *    cannot be applied. Preparing may take time and happen off the hot path (the policy is
 *    built in a worker, new listen addresses are bound) while queries are answered by the
 *    running config; whatever a prepare did is undone by its `abort` when the reload does not
 *    go through. A throw here is `reload_invalid`: nothing has changed.
 * 3. **apply** (synchronous, all parts in one go): the parts apply in order; when one throws,
 *    those applied before it roll back in reverse, every prepared part is aborted, and the
 *    running config stays as it was (`reload_failed`). No query is decided half on the old and
 *    half on the new config: nothing else runs between the first apply and the commit.
 * 4. **settle**: once the merged config (the running one with every owned key from the file)
 *    runs, each part settles — work that is not undone, such as withdrawing entries no rule
 *    wants, closing listeners that were removed (after their answers), unloading channels.
 *    A settle that fails is reported (`settleErrors`), the new config runs regardless.
 *
 * Reloads are serialised: a second one (SIGHUP during `dnsseal reload`) waits for the first.
 *
 * The daemon's parts: src/daemon/live-settings.ts (listen, log, allow_clients, log_queries),
 * live-upstreams.ts (upstreams, cache), live-parts.ts (channels, policy), enforce.ts, tls-step.ts.
 * Making another setting live means writing a part that owns its keys: nothing here changes,
 * and the key leaves the restart-needed list by itself.
 */
import type { Config } from '../config/types.ts';
import { sameRules } from '../policy/rule-list.ts';
import type { Table } from '../policy/types.ts';
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
   * Checks `next` against `running` and prepares the change; throws when it cannot be applied.
   * May be asynchronous. Side effects only when `abort` undoes them (new sockets bound, a new
   * channel loaded under a name nothing uses yet): until `apply`, the running state serves.
   */
  prepare(running: Config, next: Config): P | Promise<P>;
  /** Undoes what `prepare` did: the reload does not go through (another part refused or failed). */
  abort?(prepared: P): void | Promise<void>;
  /** Makes the change, synchronously; throws, leaving its own state as before, when it cannot. */
  apply(prepared: P): void;
  /** Undoes a successful apply (a later part failed). */
  rollback(prepared: P): void;
  /** After the new config runs: what is not undone; the figures go into the result. */
  settle?(prepared: P): Record<string, number> | void | Promise<Record<string, number> | void>;
}

/** Whether two values of one key are the same (default: `sameConfigValue`). */
export type SameValue = (key: ConfigKey, a: unknown, b: unknown) => boolean;

/**
 * `Bun.deepEquals`, except for tables: rules files compare by the digest of their packed text
 * (a field-by-field walk over 200k rules blocked the event loop for 0.2 s).
 */
export const sameConfigValue: SameValue = (key, a, b) => {
  if (key !== 'tables') return Bun.deepEquals(a, b);
  const x = a as Table[];
  const y = b as Table[];
  return x.length === y.length && x.every((t, i) => t.id === y[i]!.id && t.group === y[i]!.group && sameRules(t.rules, y[i]!.rules));
};

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
  /** Settles that failed (`part: message`); the new config runs regardless. */
  settleErrors: string[];
}

/** Keys in a stable order (running config's order, then keys only the new one has). */
function unionKeys(a: Config, b: Config): ConfigKey[] {
  return [...new Set([...Object.keys(a), ...Object.keys(b)])] as ConfigKey[];
}

/** What changes, what runs, what needs a restart — pure, for any pair of configs. */
export function planReload(running: Config, next: Config, parts: readonly LivePart[], same: SameValue = sameConfigValue): ReloadPlan {
  const changed = unionKeys(running, next).filter((k) => running[k] !== next[k] && !same(k, running[k], next[k]));
  const owned = new Set(parts.flatMap((p) => p.owns));
  // an owned key that did not change keeps its running value (the very object: no second copy of 200k rules)
  const merged = { ...running } as Record<ConfigKey, unknown>;
  for (const k of changed) {
    if (!owned.has(k)) continue;
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
  /** The reload in progress (reloads run one at a time). */
  private busy: Promise<unknown> = Promise.resolve();

  constructor(
    initial: Config,
    private readonly parts: readonly LivePart[],
    private readonly same: SameValue = sameConfigValue,
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
    return planReload(this.running, next, this.parts, this.same);
  }

  /**
   * Prepares, applies and commits `next` (after any reload still in progress); rejects with
   * `reload_invalid` (nothing changed, the new config cannot be applied) or `reload_failed` (a
   * part could not apply; everything was rolled back). Either way the running config stays.
   * `next` may be a function: it is called once the previous reload is through (so it compares
   * with what that one left running).
   */
  reload(next: Config | ((running: Config) => Config | Promise<Config>)): Promise<ReloadOutcome> {
    const run = this.busy.then(async () => this.transaction(typeof next === 'function' ? await next(this.running) : next));
    this.busy = run.catch(() => {});
    return run;
  }

  private async transaction(next: Config): Promise<ReloadOutcome> {
    const running = this.running;
    const plan = this.plan(next);
    const run = plan.parts.map((p) => this.parts.find((x) => x.name === p.name)!);
    // 2. Prepare: every part, before any applies.
    const prepared: unknown[] = [];
    for (const part of run) {
      try {
        prepared.push(await part.prepare(running, next));
      } catch (err) {
        const also = await this.abort(run, prepared);
        throw new DnssealError('daemon', 'reload_invalid', `reload refused, the running config is unchanged: ${errorMessage(err)}${also}`, { cause: err });
      }
    }
    // 3. Apply, synchronously; on a failure, roll back what was applied, last first.
    for (let i = 0; i < run.length; i++) {
      try {
        run[i]!.apply(prepared[i]);
      } catch (err) {
        const problems: string[] = [];
        for (let j = i - 1; j >= 0; j--) {
          try {
            run[j]!.rollback(prepared[j]);
          } catch (e) {
            problems.push(`${run[j]!.name}: ${errorMessage(e)}`);
          }
        }
        const also = problems.length ? ` (rolling back also failed: ${problems.join('; ')})` : '';
        throw new DnssealError(
          'daemon',
          'reload_failed',
          `reload: could not apply ${run[i]!.name}, the running config is unchanged: ${errorMessage(err)}${also}${await this.abort(run, prepared)}`,
          { cause: err },
        );
      }
    }
    this.running = plan.merged;
    // 4. Settle, in order.
    const figures: Record<string, number> = {};
    const settleErrors: string[] = [];
    for (let i = 0; i < run.length; i++) {
      try {
        for (const [k, v] of Object.entries((await run[i]!.settle?.(prepared[i])) ?? {})) figures[k] = (figures[k] ?? 0) + v;
      } catch (err) {
        settleErrors.push(`${run[i]!.name}: ${errorMessage(err)}`);
      }
    }
    return { plan, figures, settleErrors };
  }

  /** Aborts the prepared parts, last first; returns what failed, as a suffix for the error. */
  private async abort(run: LivePart[], prepared: unknown[]): Promise<string> {
    const problems: string[] = [];
    for (let j = prepared.length - 1; j >= 0; j--) {
      try {
        await run[j]!.abort?.(prepared[j]);
      } catch (e) {
        problems.push(`${run[j]!.name}: ${errorMessage(e)}`);
      }
    }
    return problems.length ? ` (undoing the preparation also failed: ${problems.join('; ')})` : '';
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
