/**
 * The parts of the running daemon a reload changes live that carry the policy (see
 * live-config.ts; the small ones are in live-settings.ts), and the policy the pipeline reads:
 *
 * - `channels`: strongSwan first (prepare loads new tunnels; once the new config runs, changed
 *   channels are replaced and removed ones unloaded: src/ipsec/channel-manager.ts), and the
 *   channel table of the registry and of the data path. Ids are kept by name across reloads
 *   (channel-ids.ts), so unchanged channels keep their marks, XFRM policies and SAs.
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
import type { ChannelChange } from '../ipsec/channel-changes.ts';
import type { IpsecChannels } from '../ipsec/channel-manager.ts';
import { applyOrRestore, type LivePart } from './live-config.ts';
import { builtMatchers } from './off-thread-config.ts';

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
  /** Loads and unloads channels in strongSwan (NoIpsec: nothing to load). */
  ipsec: Pick<IpsecChannels, 'prepareChannels' | 'commitChannels' | 'rollbackChannels' | 'abortChannels' | 'settleChannels'>;
  /** Local channels plus the ones a policy server named. */
  allChannels: (local: ChannelSpec[]) => ChannelSpec[];
  /** Hands the channel table (with each channel's SA state) to the data path. */
  pushChannels: (local: ChannelSpec[]) => void;
}

interface ChannelsChange {
  before: ChannelSpec[];
  after: ChannelSpec[];
  ipsec: ChannelChange;
}

export function channelsPart(deps: ChannelsPartDeps): LivePart<ChannelsChange> {
  const set = (chs: ChannelSpec[]) => {
    deps.registry.setChannels(deps.allChannels(chs));
    deps.pushChannels(chs);
  };
  return {
    name: 'channels',
    owns: ['channels'],
    // strongSwan gets the IPsec channels only (tls channels are the relay's: tls-step.ts)
    prepare: async (running, next) => ({ before: running.channels, after: next.channels, ipsec: await deps.ipsec.prepareChannels(next.channels.filter((c) => c.protocol !== 'tls')) }),
    abort: (p) => deps.ipsec.abortChannels(p.ipsec),
    apply: (p) =>
      applyOrRestore(
        () => {
          set(p.after);
          deps.ipsec.commitChannels(p.ipsec);
        },
        () => {
          set(p.before);
          deps.ipsec.rollbackChannels(p.ipsec);
        },
      ),
    rollback: (p) => {
      deps.ipsec.rollbackChannels(p.ipsec);
      set(p.before);
    },
    settle: async (p) => {
      const r = await deps.ipsec.settleChannels(p.ipsec);
      return { channelsLoaded: p.ipsec.loaded.length + r.loaded, channelsReplaced: r.replaced, channelsUnloaded: r.unloaded };
    },
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
      // Rules name the new upstreams: the `upstreams` part swaps them in with this policy. The
      // matchers a worker built (off-thread-config.ts) index the same names: they are used as they are.
      const cfg = next;
      return { before: { cfg: running, policy: deps.policy.current }, after: { cfg, policy: Policy.fromConfig(cfg, builtMatchers(next.tables)) } };
    },
    // Statics are written all-or-nothing by the registry; the client groups after them.
    apply: (p) => applyOrRestore(() => install(p.after), () => install(p.before)),
    rollback: (p) => install(p.before),
    settle: (p) => {
      const rules = channelChooser(p.after.policy);
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

/** For registry.reconcile: the channel the new policy gives `name` in client group `group` (that group's table alone), or null. */
export function channelChooser(policy: Pick<Policy, 'decideInGroup'>): (group: number, name: string) => string | null {
  return (group, name) => policy.decideInGroup(group, [name])?.channel?.name ?? null;
}
