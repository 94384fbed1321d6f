/**
 * The control commands the registry answers itself (`list`, `status`, `flush`) plus the slots
 * the daemon fills (`reload`, `down`, `explain`; more `status` fields). An unfilled slot
 * answers `not_available` instead of being an unknown command, so the CLI can say so.
 */
import type { Registry } from '../registry/registry.ts';
import type { Clock } from '../util/clock.ts';
import { DnssealError } from '../util/errors.ts';
import type { ControlHandler, ControlHandlers } from './protocol.ts';
import { flushSelection, type PolicyNames } from './flush-filter.ts';
import { listRows, parseListFilter, type InterceptListRow } from './list-rows.ts';

export { checkFlushFilter } from './flush-filter.ts';

export type { InterceptListRow, ListFilter, ListRow } from './list-rows.ts';
export { toRows } from './list-rows.ts';

export interface ControlHandlerDeps {
  registry: Pick<Registry, 'list' | 'stats' | 'withdraw' | 'releaseNames'>;
  clock: Clock;
  /** Extra `status` fields from the daemon (mode, upstreams, channels and SA state, counters). */
  status?: () => Promise<Record<string, unknown>> | Record<string, unknown>;
  reload?: ControlHandler;
  down?: ControlHandler;
  explain?: ControlHandler;
  /** Intercept mode: the pool's mappings, shown next to their entries in `list`. */
  intercepts?: () => InterceptListRow[];
  /**
   * The running channels and tables: `flush` and `list --table` refuse others, and `list` names
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
      const tables = deps.policyNames?.().tables;
      const filter = parseListFilter(args, tables);
      return listRows(registry.list(), filter, clock.monoMs(), tables, deps.intercepts?.());
    },
    status: async () => {
      const extra = deps.status ? await deps.status() : {};
      return { registry: registry.stats(), ...extra };
    },
    // every filter is checked before anything is withdrawn: a refused flush does nothing
    flush: async (args) => {
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
  };
}
