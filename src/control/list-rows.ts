/**
 * What `list` answers: the registry's entries as rows, filtered, with their table's name (the
 * kernel only knows the group number), the intercept address in intercept mode, and sorted the
 * way an operator reads addresses: by table, then IPv4 before IPv6, each numerically by its
 * bytes (`192.0.2.9` before `192.0.2.10`). The `--json` output is these rows as they are.
 */
import { parseIP } from '../util/ip.ts';
import { DEFAULT_TABLE, tableGroup } from '../policy/group.ts';
import { canonicalIp } from '../util/ip.ts';
import type { RegistryEntry } from '../registry/types.ts';
import type { InterceptRow } from '../intercept/pool.ts';
import { DnssealError, errorMessage } from '../util/errors.ts';
import { parseCidr, PrefixTable } from '../policy/cidr.ts';
import { matchCondition, parseCondition } from '../policy/condition.ts';
import type { Condition } from '../policy/types.ts';

/** One row of `list`: an entry with times relative to now (what `dnsseal list --json` prints). */
export interface ListRow {
  /** The kernel group (the table's number). */
  group: number;
  /** The table's id as configured (`default`, `eng`, `502`); absent when the daemon runs no table with this group. */
  table?: string;
  address: string;
  channel: string;
  /** Every name holding the entry (the human table shows the first few and a count). */
  names: string[];
  /** Seconds until the hold runs out (0 = expired, kept by traffic); null for static entries. */
  expiresInS: number | null;
  /** Seconds since the data path last saw a packet; null if never. */
  idleS: number | null;
  static: boolean;
  /** The peer channel failed (why): traffic to the address is dropped until an answer brings the SA up. */
  blocked?: string;
  /**
   * Present (true) when the entry is retired: its hold ran out and it went idle, or it was
   * flushed or withdrawn by a reload. Still protected — a tunnel entry steered into its channel,
   * a peer entry's traffic dropped — until `retire` passes with no packet; a new answer brings
   * it back.
   */
  retired?: true;
  /** Intercept mode (#6): the pool address the clients of `group` get for `address`. */
  intercept?: string;
}

/** An intercept mapping, as the intercept pool lists it. */
export type InterceptListRow = InterceptRow;

export interface ListFilter {
  /** A pattern written as in rules (`www.corp.example`, `*.corp.example`, `sato.*`), as `flush --name` takes. */
  name?: Condition;
  address?: string;
  /** `address` given as a CIDR: the entries inside it. */
  within?: (address: string) => boolean;
  channel?: string;
  group?: number;
}

/** A running table: its id and kernel group. */
export interface TableName {
  id: string;
  group: number;
}

const badArgs = (message: string) => new DnssealError('control', 'bad_args', message);

/** The running tables with `default` first (it always exists: clients that match nothing use it). */
function withDefault(tables: readonly TableName[]): TableName[] {
  return [{ id: DEFAULT_TABLE, group: 0 }, ...tables.filter((t) => t.id !== DEFAULT_TABLE)];
}

/**
 * The `list` arguments → a filter. `table` names a running table (refused, with the known ones,
 * when the daemon runs no such table); `group` is the number itself; `channel` one of
 * `channels` when given (the running ones and those entries still carry: a typo is refused
 * rather than answered "no entries"); `name` a pattern as in rules (a malformed one refused).
 */
export function parseListFilter(args: Record<string, unknown>, tables: readonly TableName[] | undefined, channels?: readonly string[]): ListFilter {
  const allowed = ['name', 'address', 'channel', 'group', 'table'];
  const f: ListFilter = {};
  for (const [k, v] of Object.entries(args)) {
    if (v === undefined || v === null) continue;
    if (!allowed.includes(k)) throw badArgs(`unknown filter ${JSON.stringify(k)} (use ${allowed.join(', ')})`);
    if (k === 'group') {
      const g = typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : v;
      if (typeof g !== 'number' || !Number.isInteger(g) || g < 0 || g > 0xffffffff) {
        throw badArgs(`group must be a number 0..4294967295, got ${JSON.stringify(v)}`);
      }
      f.group = g;
    } else if (typeof v !== 'string' || v === '') {
      throw badArgs(`${k} must be a non-empty string`);
    } else if (k === 'table') {
      f.group = groupOfTable(v, tables);
    } else if (k === 'address') {
      const a = canonicalIp(v);
      if (a) f.address = a;
      else {
        // a CIDR, as flush --address takes
        let cidr;
        try {
          cidr = parseCidr(v);
        } catch {
          throw badArgs(`address ${JSON.stringify(v)} is not an IP address or a CIDR`);
        }
        const within = new PrefixTable<true>();
        within.add(cidr, true);
        f.within = (addr) => within.lookup(addr) === true;
      }
    } else if (k === 'name') {
      try {
        f.name = parseCondition(v);
      } catch (err) {
        throw badArgs(`list --name: ${errorMessage(err)}`);
      }
    } else {
      if (channels && !channels.includes(v)) throw badArgs(`list --channel: unknown channel "${v}" (known: ${channels.join(', ') || 'none'})`);
      f.channel = v;
    }
  }
  return f;
}

function groupOfTable(id: string, tables: readonly TableName[] | undefined): number {
  if (tables) {
    const all = withDefault(tables);
    const t = all.find((x) => x.id === id);
    if (!t) throw badArgs(`list --table: unknown table "${id}" (known: ${all.map((x) => x.id).join(', ')})`);
    return t.group;
  }
  try {
    return tableGroup(id);
  } catch (err) {
    throw badArgs(`list --table: ${errorMessage(err)}`);
  }
}

export function matchesFilter(e: RegistryEntry, f: ListFilter): boolean {
  if (f.group !== undefined && e.group !== f.group) return false;
  if (f.channel !== undefined && e.channel !== f.channel) return false;
  if (f.address !== undefined && e.addr !== f.address) return false;
  if (f.within !== undefined && !f.within(e.addr)) return false;
  if (f.name !== undefined && !e.names.some((n) => matchCondition(f.name!, n.split('.')))) return false;
  return true;
}

/**
 * A sort key that orders addresses as numbers: the family first (IPv4 before IPv6), then the
 * bytes, as fixed-width hex (so plain string comparison is numeric comparison).
 */
export function addressSortKey(address: string): string {
  const b = parseIP(address);
  if (!b) return `9${address}`; // not an address (never from the registry): last, as text
  let hex = b.length === 4 ? '4' : '6';
  for (const x of b) hex += x.toString(16).padStart(2, '0');
  return hex;
}

/** By group, then address (numerically); the keys are computed once per row. */
export function sortRows(rows: ListRow[]): ListRow[] {
  const keyed = rows.map((r) => ({ r, k: addressSortKey(r.address) }));
  keyed.sort((a, b) => a.r.group - b.r.group || (a.k < b.k ? -1 : a.k > b.k ? 1 : 0) || (a.r.intercept ?? '').localeCompare(b.r.intercept ?? ''));
  return keyed.map((x) => x.r);
}

function toRow(e: RegistryEntry, nowMs: number, tableOf: (group: number) => string | undefined): ListRow {
  const table = tableOf(e.group);
  return {
    group: e.group,
    ...(table !== undefined ? { table } : {}),
    address: e.addr,
    channel: e.channel,
    names: e.names,
    expiresInS: e.static ? null : Math.max(0, Math.ceil((e.expiresMs - nowMs) / 1000)),
    idleS: e.lastSeenMs === undefined ? null : Math.max(0, Math.floor((nowMs - e.lastSeenMs) / 1000)),
    static: e.static,
    ...(e.blocked !== undefined ? { blocked: e.blocked } : {}),
    ...(e.retired ? { retired: true as const } : {}),
  };
}

/** group → table id, from the running tables (`default` is group 0). */
export function tableNamer(tables: readonly TableName[] | undefined): (group: number) => string | undefined {
  if (!tables) return (g) => (g === 0 ? DEFAULT_TABLE : undefined);
  const byGroup = new Map(withDefault(tables).map((t) => [t.group, t.id]));
  return (g) => byGroup.get(g);
}

/** Entries → sorted rows, with table names when the running tables are known. */
export function toRows(entries: RegistryEntry[], nowMs: number, tables?: readonly TableName[]): ListRow[] {
  const namer = tableNamer(tables);
  return sortRows(entries.map((e) => toRow(e, nowMs, namer)));
}

/**
 * The rows `list` answers: the entries the filter selects; in intercept mode each row names its
 * intercept address, and a mapping whose real address has no entry (any more) is listed too,
 * channel `-` — the NAT drops what is sent to it.
 */
export function listRows(
  entries: RegistryEntry[],
  filter: ListFilter,
  nowMs: number,
  tables: readonly TableName[] | undefined,
  maps: InterceptListRow[] | undefined,
): ListRow[] {
  const namer = tableNamer(tables);
  const rows = entries.filter((e) => matchesFilter(e, filter)).map((e) => toRow(e, nowMs, namer));
  if (!maps) return sortRows(rows);
  const byReal = new Map(maps.map((m) => [`${m.group}/${canonicalIp(m.real) ?? m.real}`, m]));
  const out = rows.map((r) => {
    const m = byReal.get(`${r.group}/${r.address}`);
    return m ? { ...r, intercept: m.intercept } : r;
  });
  const known = new Set(entries.map((e) => `${e.group}/${e.addr}`));
  for (const [key, m] of byReal) {
    if (known.has(key)) continue;
    const e: RegistryEntry = { group: m.group, addr: canonicalIp(m.real) ?? m.real, channel: '-', names: m.names, expiresMs: m.expiresMs, static: false };
    if (m.lastSeenMs !== undefined) e.lastSeenMs = m.lastSeenMs;
    if (matchesFilter(e, filter)) out.push({ ...toRow(e, nowMs, namer), intercept: m.intercept });
  }
  return sortRows(out);
}
