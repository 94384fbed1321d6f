/**
 * The control commands the registry answers itself (`list`, `status`, `flush`) plus the slots
 * the daemon fills (`reload`, `down`, `explain`; more `status` fields). An unfilled slot
 * answers `not_available` instead of being an unknown command, so the CLI can say so.
 */
import type { Registry } from '../registry/registry.ts';
import { canonicalIp } from '../registry/cidr.ts';
import type { RegistryEntry } from '../registry/types.ts';
import type { Clock } from '../util/clock.ts';
import { DnssealError } from '../util/errors.ts';
import type { ControlHandler, ControlHandlers } from './protocol.ts';
import { flushSelection, type PolicyNames } from './flush-filter.ts';

export { checkFlushFilter } from './flush-filter.ts';

/** One row of `list`: an entry with times relative to now (what `dnsseal list --json` prints). */
export interface ListRow {
  group: number;
  address: string;
  channel: string;
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

/** An intercept mapping (src/intercept/pool.ts `InterceptRow`). */
export interface InterceptListRow {
  group: number;
  intercept: string;
  real: string;
  names: string[];
  expiresMs: number;
  lastSeenMs?: number;
}

export interface ListFilter {
  name?: string;
  address?: string;
  channel?: string;
  group?: number;
}

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
  /** The running channels and tables: `flush` refuses others. Absent: only the filters' syntax is checked. */
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
    list: async (args) => {
      const filter = parseFilter(args, ['name', 'address', 'channel', 'group']);
      const entries = registry.list();
      const rows = toRows(entries.filter((e) => matches(e, filter)), clock.monoMs());
      return deps.intercepts ? withIntercepts(rows, entries, deps.intercepts(), filter, clock.monoMs()) : rows;
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

function parseFilter(args: Record<string, unknown>, allowed: (keyof ListFilter)[]): ListFilter {
  const f: ListFilter = {};
  for (const [k, v] of Object.entries(args)) {
    if (v === undefined || v === null) continue;
    if (!(allowed as string[]).includes(k)) {
      throw new DnssealError('control', 'bad_args', `unknown filter ${JSON.stringify(k)} (use ${allowed.join(', ')})`);
    }
    if (k === 'group') {
      const g = typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : v;
      if (typeof g !== 'number' || !Number.isInteger(g) || g < 0 || g > 0xffffffff) {
        throw new DnssealError('control', 'bad_args', `group must be a number 0..4294967295, got ${JSON.stringify(v)}`);
      }
      f.group = g;
    } else if (typeof v !== 'string' || v === '') {
      throw new DnssealError('control', 'bad_args', `${k} must be a non-empty string`);
    } else if (k === 'address') {
      const a = canonicalIp(v);
      if (!a) throw new DnssealError('control', 'bad_args', `address ${JSON.stringify(v)} is not an IP address`);
      f.address = a;
    } else if (k === 'name') {
      f.name = v.toLowerCase().replace(/\.$/, '');
    } else {
      f.channel = v;
    }
  }
  return f;
}

/** `name` matches exactly, or as `*.suffix` any name strictly below the suffix. */
function nameMatches(pattern: string, name: string): boolean {
  if (pattern.startsWith('*.')) return name.endsWith(pattern.slice(1));
  return name === pattern;
}

function matches(e: RegistryEntry, f: ListFilter): boolean {
  if (f.group !== undefined && e.group !== f.group) return false;
  if (f.channel !== undefined && e.channel !== f.channel) return false;
  if (f.address !== undefined && e.addr !== f.address) return false;
  if (f.name !== undefined && !e.names.some((n) => nameMatches(f.name!, n))) return false;
  return true;
}

export function toRows(entries: RegistryEntry[], nowMs: number): ListRow[] {
  return entries
    .map((e) => ({
      group: e.group,
      address: e.addr,
      channel: e.channel,
      names: e.names,
      expiresInS: e.static ? null : Math.max(0, Math.ceil((e.expiresMs - nowMs) / 1000)),
      idleS: e.lastSeenMs === undefined ? null : Math.max(0, Math.floor((nowMs - e.lastSeenMs) / 1000)),
      static: e.static,
      ...(e.blocked !== undefined ? { blocked: e.blocked } : {}),
      ...(e.retired ? { retired: true as const } : {}),
    }))
    .sort((a, b) => a.group - b.group || a.address.localeCompare(b.address));
}

/**
 * Intercept mode: each entry row names its intercept address; a mapping whose real address has
 * no entry (any more) is listed too, channel `-` — the NAT drops what is sent to it.
 */
function withIntercepts(rows: ListRow[], entries: RegistryEntry[], maps: InterceptListRow[], f: ListFilter, nowMs: number): ListRow[] {
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
    if (matches(e, f)) out.push({ ...toRows([e], nowMs)[0]!, intercept: m.intercept });
  }
  return out.sort((x, y) => x.group - y.group || x.address.localeCompare(y.address));
}
