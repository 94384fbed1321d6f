/**
 * The compiled policy the daemon consults on every query: client → table (longest prefix,
 * figure 6), table → first matching rule (figure 2), rule → channel. Built once per config
 * (and per reload); immutable afterwards, so a reload swaps the whole object atomically.
 * (The client memo inside it is a cache: it never changes an answer, and is swapped with it.)
 */
import type { ChannelSpec, ClientEntry, Decision, Rule, StaticEntry, Table, TableId } from './types.ts';
import { DnssealError } from '../util/errors.ts';
import { RuleMatcher, type MatcherData } from './matcher.ts';
import { PackedRule } from './packed-rules.ts';
import { forEachTarget } from './rule-list.ts';
import { normalizeName } from './name.ts';
import { parseCidr } from './cidr.ts';
import { ClientLookup } from './client-lookup.ts';
import { DEFAULT_TABLE } from './group.ts';

interface CompiledTable {
  table: Table;
  /** The protecting rules (with a channel): what S104 decides by. */
  matcher: RuleMatcher;
  /** The forwarding rules (an upstream, no channel), null when the table has none: S102 only. */
  forward: RuleMatcher | null;
  /** The answer when no rule matches: one frozen object per table, not one per query. */
  miss: Decision;
}

/** A table's matchers as data (`Policy.exportMatchers`; built in a worker on a reload). */
export interface TableMatchers {
  rules: MatcherData;
  forward: MatcherData | null;
}

export interface StaticProtection {
  cidr: string;
  table: TableId;
  group: number;
  channel: ChannelSpec;
}

/** Frozen: every caller gets the same object, so none may change it (strict mode throws). */
function missFor(t: Table): Decision {
  return Object.freeze({ table: t.id, group: t.group, rule: null, channel: null, upstream: null });
}

/**
 * What a Policy is compiled from: the parts of the loaded configuration it reads (the config's
 * `Config` has them; the policy does not import the config layer that sits above it).
 */
export interface PolicySource {
  channels: ChannelSpec[];
  tables: Table[];
  clients: ClientEntry[];
  statics: StaticEntry[];
  /** Upstream names in config order (rules refer to them by name). */
  upstreams: ReadonlyArray<{ name: string }>;
}

function fail(message: string): never {
  throw new DnssealError('policy', 'policy_invalid', message);
}

export class Policy {
  private readonly byId = new Map<TableId, CompiledTable>();
  /** Longest client prefix → table, memoised per client address (per Policy: a reload starts afresh). */
  private readonly clientTables = new ClientLookup<CompiledTable>();
  private readonly defaultTable: CompiledTable;
  private readonly channelList: ChannelSpec[];
  private readonly upstreamList: (string | null)[];
  private readonly staticList: StaticProtection[];

  private constructor(
    channels: ChannelSpec[],
    tables: Table[],
    clients: ClientEntry[],
    statics: StaticEntry[],
    upstreams: string[],
    built?: ReadonlyMap<TableId, TableMatchers>,
  ) {
    this.channelList = channels;
    const byName = new Map(channels.map((c) => [c.name, c] as const));
    const chanIdx = new Map(channels.map((c, i) => [c.name, i] as const));
    this.upstreamList = [null, ...upstreams];
    if (channels.length > 0xffff) fail(`at most ${0xffff} channels`);
    if (upstreams.length > 0xfe) fail('at most 254 upstreams');
    const upIdx = new Map(this.upstreamList.map((u, i) => [u, i] as const));
    for (const t of tables) {
      if (this.byId.has(t.id)) fail(`table "${t.id}" is defined twice`);
      const ready = built?.get(t.id);
      if (ready) {
        // built elsewhere from these very rules (a worker, with the same channels and upstreams)
        const forward = ready.forward ? RuleMatcher.fromData(ready.forward) : null;
        this.byId.set(t.id, { table: t, matcher: RuleMatcher.fromData(ready.rules), forward, miss: missFor(t) });
        continue;
      }
      // Each rule's channel and upstream travel with it inside the index as a payload
      // (channel index | upstream index << 16), so a hit needs no further lookups.
      const payloads = new Int32Array(t.rules.length);
      let forwarding: Uint8Array | null = null;
      forEachTarget(t.rules, (i, channel, upstream) => {
        const what = () => `table "${t.id}" rule ${i} (${t.rules[i]!.condition.pattern})`;
        let u = 0;
        if (upstream !== undefined) {
          const found = upIdx.get(upstream);
          if (found === undefined) fail(`${what()} names unknown upstream "${upstream}"`);
          u = found;
        }
        if (channel === undefined) {
          // a forwarding rule: an upstream, nothing protected (indexed apart, for S102 only)
          if (upstream === undefined) fail(`${what()} names neither a channel nor an upstream`);
          (forwarding ??= new Uint8Array(t.rules.length))[i] = 1;
          payloads[i] = u << 16;
          return;
        }
        const c = chanIdx.get(channel);
        if (c === undefined) fail(`${what()} names unknown channel "${channel}"`);
        payloads[i] = c | (u << 16);
      });
      const fwd = forwarding as Uint8Array | null;
      const matcher = fwd ? RuleMatcher.forRules(t.rules, payloads, (i) => fwd[i] === 0) : RuleMatcher.forRules(t.rules, payloads);
      const forward = fwd ? RuleMatcher.forRules(t.rules, payloads, (i) => fwd[i] === 1) : null;
      this.byId.set(t.id, { table: t, matcher, forward, miss: missFor(t) });
    }
    // Without a configured default table, unclassified clients get an empty one: nothing protected.
    this.defaultTable = this.byId.get(DEFAULT_TABLE) ?? {
      table: { id: DEFAULT_TABLE, group: 0, rules: [] },
      matcher: new RuleMatcher([]),
      forward: null,
      miss: missFor({ id: DEFAULT_TABLE, group: 0, rules: [] }),
    };
    for (const c of clients) {
      // `default` exists without rules too (as for statics): a range carved out of another table
      const t = this.byId.get(c.table) ?? (c.table === DEFAULT_TABLE ? this.defaultTable : undefined);
      if (!t) fail(`client ${c.cidr} names unknown table "${c.table}"`);
      this.clientTables.add(parseCidr(c.cidr), t);
    }
    this.staticList = statics.map((s) => {
      const ch = byName.get(s.channel);
      if (!ch) fail(`static ${s.cidr} names unknown channel "${s.channel}"`);
      const t = this.byId.get(s.table) ?? (s.table === DEFAULT_TABLE ? this.defaultTable : undefined);
      if (!t) fail(`static ${s.cidr} names unknown table "${s.table}"`);
      return { cidr: s.cidr, table: t.table.id, group: t.table.group, channel: ch };
    });
  }

  /**
   * `built`: the tables' matchers as `exportMatchers` gave them for a policy of the same
   * channels, tables and upstream names (a reload builds them in a worker); tables without one
   * are built here.
   */
  static fromConfig(cfg: PolicySource, built?: ReadonlyMap<TableId, TableMatchers>): Policy {
    return new Policy(cfg.channels, cfg.tables, cfg.clients, cfg.statics, cfg.upstreams.map((u) => u.name), built);
  }

  /** Every table's matchers as data, to rebuild this policy elsewhere (`fromConfig(cfg, built)`); this policy must not be used after. */
  exportMatchers(): { built: Map<TableId, TableMatchers>; buffers: ArrayBuffer[] } {
    const built = new Map<TableId, TableMatchers>();
    const buffers: ArrayBuffer[] = [];
    for (const [id, c] of this.byId) {
      const d = c.matcher.toData();
      const f = c.forward?.toData() ?? null;
      built.set(id, { rules: d.data, forward: f ? f.data : null });
      buffers.push(...d.buffers, ...(f ? f.buffers : []));
    }
    return { built, buffers };
  }

  /**
   * The decision of the table of kernel group `group` alone, for `names` (a reload re-deciding
   * live entries per group); null when no table has that group.
   */
  decideInGroup(group: number, names: string[]): Decision | null {
    for (const ct of this.byId.values()) if (ct.table.group === group) return this.decideIn(ct, names);
    return group === this.defaultTable.table.group ? this.decideIn(this.defaultTable, names) : null;
  }

  /** The table a client's queries are matched against (longest client prefix, else `default`). */
  tableFor(clientIp: string): Table {
    return this.compiledFor(clientIp).table;
  }

  private compiledFor(clientIp: string): CompiledTable {
    return (clientIp ? this.clientTables.lookup(clientIp) : undefined) ?? this.defaultTable;
  }

  /**
   * Step S104: `names[0]` is the query name, then its CNAME chain. The first protecting rule
   * (one with a channel) in table order that matches any of the names wins; forwarding rules
   * take no part (they protect nothing and unprotect nothing).
   */
  decide(clientIp: string, names: string[]): Decision {
    return this.decideIn(this.compiledFor(clientIp), names);
  }

  private decideIn(ct: CompiledTable, names: string[]): Decision {
    let best = -1;
    let payload = 0;
    let matched: string | undefined;
    if (ct.matcher.size > 0) {
      for (const raw of names) {
        const i = ct.matcher.match(raw); // normalises case, root dot and IDN itself
        if (i >= 0 && (best < 0 || i < best)) {
          best = i;
          payload = ct.matcher.payload;
          matched = raw;
          if (i === 0) break;
        }
      }
    }
    const t = ct.table;
    if (best < 0) return ct.miss;
    return new HitDecision(t, best, this.channelList[payload & 0xffff]!, this.upstreamList[payload >>> 16]!, matched!);
  }

  /**
   * Step S102: decide on the query name alone, before forwarding: the first rule in table order
   * that matches it, protecting or forwarding, picks the upstream (none named: `default`). Its
   * channel is only a forecast: S104 decides protection on the whole CNAME chain.
   */
  preDecide(clientIp: string, qname: string): Decision {
    const ct = this.compiledFor(clientIp);
    const fwd = ct.forward;
    const f = fwd ? fwd.match(qname) : -1;
    if (f < 0) return this.decideIn(ct, [qname]);
    const upstream = this.upstreamList[fwd!.payload >>> 16]!;
    const p = ct.matcher.size > 0 ? ct.matcher.match(qname) : -1;
    if (p >= 0 && p < f) return new HitDecision(ct.table, p, this.channelList[ct.matcher.payload & 0xffff]!, this.upstreamList[ct.matcher.payload >>> 16]!, qname);
    return new HitDecision(ct.table, f, null, upstream, qname);
  }

  channels(): ChannelSpec[] {
    return this.channelList;
  }

  /** Configured tables (an unconfigured `default` is not listed). */
  tables(): Table[] {
    return [...this.byId.values()].map((c) => c.table);
  }

  /** Static CIDR entries (patent ¶46) with their channel and group resolved. */
  statics(): StaticProtection[] {
    return this.staticList;
  }

  channel(name: string): ChannelSpec | undefined {
    return this.channelList.find((c) => c.name === name);
  }
}

/**
 * A decision with a matching rule. `rule` and `matchedName` are read on demand: the pipeline
 * needs only group, channel and upstream, and with a million rules fetching the Rule object
 * is one more cache and TLB miss per protected answer. Private fields keep the rule table out
 * of JSON.stringify and of test equality.
 */
class HitDecision implements Decision {
  readonly table: TableId;
  readonly group: number;
  readonly #rules: Rule[];
  readonly #index: number;
  readonly #raw: string;

  constructor(
    t: Table,
    index: number,
    readonly channel: ChannelSpec | null,
    readonly upstream: string | null,
    raw: string,
  ) {
    this.table = t.id;
    this.group = t.group;
    this.#rules = t.rules;
    this.#index = index;
    this.#raw = raw;
  }

  /** A rules file's rule comes detached from its file: whoever keeps it (a CNAME hold) keeps only it. */
  get rule(): Rule {
    const r = this.#rules[this.#index]!;
    return r instanceof PackedRule ? r.toJSON() : r;
  }

  get matchedName(): string {
    return normalizeName(this.#raw) ?? this.#raw;
  }

  toJSON(): Decision {
    return { table: this.table, group: this.group, rule: this.rule, channel: this.channel, upstream: this.upstream, matchedName: this.matchedName };
  }
}

export type { Rule };
