/**
 * What `flush` selects: `channel`, `table`, `name` (a pattern written as in rules, matched by
 * the policy's own condition semantics) and `address` (an IP or a CIDR). Given filters combine
 * (all must hold); none selects every non-static entry. Channel and table must be known to the
 * daemon (configured, or a policy server's channel): an unknown one is refused with the list
 * of known ones, so a typo never flushes everything or nothing silently.
 */
import { matchCondition, parseCondition } from '../policy/condition.ts';
import { parseCidr, PrefixTable } from '../policy/cidr.ts';
import { DEFAULT_TABLE, tableGroup } from '../policy/group.ts';
import type { RegistryEntry } from '../registry/types.ts';
import { DnssealError, errorMessage } from '../util/errors.ts';

export const FLUSH_FILTERS = ['channel', 'table', 'name', 'address'] as const;

/** The channels and tables the daemon runs with (flush refuses others). */
export interface PolicyNames {
  channels: string[];
  tables: Array<{ id: string; group: number }>;
}

export interface FlushSelection {
  /** Entries the channel, table and address filters select. */
  entry(e: RegistryEntry): boolean;
  /** With `name`: the names to release (an entry left without names goes). */
  name?: (name: string) => boolean;
}

/**
 * The filters' syntax (no knowledge of the configuration): the CLI refuses a bad pattern or
 * address before it asks the daemon. Returns the first problem.
 */
export function checkFlushFilter(args: Record<string, unknown>): { filter: string; message: string } | undefined {
  try {
    select(args, undefined);
    return undefined;
  } catch (err) {
    if (!(err instanceof FilterError)) throw err;
    return { filter: err.filter, message: err.message };
  }
}

class FilterError extends Error {
  constructor(
    readonly filter: string,
    message: string,
  ) {
    super(message);
  }
}

function known(kind: string, value: string, names: string[]): FilterError {
  return new FilterError(kind, `unknown ${kind} "${value}" (known: ${names.join(', ') || 'none'}); nothing was flushed`);
}

function select(args: Record<string, unknown>, names: PolicyNames | undefined): FlushSelection {
  const f: Partial<Record<(typeof FLUSH_FILTERS)[number], string>> = {};
  for (const [k, v] of Object.entries(args)) {
    if (v === undefined || v === null) continue;
    if (!(FLUSH_FILTERS as readonly string[]).includes(k)) throw new FilterError(k, `unknown filter ${JSON.stringify(k)} (use ${FLUSH_FILTERS.join(', ')})`);
    if (typeof v !== 'string' || v === '') throw new FilterError(k, `${k} must be a non-empty string`);
    f[k as keyof typeof f] = v;
  }
  const tests: Array<(e: RegistryEntry) => boolean> = [];
  if (f.channel !== undefined) {
    const channel = f.channel;
    if (names && !names.channels.includes(channel)) throw known('channel', channel, names.channels);
    tests.push((e) => e.channel === channel);
  }
  if (f.table !== undefined) {
    const id = f.table;
    let group: number | undefined;
    if (names) {
      const tables = [{ id: DEFAULT_TABLE, group: 0 }, ...names.tables.filter((t) => t.id !== DEFAULT_TABLE)];
      group = tables.find((t) => t.id === id)?.group;
      if (group === undefined) throw known('table', id, tables.map((t) => t.id));
    } else {
      try {
        group = tableGroup(id);
      } catch (err) {
        throw new FilterError('table', errorMessage(err));
      }
    }
    tests.push((e) => e.group === group);
  }
  if (f.address !== undefined) {
    const within = new PrefixTable<true>();
    try {
      within.add(parseCidr(f.address), true);
    } catch (err) {
      throw new FilterError('address', `${errorMessage(err)} (an IP address or a CIDR)`);
    }
    tests.push((e) => within.lookup(e.addr) === true);
  }
  const sel: FlushSelection = { entry: (e) => tests.every((t) => t(e)) };
  if (f.name !== undefined) {
    let cond;
    try {
      cond = parseCondition(f.name);
    } catch (err) {
      throw new FilterError('name', errorMessage(err));
    }
    sel.name = (n) => matchCondition(cond, n.split('.'));
  }
  return sel;
}

/**
 * `flush --cache [--name PATTERN]`: the answer cache's entries whose query name PATTERN selects
 * (written as in rules; every entry without it). The registry's filters do not apply to the
 * cache: given with `cache`, they are refused. Returns the name test (undefined: all).
 */
export function cacheFlushSelection(args: Record<string, unknown>): ((name: string) => boolean) | undefined {
  const others = Object.keys(args).filter((k) => k !== 'cache' && k !== 'name' && args[k] !== undefined && args[k] !== null);
  if (others.length) throw new DnssealError('control', 'bad_args', `flush --cache: takes --name only, not --${others.join(', --')} (entries and cached answers are flushed separately)`);
  if (args.name === undefined || args.name === null) return undefined;
  try {
    const sel = select({ name: args.name }, undefined);
    return sel.name;
  } catch (err) {
    if (!(err instanceof FilterError)) throw err;
    throw new DnssealError('control', 'bad_args', `flush --cache --${err.filter}: ${err.message}`);
  }
}

/** The selection for a flush request; `bad_args` (exit 1) for an unknown filter, channel or table. */
export function flushSelection(args: Record<string, unknown>, names: PolicyNames | undefined): FlushSelection {
  try {
    return select(args, names);
  } catch (err) {
    if (!(err instanceof FilterError)) throw err;
    throw new DnssealError('control', 'bad_args', `flush --${err.filter}: ${err.message}`);
  }
}
