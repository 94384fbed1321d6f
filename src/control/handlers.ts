/**
 * The control commands the registry answers itself (`list`, `status`, `flush`) plus the slots
 * the daemon fills (`reload`, `down`, `explain`, `log`; more `status` fields). An unfilled slot
 * answers `not_available` instead of being an unknown command, so the CLI can say so.
 */
import type { Registry, RegistryStats } from '../registry/registry.ts';
import type { Clock } from '../util/clock.ts';
import { DnssealError } from '../util/errors.ts';
import type { ControlHandler, ControlHandlers } from './protocol.ts';
import { cacheFlushSelection, flushSelection, type PolicyNames } from './flush-filter.ts';
import type { AnswerCache } from '../cache/answer-cache.ts';
import { listRows, parseListFilter, type InterceptListRow } from './list-rows.ts';

export { cacheFlushSelection, checkFlushFilter } from './flush-filter.ts';

/** The registry's part of `status`, as the README documents it (snake_case keys). */
export function registryFigures(r: RegistryStats) {
  return {
    entries: { total: r.entries, live: r.entries - r.retired, retired: r.retired, blocked: r.blocked, static: r.statics, by_channel: r.byChannel },
    map: { used: r.entries, capacity: r.capacity ?? null, fill: r.fill ?? null },
  };
}

export type { InterceptListRow, ListFilter, ListRow } from './list-rows.ts';
export { toRows } from './list-rows.ts';

export interface ControlHandlerDeps {
  registry: Pick<Registry, 'list' | 'stats' | 'withdraw' | 'releaseNames'>;
  /** The answer cache (`flush --cache`); absent: refused as not available. */
  cache?: Pick<AnswerCache, 'clear'>;
  clock: Clock;
  /**
   * The daemon's whole `status` document (src/daemon/status.ts). Absent: the registry's
   * figures alone (`entries`, `map`).
   */
  status?: () => Promise<object> | object;
  reload?: ControlHandler;
  down?: ControlHandler;
  explain?: ControlHandler;
  /** `log`: switches the query log (`{what: "queries", on: true|false}`). */
  log?: ControlHandler;
  /** Intercept mode: the pool's mappings, shown next to their entries in `list`. */
  intercepts?: () => InterceptListRow[];
  /**
   * The running channels and tables: `flush`, `list --table` and `list --channel` refuse others, and `list` names
   * each row's table. Absent: only the filters' syntax is checked, and only `default` is named.
   */
  policyNames?: () => PolicyNames;
}

export function createControlHandlers(deps: ControlHandlerDeps): ControlHandlers {
  const { registry, clock } = deps;
  const slot = (cmd: string, h?: ControlHandler): ControlHandler =>
    h ??
    (async () => {
      throw new DnssealError('control', 'not_available', `${cmd} is not available in this daemon`);
    });

  return {
    // `table` names a running table (unknown: refused with the known ones); rows carry its name
    list: async (args) => {
      const names = deps.policyNames?.();
      const entries = registry.list();
      // a channel is known when it runs, or when entries still carry it (retired by a reload)
      const channels = names ? [...new Set([...names.channels, ...entries.map((e) => e.channel)])] : undefined;
      const filter = parseListFilter(args, names?.tables, channels);
      return listRows(entries, filter, clock.monoMs(), names?.tables, deps.intercepts?.());
    },
    status: async () => (deps.status ? deps.status() : registryFigures(registry.stats())),
    // every filter is checked before anything is withdrawn: a refused flush does nothing
    flush: async (args) => {
      // `--cache`: the answer cache only (its hits register again anyway, like fresh answers)
      if (args.cache === true) {
        const match = cacheFlushSelection(args);
        if (!deps.cache) throw new DnssealError('control', 'not_available', 'flush --cache: this daemon has no answer cache');
        return { cacheRemoved: deps.cache.clear(match) };
      }
      const sel = flushSelection(args, deps.policyNames?.());
      if (sel.name) {
        const name = sel.name;
        const r = registry.releaseNames((n, e) => sel.entry(e) && name(n));
        return { released: r.names, retired: r.removed.length };
      }
      const removed = registry.withdraw(sel.entry);
      return { released: 0, retired: removed.length };
    },
    reload: slot('reload', deps.reload),
    down: slot('down', deps.down),
    explain: slot('explain', deps.explain),
    log: slot('log', deps.log),
  };
}
