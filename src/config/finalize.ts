/**
 * Draft → Config: the checks that need the whole picture (file and flags merged): channels
 * validated and numbered, references between rules, channels, tables, upstreams and keys
 * resolved, table groups assigned, mode requirements, and the default upstream.
 */
import { ConfigError, errorMessage } from '../util/errors.ts';
import type { Config, TsigKeySpec, UpstreamSpec } from './types.ts';
import type { Draft } from './draft.ts';
import { buildChannel, FieldError } from '../policy/channel.ts';
import { parseCidr } from '../policy/cidr.ts';
import { tableGroup, DEFAULT_TABLE } from '../policy/group.ts';
import type { ChannelSpec, ClientEntry, Rule, StaticEntry, Table } from '../policy/types.ts';
import { pickResolvUpstream } from './resolv.ts';

export interface FinalizeDeps {
  /** resolv.conf contents in order of preference (missing files left out). */
  resolvTexts(): string[];
}

function channels(d: Draft): ChannelSpec[] {
  const out: ChannelSpec[] = [];
  let id = 0;
  for (const [name, ch] of d.channels) {
    id++;
    try {
      out.push(buildChannel(name, ch.input, id));
    } catch (err) {
      if (!(err instanceof FieldError)) throw err;
      // name the rules that would have used it: the operator sees what the refusal affects
      const users: string[] = [];
      for (const [tid, t] of d.tables) {
        t.rules.forEach((r, i) => r.channel === name && users.push(`table ${tid} rule ${i} "${r.condition.pattern}"`));
      }
      const used = users.length ? ` (used by ${users.slice(0, 3).join(', ')}${users.length > 3 ? ', …' : ''})` : '';
      throw new ConfigError(ch.where(err.field), `${err.message}${used}`);
    }
  }
  return out;
}

function tables(d: Draft, known: Set<string>, upstreams: Set<string>): Table[] {
  const byGroup = new Map<number, string>();
  const out: Table[] = [];
  for (const [id, t] of d.tables) {
    let group: number;
    try {
      group = tableGroup(id);
    } catch (err) {
      throw new ConfigError(t.where, errorMessage(err));
    }
    const other = byGroup.get(group);
    if (other !== undefined) {
      throw new ConfigError(t.where, `table ids "${other}" and "${id}" map to the same group number ${group}; rename one of them`);
    }
    byGroup.set(group, id);
    const rules = t.rules.map((r, index) => {
      if (!known.has(r.channel)) {
        throw new ConfigError(r.where.channel, `table "${id}" rule ${index} (${r.condition.pattern}): unknown channel "${r.channel}"${hint(known)}`);
      }
      if (r.upstream !== undefined && !upstreams.has(r.upstream)) {
        throw new ConfigError(r.where.upstream, `table "${id}" rule ${index} (${r.condition.pattern}): unknown upstream "${r.upstream}"${hint(upstreams)}`);
      }
      const rule: Rule = { condition: r.condition, channel: r.channel, index, source: r.where.match };
      if (r.upstream !== undefined) rule.upstream = r.upstream;
      return rule;
    });
    out.push({ id, group, rules });
  }
  return out;
}

function hint(names: Set<string>): string {
  return names.size ? ` (defined: ${[...names].join(', ')})` : ' (none defined)';
}

function cidrAt(where: string, text: string, what: string): string {
  try {
    return parseCidr(text).text;
  } catch (err) {
    throw new ConfigError(where, `${what}: ${errorMessage(err)}`);
  }
}

function defaultUpstream(d: Draft, deps: FinalizeDeps): UpstreamSpec {
  const pick = pickResolvUpstream(deps.resolvTexts(), d.listen);
  if (pick.upstream) return { name: 'default', ...pick.upstream };
  const skipped = pick.skipped.length ? ` (skipped ${pick.skipped.join(', ')}: dnsseal listens there, forwarding would loop)` : '';
  throw new ConfigError(
    '--upstream',
    `no upstream configured and /etc/resolv.conf names no usable nameserver${skipped}; give --upstream ADDR[:PORT] or "upstreams: {default: ADDR}" in the config`,
  );
}

export function finalize(d: Draft, deps: FinalizeDeps): Config {
  const upstreams = [...d.upstreams.values()].map((u) => u.spec);
  if (!d.upstreams.has('default')) upstreams.unshift(defaultUpstream(d, deps));
  const upstreamNames = new Set(upstreams.map((u) => u.name));
  if (upstreams.length > 254) throw new ConfigError(d.upstreams.get(upstreams[254]!.name)?.where ?? '--upstream', 'at most 254 upstreams');

  const tsigKeys: TsigKeySpec[] = [...d.tsigKeys].map(([name, k]) => ({ name, algorithm: 'hmac-sha256', secret: k.secret }));
  for (const u of d.upstreams.values()) {
    if (u.spec.tsigKey && !d.tsigKeys.has(u.spec.tsigKey)) {
      throw new ConfigError(u.whereTsig, `upstream "${u.spec.name}": unknown tsig key "${u.spec.tsigKey}"${hint(new Set(d.tsigKeys.keys()))}`);
    }
  }
  if (d.policyServer) {
    const ps = d.upstreams.get(d.policyServer.name);
    if (!ps) throw new ConfigError(d.policyServer.where, `policy_server "${d.policyServer.name}" is not an upstream${hint(upstreamNames)}`);
    if (!ps.spec.tsigKey) {
      throw new ConfigError(d.policyServer.where, `policy_server "${d.policyServer.name}" has no tsig_key: a policy is accepted only from TSIG-signed answers`);
    }
  }

  const chans = channels(d);
  const channelNames = new Set(chans.map((c) => c.name));
  const tbls = tables(d, channelNames, upstreamNames);
  const tableIds = new Set([...tbls.map((t) => t.id), DEFAULT_TABLE]);

  const seen = new Map<string, string>();
  const clients: ClientEntry[] = d.clients.map((c) => {
    const cidr = cidrAt(c.where, c.cidr, 'client cidr');
    const before = seen.get(cidr);
    if (before) throw new ConfigError(c.where, `client ${cidr} is listed twice (also at ${before})`);
    seen.set(cidr, c.where);
    if (!tableIds.has(c.table)) throw new ConfigError(c.whereTable, `client ${cidr}: unknown table "${c.table}"${hint(tableIds)}`);
    return { cidr, table: c.table };
  });
  const statics: StaticEntry[] = d.statics.map((s) => {
    const cidr = cidrAt(s.where, s.cidr, 'static cidr');
    if (!channelNames.has(s.channel)) throw new ConfigError(s.whereChannel, `static ${cidr}: unknown channel "${s.channel}"${hint(channelNames)}`);
    if (!tableIds.has(s.table)) throw new ConfigError(s.whereTable, `static ${cidr}: unknown table "${s.table}"${hint(tableIds)}`);
    return { cidr, channel: s.channel, table: s.table };
  });
  const pools = d.interceptPools.map((p) => cidrAt(d.whereOf.get('intercept_pools') ?? '--intercept-pool', p, 'intercept pool'));

  const whereMode = d.whereOf.get('mode') ?? '--mode';
  if (d.mode !== 'host' && d.lan.length === 0) {
    throw new ConfigError(whereMode, `mode ${d.mode} needs the client-side interface: "lan: [IFACE]" or --lan IFACE`);
  }
  if (d.mode === 'intercept' && pools.length === 0) {
    throw new ConfigError(whereMode, 'mode intercept needs address pools: "intercept_pools: [CIDR]" or --intercept-pool CIDR');
  }

  const cfg: Config = {
    source: d.source,
    mode: d.mode,
    listen: d.listen,
    upstreams,
    datapath: d.datapath,
    lan: d.lan,
    wan: d.wan,
    control: d.control,
    logLevel: d.logLevel,
    logFormat: d.logFormat,
    minHoldS: d.minHoldS,
    idleS: d.idleS,
    upstreamTimeoutMs: d.upstreamTimeoutMs,
    canary: d.canary,
    channels: chans,
    tables: tbls,
    clients,
    statics,
    tsigKeys,
    interceptPools: pools,
  };
  if (d.metrics) cfg.metrics = d.metrics;
  if (d.policyServer) cfg.policyServer = d.policyServer.name;
  return cfg;
}
