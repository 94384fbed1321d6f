/**
 * The commands that work from the configuration alone: `check` and `explain` (offline, the
 * same flags as `run`), and the hidden `config-reference` / `config-default`.
 */
import { loadConfig, EMBEDDED_DEFAULT } from '../config/load.ts';
import { renderReference } from '../config/reference.ts';
import { DEFAULT_NEGOTIATE_TIMEOUT_MS } from '../ipsec/channel-manager.ts';
import { Policy } from '../policy/policy.ts';
import { explain, type Explanation } from '../policy/explain.ts';
import { isIP } from '../policy/cidr.ts';
import { ConfigError } from '../util/errors.ts';
import type { Config } from '../config/types.ts';
import type { CliContext } from './context.ts';
import { EXIT } from './exit-codes.ts';

export function loadPolicy(ctx: CliContext): { cfg: Config; policy: Policy } {
  const cfg = loadConfig(ctx.args.settings, ctx.files);
  return { cfg, policy: Policy.fromConfig(cfg) };
}

export async function checkCommand(ctx: CliContext): Promise<number> {
  const { cfg } = loadPolicy(ctx);
  const rules = cfg.tables.reduce((n, t) => n + t.rules.length, 0);
  const summary = {
    ok: true,
    source: cfg.source,
    mode: cfg.mode,
    listen: cfg.listen,
    upstreams: cfg.upstreams.map((u) => `${u.name}=${u.address.includes(':') ? `[${u.address}]` : u.address}:${u.port}`),
    channels: cfg.channels.map((c) => c.name),
    tables: cfg.tables.length,
    rules,
    clients: cfg.clients.length,
    statics: cfg.statics.length,
  };
  if (ctx.json) {
    ctx.io.out(JSON.stringify(summary) + '\n');
  } else {
    ctx.io.out(
      `OK ${cfg.source}: mode ${cfg.mode}, listen ${cfg.listen.join(' ')}, upstreams ${summary.upstreams.join(' ')}, ` +
        `${cfg.channels.length} channel(s), ${cfg.tables.length} table(s) with ${rules} rule(s), ` +
        `${cfg.clients.length} client range(s), ${cfg.statics.length} static entr${cfg.statics.length === 1 ? 'y' : 'ies'}\n`,
    );
  }
  return EXIT.ok;
}

export function formatExplanation(e: Explanation, cfg: Config): string {
  const up = cfg.upstreams.find((u) => u.name === e.upstream);
  const lines = [
    ['name', e.name],
    ['client', e.client ?? '(none given: default table)'],
    ['table', `${e.table}${cfg.tables.some((t) => t.id === e.table) ? '' : ' (not configured: no rules)'}`],
    ['rule', e.rule ? `#${e.rule.index} ${e.rule.pattern} (${e.rule.kind})${e.rule.source ? ` from ${e.rule.source}` : ''}` : 'none: answers pass through, traffic stays in clear'],
  ];
  if (e.channel) {
    const c = e.channel;
    const how = c.kind === 'tunnel' ? `tunnel via ${c.gateway}` : 'peer (IKE straight to each resolved address)';
    lines.push(['channel', `${c.name}: ${how}, peer identity ${c.peerIdentity}${c.identity === '%name' ? ' (%name)' : ''}, esp ${c.esp}, id ${c.id}, mark 0x${c.mark.toString(16)}`]);
    if (c.kind === 'peer') {
      lines.push([
        'negotiate',
        c.negotiate === 'on-traffic'
          ? 'on-traffic: the answer goes out at once; the first packets wait (dropped) until the SA is up'
          : `before-answer: the answer waits up to ${c.negotiateTimeoutMs ?? DEFAULT_NEGOTIATE_TIMEOUT_MS} ms for the SA, else SERVFAIL and the address is blocked`,
      ]);
    }
  } else {
    lines.push(['channel', 'none']);
  }
  lines.push(['upstream', up ? `${up.name} (${up.address.includes(':') ? `[${up.address}]` : up.address}:${up.port})` : e.upstream]);
  const hint = e.rule ? undefined : apexHint(e, cfg);
  if (hint) lines.push(['hint', hint]);
  const width = Math.max(10, ...lines.map(([k]) => k!.length + 2));
  return lines.map(([k, v]) => `${(k + ':').padEnd(width)}${v}`).join('\n') + '\n';
}

/** A subdomain rule `**.example.com` leaves `example.com` itself out: say so when it is asked about. */
function apexHint(e: Explanation, cfg: Config): string | undefined {
  const table = cfg.tables.find((t) => t.id === e.table);
  const apex = table?.rules.find((r) => r.condition.kind === 'subdomain' && r.condition.labels.join('.') === e.name);
  if (!apex) return undefined;
  return `"${apex.condition.pattern}" (rule #${apex.index}) covers names below ${e.name}, not ${e.name} itself; write "*.${e.name}" to cover both`;
}

export async function explainCommand(ctx: CliContext): Promise<number> {
  const name = ctx.args.positionals[0]!; // exactly one: checked with the flags (app.ts)
  const client = ctx.args.values.get('client')?.at(-1);
  if (client !== undefined && !isIP(client)) throw new ConfigError('--client', `"${client}" is not an IP address`);
  const { cfg, policy } = loadPolicy(ctx);
  const e = explain(policy, name, client);
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
