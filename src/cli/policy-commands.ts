/**
 * The commands that work from the configuration alone: `check` and `explain` (offline, the
 * same flags as `run`), and the hidden `config-reference` / `config-default`.
 */
import { formatServerSpec } from '../proxy/server-spec.ts';
import { checkConfig, problemText } from '../config/check.ts';
import { EMBEDDED_DEFAULT } from '../config/load.ts';
import { loadChecked } from './config-load.ts';
import { renderReference } from '../config/reference.ts';
import { DEFAULT_NEGOTIATE_TIMEOUT_MS } from '../ipsec/channel-manager.ts';
import { Policy, type StaticProtection } from '../policy/policy.ts';
import { parseCidr, PrefixTable } from '../policy/cidr.ts';
import { forEachTarget } from '../policy/rule-list.ts';
import { explain, type Explanation, type RuleRef } from '../policy/explain.ts';
import { LocalRecords, type LocalRecord } from '../proxy/local-records.ts';
import { canonicalIp, isIP } from '../util/ip.ts';
import { canonicalLabels } from '../policy/name.ts';
import { ConfigError, errorMessage } from '../util/errors.ts';
import type { Config } from '../config/types.ts';
import type { CliContext } from './context.ts';
import { EXIT } from './exit-codes.ts';

export function loadPolicy(ctx: CliContext): { cfg: Config; policy: Policy } {
  const cfg = loadChecked(ctx.args.settings, ctx).config;
  return { cfg, policy: Policy.fromConfig(cfg) };
}

/** How many warnings the human output lists (`--json` has them all). */
const SHOWN_WARNINGS = 100;

/**
 * Every problem in one pass. `--json` prints `{ok, errors, warnings, summary}` on stdout in every
 * case (summary null when invalid); otherwise errors and warnings go to stderr, one
 * `file:line: key: message` each, and the summary to stdout. Exit 1 when there is an error;
 * warnings never fail it.
 */
export async function checkCommand(ctx: CliContext): Promise<number> {
  const r = checkConfig(ctx.args.settings, ctx.files, { interfaces: ctx.interfaces });
  let cfg = r.config;
  if (cfg) {
    try {
      Policy.fromConfig(cfg); // what `run` builds first: the loader checked what it needs
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      r.errors.push({ file: null, line: null, key: null, message: err.message });
      cfg = undefined;
    }
  }
  const summary = cfg ? checkSummary(cfg) : null;
  if (ctx.json) {
    ctx.io.out(JSON.stringify({ ok: cfg !== undefined, errors: r.errors, warnings: r.warnings, summary }) + '\n');
    return cfg ? EXIT.ok : EXIT.usage;
  }
  const lines = [...r.errors.map((e) => `dnsseal: ${problemText(e)}`), ...r.warnings.slice(0, SHOWN_WARNINGS).map((w) => `dnsseal: warning: ${problemText(w)}`)];
  if (r.warnings.length > SHOWN_WARNINGS) lines.push(`dnsseal: … and ${r.warnings.length - SHOWN_WARNINGS} more warnings ("dnsseal check --json" lists them all)`);
  if (r.errors.length > 1 || (r.errors.length && r.warnings.length)) lines.push(`dnsseal: ${count(r.errors.length, 'error')}, ${count(r.warnings.length, 'warning')}`);
  if (lines.length) ctx.io.err(lines.join('\n') + '\n');
  if (!cfg || !summary) return EXIT.usage;
  ctx.io.out(
    `OK ${cfg.source}: mode ${cfg.mode}, listen ${cfg.listen.join(' ')}, upstreams ${summary.upstreams.join(' ')}, ` +
      `${count(cfg.channels.length, 'channel')}, ${count(cfg.tables.length, 'table')} with ${count(summary.rules, 'rule')}, ` +
      `${count(cfg.clients.length, 'client range')}, ${count(cfg.statics.length, 'static entry', 'static entries')}` +
      `${summary.forwardingRules ? `, ${count(summary.forwardingRules, 'forwarding rule')}` : ''}${summary.localNames ? `, ${count(summary.localNames, 'local name')}` : ''}` +
      `${r.warnings.length ? `; ${count(r.warnings.length, 'warning')}` : ''}\n`,
  );
  return EXIT.ok;
}

function count(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

function checkSummary(cfg: Config) {
  return {
    source: cfg.source,
    mode: cfg.mode,
    listen: cfg.listen,
    upstreams: cfg.upstreams.map((u) => `${u.name}=${u.servers.map(formatServerSpec).join(',')}`),
    channels: cfg.channels.map((c) => c.name),
    tables: cfg.tables.length,
    rules: cfg.tables.reduce((n, t) => n + t.rules.length, 0),
    clients: cfg.clients.length,
    statics: cfg.statics.length,
    forwardingRules: cfg.tables.reduce((n, t) => {
      forEachTarget(t.rules, (_i, channel) => void (channel === undefined && n++));
      return n;
    }, 0),
    localNames: new LocalRecords(cfg.hosts ?? [], cfg.hostsTtlS).size,
  };
}

/**
 * `explain`'s answer: the policy's (src/policy/explain.ts) and, for a local name (`hosts:`,
 * `hosts_file`), `local`: its records and TTL — answered by dnsseal, no upstream asked (the
 * rules still decide whether it is protected: registered before it is released).
 */
export type CliExplanation = Explanation & { local?: { records: LocalRecord[]; ttl: number } };

export function explainWithHosts(e: Explanation, cfg: Config): CliExplanation {
  const records = new LocalRecords(cfg.hosts ?? [], cfg.hostsTtlS).records(e.name);
  return records ? { ...e, local: { records, ttl: cfg.hostsTtlS } } : e;
}

export function formatExplanation(e: CliExplanation, cfg: Config): string {
  const up = cfg.upstreams.find((u) => u.name === e.upstream);
  const lines = [
    ['name', e.name],
    ['client', e.client ?? '(none given: default table)'],
    ['table', `${e.table}${cfg.tables.some((t) => t.id === e.table) ? '' : ' (not configured: no rules)'}`],
    ['rule', e.rule ? ruleText(e.rule) : 'none: answers pass through, traffic stays in clear'],
  ];
  if (e.channel) {
    const c = e.channel;
    const tls = c.protocol === 'tls';
    const how = tls
      ? c.kind === 'tunnel'
        ? `tls tunnel via ${c.gateway} port ${c.tlsPort}`
        : `tls peer (mutual TLS 1.3 to each resolved address, port ${c.tlsPort}; TCP only, through the relay, anything else dropped)`
      : c.kind === 'tunnel'
        ? `tunnel via ${c.gateway}`
        : 'peer (IKE straight to each resolved address)';
    const own = c.localIdentity ? `, local identity ${c.localIdentity}` : '';
    lines.push(['channel', `${c.name}: ${how}, peer identity ${c.peerIdentity}${c.identity === '%name' ? ' (%name)' : ''}${own}${tls ? '' : `, esp ${c.esp}`}, id ${c.id}, mark 0x${c.mark.toString(16)}`]);
    if (c.kind === 'peer' && !tls) {
      lines.push([
        'negotiate',
        c.negotiate === 'on-traffic'
          ? 'on-traffic: the answer goes out at once; the first packets wait (dropped) until the SA is up'
          : `before-answer: the answer waits up to ${c.negotiateTimeoutMs ?? DEFAULT_NEGOTIATE_TIMEOUT_MS} ms for the SA, else SERVFAIL and the address is blocked`,
      ]);
    }
  } else {
    lines.push(['channel', e.rule?.forwarding && !e.local ? `none: forwarded to upstream ${e.upstream}, not protected` : 'none']);
  }
  if (e.local) {
    const records = e.local.records.map((r) => `${r.type} ${r.data}`).join(', ');
    lines.push(['local', `${records} (TTL ${e.local.ttl} s; other types: NODATA)`]);
    lines.push(['upstream', `none: a local name, answered by dnsseal${e.channel ? ' (registered before it is released)' : ''}`]);
  } else {
    const by = e.upstreamRule ? `, chosen by rule ${ruleText(e.upstreamRule)}` : '';
    lines.push(['upstream', `${up ? `${up.name} (${up.servers.map(formatServerSpec).join(', ')})` : e.upstream}${by}`]);
  }
  const hint = e.rule ? undefined : apexHint(e, cfg);
  if (hint) lines.push(['hint', hint]);
  const width = Math.max(10, ...lines.map(([k]) => k!.length + 2));
  return lines.map(([k, v]) => `${(k + ':').padEnd(width)}${v}`).join('\n') + '\n';
}

function ruleText(r: RuleRef): string {
  return `#${r.index} ${r.pattern} (${r.kind}${r.forwarding ? ', forwarding' : ''})${r.source ? ` from ${r.source}` : ''}`;
}

/** A subdomain rule `**.example.com` leaves `example.com` itself out: say so when it is asked about. */
function apexHint(e: Explanation, cfg: Config): string | undefined {
  const table = cfg.tables.find((t) => t.id === e.table);
  const apex = table?.rules.find((r) => r.condition.kind === 'subdomain' && r.condition.labels.join('.') === e.name);
  if (!apex) return undefined;
  return `"${apex.condition.pattern}" (rule #${apex.index}) covers names below ${e.name}, not ${e.name} itself; write "*.${e.name}" to cover both`;
}

/**
 * The NAME `explain` is asked about: a name a client could query (labels of letters, digits,
 * `-`, `_`, Unicode as A-labels; trailing dot allowed). A pattern, an empty name or a malformed
 * one is refused — saying "no rule, traffic stays in clear" about a name nobody can ask would
 * mislead.
 */
export function checkExplainName(name: string): void {
  if (name === '' || name === '.') throw new ConfigError('explain', `needs a domain name, not "${name}" (e.g. dnsseal explain www.corp.example)`);
  if (name.includes('*')) {
    const example = name.replace(/^\*\*?\./, 'www.').replace(/\.\*$/, '.example').replace(/\*/g, 'www');
    throw new ConfigError('explain', `"${name}" is a pattern; explain takes a name a client would ask for, e.g. "${example}"`);
  }
  try {
    canonicalLabels(name.endsWith('.') ? name.slice(0, -1) : name);
  } catch (err) {
    throw new ConfigError('explain', `"${name}" is not a domain name: ${errorMessage(err)}`);
  }
}

/**
 * `explain ADDRESS`: no rule matches an address — the static entry (`static:`) of the client's
 * table that always protects it, or null: then only a protected name's answer protects it, while
 * its entry lives (the running daemon's `list --address` shows that).
 * JSON: {"address", "client", "table", "static": {"cidr", "channel": {…}} | null}.
 */
export interface AddressExplanation {
  address: string;
  client: string | null;
  table: string;
  static: { cidr: string; channel: Explanation['channel'] } | null;
}

export function explainAddress(policy: Policy, address: string, client: string | undefined): AddressExplanation {
  const table = policy.tableFor(client ?? '');
  const within = new PrefixTable<StaticProtection>();
  for (const s of policy.statics()) if (s.table === table.id) within.add(parseCidr(s.cidr), s);
  const hit = within.lookup(address);
  return {
    address: canonicalIp(address) ?? address,
    client: client ?? null,
    table: table.id,
    static: hit ? { cidr: hit.cidr, channel: { ...hit.channel, peerIdentity: hit.channel.identity } } : null,
  };
}

function formatAddressExplanation(e: AddressExplanation): string {
  const lines = [
    ['address', e.address],
    ['client', e.client ?? '(none given: default table)'],
    ['table', e.table],
    [
      'static',
      e.static
        ? `${e.static.cidr} through channel ${e.static.channel!.name} (${e.static.channel!.protocol === 'tls' ? 'tls ' : ''}${e.static.channel!.kind}): always protected, whatever DNS says`
        : `none: not always protected; traffic to it is protected while a protected name's answer holds it ("dnsseal list --address ${e.address}" asks the running daemon)`,
    ],
  ];
  return lines.map(([k, v]) => `${(k + ':').padEnd(10)}${v}`).join('\n') + '\n';
}

export async function explainCommand(ctx: CliContext): Promise<number> {
  const name = ctx.args.positionals[0]!; // exactly one: checked with the flags (app.ts)
  const client = ctx.args.values.get('client')?.at(-1);
  if (client !== undefined && !isIP(client)) throw new ConfigError('--client', `"${client}" is not an IP address`);
  if (isIP(name)) {
    // an address is matched by static entries, never by a rule
    const { policy } = loadPolicy(ctx);
    const a = explainAddress(policy, name, client);
    ctx.io.out(ctx.json ? JSON.stringify(a) + '\n' : formatAddressExplanation(a));
    return EXIT.ok;
  }
  checkExplainName(name);
  const { cfg, policy } = loadPolicy(ctx);
  const e = explainWithHosts(explain(policy, name, client), cfg);
  ctx.io.out(ctx.json ? JSON.stringify(e) + '\n' : formatExplanation(e, cfg));
  return EXIT.ok;
}

export async function configReferenceCommand(ctx: CliContext): Promise<number> {
  ctx.io.out(renderReference());
  return EXIT.ok;
}

export async function configDefaultCommand(ctx: CliContext): Promise<number> {
  ctx.io.out(EMBEDDED_DEFAULT);
  return EXIT.ok;
}
