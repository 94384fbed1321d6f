/**
 * Draft → Config: the checks that need the whole picture (file and flags merged): channels
 * validated and numbered, references between rules, channels, tables, upstreams and keys
 * resolved, table groups assigned, mode requirements, and the default upstream.
 */
import { ConfigError, errorMessage } from '../util/errors.ts';
import { ConfigErrors } from './yaml-doc.ts';
import type { Config, SettingsConfig, TsigKeySpec, UpstreamSpec } from './types.ts';
import type { Draft } from './draft.ts';
import { SETTINGS } from './settings.ts';
import { buildChannel, FieldError } from '../policy/channel.ts';
import { PackedRules } from '../policy/packed-rules.ts';
import { ruleList } from '../policy/rule-list.ts';
import { cidrsOverlap, parseCidr } from '../policy/cidr.ts';
import { tableGroup, DEFAULT_TABLE } from '../policy/group.ts';
import type { ChannelSpec, ClientEntry, Rule, StaticEntry, Table } from '../policy/types.ts';
import { pickResolvUpstream } from './resolv.ts';
import { ipFamily, parsedListen } from './address.ts';
import { formatServerSpec } from '../proxy/server-spec.ts';
import { MAX_SERVERS } from '../proxy/upstream-set.ts';
import { tlsMaterial, type CredentialDeps } from './tls-credentials.ts';
import { hostEntries } from './sections/hosts.ts';

export interface FinalizeDeps extends CredentialDeps {
  /** resolv.conf contents in order of preference (missing files left out). */
  resolvTexts(): string[];
}

/** Collects independent problems so that `check` can report them all at once. */
class Problems {
  readonly list: ConfigError[] = [];
  attempt<T>(fn: () => T): T | undefined {
    try {
      return fn();
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      this.list.push(err);
      return undefined;
    }
  }
  throwAll(): void {
    if (this.list.length === 1) throw this.list[0]!;
    // file problems in file order, then flag problems in the order found
    const line = (e: ConfigError) => Number(/:(\d+)$/.exec(e.where)?.[1] ?? Number.MAX_SAFE_INTEGER);
    if (this.list.length > 1) throw new ConfigErrors([...this.list].sort((a, b) => line(a) - line(b)));
  }
}

function channels(d: Draft, problems: Problems): ChannelSpec[] {
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
        let i = 0;
        for (const r of t.rules) {
          if (!(r instanceof PackedRules)) {
            if (r.channel === name) users.push(`table ${tid} rule ${i} "${r.condition.pattern}"`);
            i++;
            continue;
          }
          for (let k = 0; k < r.length && users.length < 4; k++) if (r.channel(k) === name) users.push(`table ${tid} rule ${i + k} "${r.pattern(k)}"`);
          i += r.length;
        }
      }
      const used = users.length ? ` (used by ${users.slice(0, 3).join(', ')}${users.length > 3 ? ', …' : ''})` : '';
      problems.list.push(new ConfigError(ch.where(err.field), `${err.message}${used}`));
    }
  }
  return out;
}

function tables(d: Draft, known: Set<string>, upstreams: Set<string>, problems: Problems): Table[] {
  const byGroup = new Map<number, string>();
  const out: Table[] = [];
  for (const [id, t] of d.tables) {
    let group: number;
    try {
      group = tableGroup(id);
    } catch (err) {
      problems.list.push(new ConfigError(t.where, errorMessage(err)));
      continue;
    }
    const other = byGroup.get(group);
    if (other !== undefined) {
      problems.list.push(new ConfigError(t.where, `table ids "${other}" and "${id}" map to the same group number ${group}; rename one of them`));
      continue;
    }
    byGroup.set(group, id);
    const rules: Array<Rule | PackedRules> = [];
    let index = 0;
    for (const r of t.rules) {
      if (r instanceof PackedRules) {
        checkPacked(d, id, r, index, known, upstreams, problems);
        rules.push(r);
        index += r.length;
        continue;
      }
      if (r.channel !== undefined && !known.has(r.channel)) {
        problems.list.push(new ConfigError(r.where.channel, `table "${id}" rule ${index} (${r.condition.pattern}): unknown channel "${r.channel}"${channelHint(d, r.channel, known)}`));
      }
      if (r.upstream !== undefined && !upstreams.has(r.upstream)) {
        problems.list.push(new ConfigError(r.where.upstream, `table "${id}" rule ${index} (${r.condition.pattern}): unknown upstream "${r.upstream}"${hint(upstreams)}`));
      }
      const rule: Rule = { condition: r.condition, index, source: r.where.match };
      if (r.channel !== undefined) rule.channel = r.channel;
      if (r.upstream !== undefined) rule.upstream = r.upstream;
      rules.push(rule);
      index++;
    }
    out.push({ id, group, rules: ruleList(rules) });
  }
  return out;
}

/** A rules file's references, checked per name, at the first line that uses it (rule `base` is its first). */
function checkPacked(d: Draft, id: string, p: PackedRules, base: number, channels: Set<string>, upstreams: Set<string>, problems: Problems): void {
  const reported = new Set<string>();
  for (let i = 0; i < p.length; i++) {
    const ch = p.channel(i);
    const up = p.upstream(i);
    const badChannel = ch !== undefined && !channels.has(ch) && !reported.has(`c${ch}`);
    const badUpstream = up !== undefined && !upstreams.has(up) && !reported.has(`u${up}`);
    if (badChannel || badUpstream) {
      const where = `${p.source}:${p.line(i)}`;
      const what = `table "${id}" rule ${base + i} (${p.pattern(i)})`;
      if (badChannel) {
        reported.add(`c${ch}`);
        problems.list.push(new ConfigError(where, `${what}: unknown channel "${ch}"${channelHint(d, ch!, channels)}`));
      }
      if (badUpstream) {
        reported.add(`u${up}`);
        problems.list.push(new ConfigError(where, `${what}: unknown upstream "${up}"${hint(upstreams)}`));
      }
    }
  }
}

function hint(names: Set<string>): string {
  return names.size ? ` (defined: ${[...names].join(', ')})` : ' (none defined)';
}

/** `hint`, and why a channel of the embedded default is not there when rule flags replaced its examples. */
function channelHint(d: Draft, name: string, names: Set<string>): string {
  if (!d.exampleChannels?.includes(name)) return hint(names);
  return (
    `${hint(names)}: "${name}" is an example channel of the embedded default, left out with its rules when rules come from flags without --config; ` +
    `define it with --channel ${name}=SPEC, or write a config file (dnsseal config-default) and pass --config`
  );
}

function cidrAt(where: string, text: string, what: string): string {
  try {
    return parseCidr(text).text;
  } catch (err) {
    throw new ConfigError(where, `${what}: ${errorMessage(err)}`);
  }
}

/**
 * Only the value settings of a draft, with the problems of those alone: what the control
 * commands read from a file that may have errors elsewhere (an edit in progress).
 */
export function draftSettings(d: Draft): { values: SettingsConfig; problems: ConfigError[]; where: (key: string) => string } {
  const problems = new Problems();
  const { values, where } = settingValues(d, problems);
  return { values, problems: problems.list, where };
}

/**
 * The value settings as Config fields: what the file or a flag gave, else the default; each
 * setting's final check (normalise, refuse) runs here. Also where each came from.
 */
function settingValues(d: Draft, problems: Problems): { values: SettingsConfig; where: (key: string) => string } {
  const out: Record<string, unknown> = {};
  for (const s of SETTINGS) {
    if (s.kind !== 'value') continue;
    const given = d.values.get(s.key);
    let v: unknown = given ? given.value : Array.isArray(s.default) ? [...s.default] : s.default;
    if (v !== undefined && s.check) v = s.check(v as never, given?.where ?? `--${s.flag?.name ?? s.key}`, (e) => problems.list.push(e));
    if (v !== undefined) out[s.field] = v;
  }
  const where = (key: string) => {
    const s = SETTINGS.find((x) => x.key === key);
    return d.values.get(key)?.where ?? (s?.kind === 'value' && s.flag ? `--${s.flag.name}` : key);
  };
  return { values: out as SettingsConfig, where };
}

/**
 * Client groups that would silently not match (issue 11 item 8): the kernel classifies packets by
 * the client's own address, the proxy by the query's sender, and they must agree.
 * - host mode: the socket hooks only know group `default` — `clients:`, statics of another
 *   table and trusted forwarders would be accepted and ignored, so they are refused;
 * - gateway/intercept with `clients:` (none of them loopback) but listening on loopback only:
 *   every query comes from a local forwarder and lands in `default` — refused unless trusted
 *   forwarders name the clients;
 * - a trusted forwarder that overlaps a client range, or is a whole family: such a client could
 *   choose its own table through EDNS Client Subnet.
 */
function checkClassification(v: SettingsConfig, d: Draft, where: (key: string) => string, problems: Problems): void {
  const push = (at: string, msg: string) => problems.list.push(new ConfigError(at, msg));
  if (v.mode === 'host') {
    for (const c of d.clients) push(c.where, `client ${c.cidr}: mode host classifies every query and socket as table default (the host hooks see no client); remove clients: or run mode gateway`);
    for (const s of d.statics) {
      if (s.table !== DEFAULT_TABLE) push(s.whereTable, `static ${s.cidr}: mode host protects only table default (the host hooks see no client); drop "table: ${s.table}"`);
    }
    if (v.trustedForwarders.length) push(where('trusted_forwarders'), 'trusted_forwarders: mode host has no clients to name; remove it');
    return;
  }
  const loopbackOnly = v.listen.every((l) => /^(\[::1\]|127\.)/.test(l));
  // (clients that are themselves loopback addresses can reach a loopback listener: tests do that)
  const reachable = d.clients.some((c) => cidrsOverlap(c.cidr, '127.0.0.0/8') || cidrsOverlap(c.cidr, '::1/128'));
  if (d.clients.length > 0 && loopbackOnly && !reachable && v.trustedForwarders.length === 0) {
    push(
      d.clients[0]!.where,
      `clients: can never match: dnsseal listens on loopback only (${v.listen.join(', ')}), so every query comes from a local forwarder and lands in table default — ` +
        'set trusted_forwarders and run the forwarder with EDNS Client Subnet (dnsmasq: --add-subnet=32,128 --strip-subnet), or listen on the LAN address',
    );
  }
  for (const f of v.trustedForwarders) {
    if (/\/0$/.test(f)) push(where('trusted_forwarders'), `trusted forwarder ${f} trusts every sender: any client could choose its own table; name the forwarder's address`);
    for (const c of d.clients) {
      if (cidrsOverlap(f, c.cidr)) push(where('trusted_forwarders'), `trusted forwarder ${f} overlaps client ${c.cidr} (${c.where}): such a client could choose its own table; trust only the forwarder's own address`);
    }
  }
}

function defaultUpstream(listen: string[], deps: FinalizeDeps): UpstreamSpec {
  const pick = pickResolvUpstream(deps.resolvTexts(), listen);
  if (pick.upstreams.length > 0) return { name: 'default', servers: pick.upstreams.map((hp) => ({ transport: 'dns' as const, ...hp })) };
  const skipped = pick.skipped.length ? ` (skipped ${pick.skipped.join(', ')}: dnsseal listens there, forwarding would loop)` : '';
  throw new ConfigError(
    '--upstream',
    `no upstream configured and /etc/resolv.conf names no usable nameserver${skipped}; give --upstream SERVER or "upstreams: {default: [SERVER, …]}" in the config`,
  );
}

/**
 * Each name's server list: not empty, at most MAX_SERVERS, no server twice; `upstream_source`
 * (one local address for every upstream socket) cannot serve DoH (fetch cannot bind) nor a
 * server of the other family.
 */
/**
 * The listen address a plain-DNS server would reach: dnsseal itself (the same address and port,
 * or loopback on the port of a wildcard listen address). Forwarding there goes round in a loop.
 */
function ownListen(address: string, port: number, listen: string[]): string | undefined {
  const loopback = address === '::1' || address.startsWith('127.');
  const own = parsedListen(listen).find(
    (hp) => hp.port === port && (hp.address === address || (loopback && (hp.address === '::' || (hp.address === '0.0.0.0' && address !== '::1')))),
  );
  return own?.text;
}

function checkUpstreams(d: Draft, upstreams: UpstreamSpec[], source: { address: string; where: string } | undefined, listen: string[], problems: Problems): void {
  for (const u of upstreams) {
    const du = d.upstreams.get(u.name);
    const at = (i: number) => du?.whereServers[i] ?? du?.where ?? 'resolv.conf';
    if (u.servers.length > MAX_SERVERS) {
      problems.list.push(new ConfigError(at(MAX_SERVERS), `upstream "${u.name}" has ${u.servers.length} servers, at most ${MAX_SERVERS}`));
    }
    const seen = new Map<string, number>();
    u.servers.forEach((s, i) => {
      const text = formatServerSpec(s);
      const before = seen.get(text);
      if (before !== undefined) problems.list.push(new ConfigError(at(i), `upstream "${u.name}": server ${text} is listed twice (also at ${at(before)})`));
      else seen.set(text, i);
      const self = s.transport === 'dns' ? ownListen(s.address, s.port, listen) : undefined;
      if (self !== undefined) {
        problems.list.push(new ConfigError(at(i), `upstream "${u.name}": server ${text} is dnsseal itself (listen ${self}): its queries would go round in a loop — name the resolver dnsseal forwards to`));
      }
      if (!source) return;
      if (s.transport === 'https') {
        problems.list.push(
          new ConfigError(
            source.where,
            `upstream_source ${source.address} cannot be used with the DNS-over-HTTPS server ${text} of upstream "${u.name}" (${at(i)}): HTTPS requests cannot choose their local address; use tls:// where the source address matters, or drop upstream_source`,
          ),
        );
      } else if (ipFamily(s.address) !== ipFamily(source.address)) {
        problems.list.push(
          new ConfigError(
            source.where,
            `upstream_source ${source.address} is IPv${ipFamily(source.address)} but upstream "${u.name}" server ${text} (${at(i)}) is IPv${ipFamily(s.address)}: ` +
              'upstream sockets bound to it cannot reach that server; use an address of the same family or drop upstream_source',
          ),
        );
      }
    });
  }
}

export function finalize(d: Draft, deps: FinalizeDeps): Config {
  const problems = new Problems();
  const { values: v, where } = settingValues(d, problems);
  const upstreams = [...d.upstreams.values()].map((u) => u.spec);
  if (!d.upstreams.has('default')) upstreams.unshift(defaultUpstream(v.listen, deps));
  const upstreamNames = new Set(upstreams.map((u) => u.name));
  if (upstreams.length > 254) throw new ConfigError(d.upstreams.get(upstreams[254]!.name)?.where ?? '--upstream', 'at most 254 upstreams');

  const tsigKeys: TsigKeySpec[] = [...d.tsigKeys].map(([name, k]) => ({ name, algorithm: 'hmac-sha256', secret: k.secret }));
  for (const u of d.upstreams.values()) {
    if (u.spec.tsigKey && !d.tsigKeys.has(u.spec.tsigKey)) {
      problems.list.push(new ConfigError(u.whereTsig, `upstream "${u.spec.name}": unknown tsig key "${u.spec.tsigKey}"${hint(new Set(d.tsigKeys.keys()))}`));
    }
  }
  checkUpstreams(d, upstreams, v.upstreamSource !== undefined ? { address: v.upstreamSource, where: where('upstream_source') } : undefined, v.listen, problems);
  if (v.policyServer !== undefined) {
    const at = where('policy_server');
    const ps = d.upstreams.get(v.policyServer);
    if (!ps) problems.list.push(new ConfigError(at, `policy_server "${v.policyServer}" is not an upstream${hint(upstreamNames)}`));
    else if (!ps.spec.tsigKey) {
      problems.list.push(new ConfigError(at, `policy_server "${v.policyServer}" has no tsig_key: a policy is accepted only from TSIG-signed answers`));
    }
  }

  const chans = channels(d, problems);
  if (d.role === 'policy-server') refuseNodeOnly(d, chans, problems);
  const tls = d.role === 'node' ? tlsMaterial(v, d, chans, where, deps, (e) => problems.list.push(e)) : {};
  // references are checked against every declared channel, valid or not, so that one bad
  // channel is reported once (at its definition), not again at each rule that uses it
  const channelNames = new Set(d.channels.keys());
  const tbls = tables(d, channelNames, upstreamNames, problems);
  const tableIds = new Set([...d.tables.keys(), DEFAULT_TABLE]);

  const seen = new Map<string, string>();
  const clients: ClientEntry[] = [];
  for (const c of d.clients) {
    problems.attempt(() => {
      const cidr = cidrAt(c.where, c.cidr, 'client cidr');
      const before = seen.get(cidr);
      if (before) throw new ConfigError(c.where, `client ${cidr} is listed twice (also at ${before})`);
      seen.set(cidr, c.where);
      if (!tableIds.has(c.table)) throw new ConfigError(c.whereTable, `client ${cidr}: unknown table "${c.table}"${hint(tableIds)}`);
      clients.push({ cidr, table: c.table });
    });
  }
  const statics: StaticEntry[] = [];
  const seenStatic = new Map<string, string>();
  for (const s of d.statics) {
    problems.attempt(() => {
      const cidr = cidrAt(s.where, s.cidr, 'static cidr');
      // the same range twice in one table: which channel would protect it?
      const before = seenStatic.get(`${s.table}/${cidr}`);
      if (before) throw new ConfigError(s.where, `static ${cidr} (table ${s.table}) is listed twice (also at ${before})`);
      seenStatic.set(`${s.table}/${cidr}`, s.where);
      if (!channelNames.has(s.channel)) throw new ConfigError(s.whereChannel, `static ${cidr}: unknown channel "${s.channel}"${channelHint(d, s.channel, channelNames)}`);
      if (!tableIds.has(s.table)) throw new ConfigError(s.whereTable, `static ${cidr}: unknown table "${s.table}"${hint(tableIds)}`);
      statics.push({ cidr, channel: s.channel, table: s.table });
    });
  }

  const whereMode = where('mode');
  if (v.mode !== 'host' && v.lan.length === 0) {
    problems.list.push(new ConfigError(whereMode, `mode ${v.mode} needs the client-side interface: "lan: [IFACE]" or --lan IFACE`));
  }
  if (v.mode === 'host' && v.enforceDns !== 'off') {
    problems.list.push(new ConfigError(where('enforce_dns'), `enforce_dns ${v.enforceDns} acts on the LAN interfaces of gateway and intercept modes; mode host has none (set it to off)`));
  }
  if (d.role === 'node') checkClassification(v, d, where, problems);
  // the pools as given (a bad CIDR is reported on its own, not as "no pools")
  const poolsGiven = (d.values.get('intercept_pools')?.value as string[] | undefined) ?? [];
  if (v.mode === 'intercept' && poolsGiven.length === 0) {
    problems.list.push(new ConfigError(whereMode, 'mode intercept needs address pools: "intercept_pools: [CIDR]" or --intercept-pool CIDR'));
  }
  problems.throwAll();

  const hosts = hostEntries(d);
  return { ...v, source: d.source, upstreams, channels: chans, tables: tbls, clients, statics, tsigKeys, ...tls, hosts, ...(d.hostsFile ? { hostsFile: d.hostsFile.path } : {}) };
}

/**
 * What a policy server cannot hand out: its EDNS option carries IPsec channels without a local
 * identity (a node's own identity is the node's to configure), and it runs no TLS acceptor.
 */
function refuseNodeOnly(d: Draft, chans: ChannelSpec[], problems: Problems): void {
  for (const c of chans) {
    const at = d.channels.get(c.name)!.where;
    if (c.protocol === 'tls') {
      problems.list.push(new ConfigError(at('protocol'), `channel "${c.name}": a policy server hands out IPsec channels only (its answers carry no TLS fields); configure tls channels on the nodes`));
    } else if (c.localIdentity !== undefined) {
      problems.list.push(new ConfigError(at('local_identity'), `channel "${c.name}": local_identity is a node's own identity and a policy server cannot hand it out; set local_id (or the channel's local_identity) on the nodes`));
    }
  }
  if (d.tlsAccept) problems.list.push(new ConfigError(d.tlsAccept.where(''), 'tls_accept runs in "dnsseal run", not in the policy server'));
}
