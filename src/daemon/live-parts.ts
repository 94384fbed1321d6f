/**
 * The parts of the running daemon a reload changes live (see live-config.ts), and the policy
 * the pipeline reads. Applied in this order:
 *
 * - `channels`: the channel table of the registry and of the data path. With strongSwan or the
 *   eBPF data path, channels are set up at start (tunnels loaded, marks in live entries), so
 *   any change is refused — until a part loads and unloads them in strongSwan (a later task:
 *   this part's `prepare` is where that refusal goes away).
 * - `policy`: statics, client groups, then the policy the pipeline decides with (one
 *   assignment). It also runs when the channels changed (its decisions carry channel specs).
 *   Settling withdraws the entries no rule wants any more (or moves them to their new channel).
 */
import type { Config } from '../config/types.ts';
import type { Datapath } from '../datapath/datapath.ts';
import { tableGroup } from '../policy/group.ts';
import { Policy } from '../policy/policy.ts';
import type { CnameHolds } from '../policy/cname-holds.ts';
import type { ChannelSpec } from '../policy/types.ts';
import type { PolicyApi } from '../proxy/pipeline.ts';
import type { Registry, StaticRegistration } from '../registry/registry.ts';
import { DnssealError } from '../util/errors.ts';
import { applyOrRestore, type LivePart } from './live-config.ts';

/** The policy the pipeline reads: swapping it is one assignment. */
export class LivePolicy implements PolicyApi {
  constructor(public current: Policy) {}
  decide(clientIp: string, names: string[]) {
    return this.current.decide(clientIp, names);
  }
  preDecide(clientIp: string, qname: string) {
    return this.current.preDecide(clientIp, qname);
  }
}

export interface ChannelsPartDeps {
  registry: Pick<Registry, 'setChannels'>;
  /** The kinds decide whether channels may change live. */
  datapathKind: string;
  ipsecKind: string;
  /** Local channels plus the ones a policy server named. */
  allChannels: (local: ChannelSpec[]) => ChannelSpec[];
  /** Hands the channel table (with each channel's SA state) to the data path. */
  pushChannels: (local: ChannelSpec[]) => void;
}

export function channelsPart(deps: ChannelsPartDeps): LivePart<{ before: ChannelSpec[]; after: ChannelSpec[] }> {
  const set = (chs: ChannelSpec[]) => {
    deps.registry.setChannels(deps.allChannels(chs));
    deps.pushChannels(chs);
  };
  return {
    name: 'channels',
    owns: ['channels'],
    prepare: (running, next) => {
      checkChannelsReloadable(running, next, deps.datapathKind, deps.ipsecKind);
      return { before: running.channels, after: next.channels };
    },
    apply: (p) => applyOrRestore(() => set(p.after), () => set(p.before)),
    rollback: (p) => set(p.before),
  };
}

export interface PolicyPartDeps {
  registry: Pick<Registry, 'setStatics' | 'reconcile' | 'list'>;
  datapath: Pick<Datapath, 'setClientGroups'>;
  policy: LivePolicy;
  /** A policy server is configured: names it protected keep their channel (see keepServerChoices). */
  serverChannels: boolean;
  /**
   * The pipeline's CNAME holds: a name protected through a hold keeps its channel as long as the
   * hold lives and the new rules still protect the name that brought it.
   */
  holds?: Pick<CnameHolds, 'channelFor'>;
}

interface PolicyChange {
  before: { cfg: Config; policy: Policy };
  after: { cfg: Config; policy: Policy };
}

export function policyPart(deps: PolicyPartDeps): LivePart<PolicyChange> {
  const install = (s: { cfg: Config; policy: Policy }) => {
    deps.registry.setStatics(staticsOf(s.policy));
    deps.datapath.setClientGroups(clientGroups(s.cfg));
    deps.policy.current = s.policy;
  };
  return {
    name: 'policy',
    owns: ['source', 'tables', 'clients', 'statics'],
    reads: ['channels'],
    prepare: (running, next) => {
      // Rules name the new upstreams: the `upstreams` part swaps them in with this policy.
      const cfg = next;
      return { before: { cfg: running, policy: deps.policy.current }, after: { cfg, policy: Policy.fromConfig(cfg) } };
    },
    // Statics are written all-or-nothing by the registry; the client groups after them.
    apply: (p) => applyOrRestore(() => install(p.after), () => install(p.before)),
    rollback: (p) => install(p.before),
    settle: (p) => {
      const rules = channelChooser(p.after.cfg);
      const holds = deps.holds;
      const chooser = holds ? (g: number, n: string) => rules(g, n) ?? holds.channelFor(g, n, rules) : rules;
      const r = deps.registry.reconcile(keepServerChoices(chooser, deps.serverChannels ? deps.registry.list() : []));
      return { released: r.names, moved: r.moved, withdrawn: r.removed.length };
    },
  };
}

export function staticsOf(policy: Policy): StaticRegistration[] {
  return policy.statics().map((s) => ({ group: s.group, cidr: s.cidr, channel: s.channel }));
}

/**
 * strongSwan loads the configured tunnel connections at start (and the marks of live entries
 * depend on them): with it or the eBPF data path in use, the channel table must stay as it is
 * (rules, client tables and statics still reload). The fake/none back ends follow any change.
 */
export function checkChannelsReloadable(running: Config, next: Config, datapathKind: string, ipsecKind: string): void {
  if (datapathKind !== 'ebpf' && ipsecKind === 'none') return;
  const show = (c: Config) => new Map(c.channels.map((ch) => [ch.name, ch]));
  const before = show(running);
  const after = show(next);
  const changed = [...new Set([...before.keys(), ...after.keys()])].filter((n) => !Bun.deepEquals(before.get(n), after.get(n)));
  if (changed.length > 0) {
    throw new DnssealError(
      'daemon',
      'reload_invalid',
      `channels changed (${changed.join(', ')}): with datapath ${datapathKind} and IPsec ${ipsecKind} channels are set up at start — restart dnsseal to change them`,
    );
  }
}

/** Client CIDR → kernel group, as the policy maps clients to tables (figure 6, table 501). */
export function clientGroups(cfg: Config): { cidr: string; group: number }[] {
  return cfg.clients.map((c) => ({ cidr: c.cidr, group: cfg.tables.find((t) => t.id === c.table)?.group ?? tableGroup(c.table) }));
}

/**
 * A reload re-decides names by the local rules only; a name a policy server protected (channel
 * `server:…`) keeps that channel unless a local rule now claims it (a local rule wins).
 */
export function keepServerChoices(local: (group: number, name: string) => string | null, entries: { group: number; channel: string; names: string[] }[]) {
  const held = new Map<string, string>();
  for (const e of entries) {
    if (!e.channel.startsWith('server:')) continue;
    for (const n of e.names) held.set(`${e.group}\u0000${n}`, e.channel);
  }
  if (held.size === 0) return local;
  return (group: number, name: string) => local(group, name) ?? held.get(`${group}\u0000${name}`) ?? null;
}

/**
 * For registry.reconcile: the channel the new policy gives `name` in client group `group`
 * (the group's table alone, compiled once per group on first use), or null.
 */
export function channelChooser(cfg: Config): (group: number, name: string) => string | null {
  const byGroup = new Map<number, Policy | null>();
  return (group, name) => {
    let p = byGroup.get(group);
    if (p === undefined) {
      const t = cfg.tables.find((x) => x.group === group);
      p = t ? Policy.fromConfig({ ...cfg, tables: [{ ...t, id: 'default' }], clients: [], statics: [] }) : null;
      byGroup.set(group, p);
    }
    return p?.decide('', [name]).channel?.name ?? null;
  };
}
