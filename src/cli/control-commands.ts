/**
 * Commands that talk to the running daemon over the control socket: list, status, flush,
 * reload, down. `down` with no daemon falls back to tearing the kernel state down directly.
 */
import { DEFAULT_CONTROL_SOCKET } from '../control/protocol.ts';
import { formatList } from '../control/format.ts';
import { cacheFlushSelection, checkFlushFilter, type ListRow } from '../control/handlers.ts';
import { loadChecked, loadControlSettings } from './config-load.ts';
import { ConfigError, DnssealError, errorMessage } from '../util/errors.ts';
import type { Logger } from '../util/log.ts';
import type { KernelDownOptions } from '../daemon/down.ts';
import type { CliContext } from './context.ts';
import { EXIT } from './exit-codes.ts';
import { formatStatus } from './status-format.ts';
import type { StatusReport } from '../daemon/status.ts';

/**
 * --control, else the control path of --config FILE, else the default. The commands that only
 * read (`list`, `status`) pass `readOnly`: a file with errors elsewhere (an edit in progress)
 * must not keep them from showing what runs; they use its `control` and say the file has
 * errors. The commands that act refuse such a file (exit 1, nothing done).
 */
export function controlPath(ctx: CliContext, readOnly = false): string {
  const flag = ctx.args.settings.get('control')?.at(-1);
  if (flag) return flag;
  if (!ctx.args.settings.has('config')) return DEFAULT_CONTROL_SOCKET;
  if (!readOnly) return loadChecked(ctx.args.settings, ctx).config.control;
  const r = loadControlSettings(ctx.args.settings, ctx, ['control']);
  if (r.warning) ctx.io.err(`dnsseal: ${r.warning}\n`);
  return r.settings.control;
}

/** The given filters, as the daemon takes them (it knows the running tables and refuses others). */
function filterArgs(ctx: CliContext, keys: string[]): Record<string, string> {
  const args: Record<string, string> = {};
  for (const k of keys) {
    const v = ctx.args.values.get(k)?.at(-1);
    if (v !== undefined) args[k] = v;
  }
  return args;
}

/** Human rendering of nested status data: `key: value`, nested objects indented. */
export function formatTree(value: unknown, indent = ''): string {
  if (value === null || typeof value !== 'object') return `${String(value)}\n`;
  if (Array.isArray(value)) {
    if (value.every((v) => v === null || typeof v !== 'object')) return `${value.join(', ') || '-'}\n`;
    return '\n' + value.map((v) => `${indent}- ${formatTree(v, indent + '  ').trimStart()}`).join('');
  }
  const entries = Object.entries(value as Record<string, unknown>);
  if (entries.length === 0) return '-\n';
  return (
    (indent ? '\n' : '') +
    entries
      .map(([k, v]) => {
        const rendered = formatTree(v, indent + '  ');
        return `${indent}${k}:${rendered.startsWith('\n') ? '' : ' '}${rendered}`;
      })
      .join('')
  );
}

export async function listCommand(ctx: CliContext): Promise<number> {
  const args = filterArgs(ctx, ['name', 'address', 'channel', 'table']);
  // the syntax of a pattern or address is refused here already, before the daemon is asked,
  // by flush's own check (list takes them as flush does; channel and table: the daemon knows)
  const problem = checkFlushFilter({ name: args.name, address: args.address });
  if (problem) throw new ConfigError(`--${problem.filter}`, problem.filter === 'name' ? `${problem.message} (a name, or a pattern written as in rules)` : problem.message);
  const rows = (await ctx.controlRequest(controlPath(ctx, true), { cmd: 'list', args })) as ListRow[];
  ctx.io.out(ctx.json ? JSON.stringify(rows) + '\n' : formatList(rows));
  return EXIT.ok;
}

export async function statusCommand(ctx: CliContext): Promise<number> {
  const st = await ctx.controlRequest(controlPath(ctx, true), { cmd: 'status' });
  if (ctx.json) ctx.io.out(JSON.stringify(st) + '\n');
  // a daemon of another version may answer another shape: show it as it is rather than fail
  else ctx.io.out(isStatusReport(st) ? formatStatus(st, ctx.clock.nowMs()) : formatTree(st));
  return EXIT.ok;
}

function isStatusReport(v: unknown): v is StatusReport {
  return typeof v === 'object' && v !== null && 'version' in v && 'uptime_s' in v && 'queries' in v && 'upstream_latency' in v;
}

/**
 * The filters go to the daemon as given: it knows the configured channels and tables and
 * refuses unknown ones (exit 1, nothing flushed); a malformed pattern, address or CIDR is
 * refused here already.
 */
export async function flushCommand(ctx: CliContext): Promise<number> {
  if (ctx.args.values.has('cache')) return flushCacheCommand(ctx);
  const args = filterArgs(ctx, ['channel', 'table', 'name', 'address']);
  const problem = checkFlushFilter(args);
  if (problem) throw new ConfigError(`--${problem.filter}`, problem.message);
  const r = (await ctx.controlRequest(controlPath(ctx), { cmd: 'flush', args })) as { released?: number; retired?: number };
  // Flushed entries are retired, not dropped: traffic to them stays in its channel (or dropped).
  ctx.io.out(ctx.json ? JSON.stringify(r) + '\n' : `flushed: ${r.retired ?? 0} entr${r.retired === 1 ? 'y' : 'ies'} retired, ${r.released ?? 0} name(s) released\n`);
  return EXIT.ok;
}

/** `flush --cache [--name PATTERN]`: empties the answer cache, or the entries of the names PATTERN selects. */
async function flushCacheCommand(ctx: CliContext): Promise<number> {
  const args: Record<string, unknown> = { cache: true, ...filterArgs(ctx, ['channel', 'table', 'name', 'address']) };
  try {
    cacheFlushSelection(args);
  } catch (err) {
    throw new ConfigError('--cache', errorMessage(err).replace(/^control: /, ''));
  }
  const r = (await ctx.controlRequest(controlPath(ctx), { cmd: 'flush', args })) as { cacheRemoved?: number };
  const n = r.cacheRemoved ?? 0;
  ctx.io.out(ctx.json ? JSON.stringify(r) + '\n' : `flushed: ${n} cached answer${n === 1 ? '' : 's'} removed\n`);
  return EXIT.ok;
}

export async function reloadCommand(ctx: CliContext): Promise<number> {
  const r = await ctx.controlRequest(controlPath(ctx), { cmd: 'reload' });
  ctx.io.out(ctx.json ? JSON.stringify(r ?? null) + '\n' : `reloaded${r && typeof r === 'object' ? ':' + formatTree(r, '  ') : '\n'}`);
  return EXIT.ok;
}

/** `dnsseal log queries on|off`: switches the running daemon's query log. */
export async function logCommand(ctx: CliContext): Promise<number> {
  const [what, state] = ctx.args.positionals;
  if (what !== 'queries') throw new ConfigError('log', `unknown log "${what}": dnsseal log queries on|off`);
  if (state !== 'on' && state !== 'off') throw new ConfigError('log', `"${state}": dnsseal log queries on|off`);
  const r = (await ctx.controlRequest(controlPath(ctx), { cmd: 'log', args: { what, on: state === 'on' } })) as { queries: boolean };
  ctx.io.out(ctx.json ? JSON.stringify(r) + '\n' : `query log ${r.queries ? 'on' : 'off'}\n`);
  return EXIT.ok;
}

export async function downCommand(ctx: CliContext): Promise<number> {
  const path = controlPath(ctx);
  const log = ctx.makeLogger({ logLevel: 'warn', logFormat: 'logfmt' });
  let viaDaemon = false;
  try {
    await ctx.controlRequest(path, { cmd: 'down' });
    viaDaemon = true;
    // The daemon replies, stops, and removes its kernel state; wait until it is gone so that
    // `down` returns only when nothing is left (scripts rely on that).
    await waitUntilGone(ctx, path);
  } catch (err) {
    if (!(err instanceof DnssealError) || err.code !== 'not_running') throw err;
  }
  // Remove whatever is left (idempotent): a previous run's state, or what the daemon could not.
  const removed = await teardownWhenFree(ctx, log, downOptions(ctx));
  if (ctx.json) ctx.io.out(JSON.stringify({ via: viaDaemon ? 'daemon' : 'teardown', removed }) + '\n');
  else if (viaDaemon) ctx.io.out(`down: the daemon stopped and removed its kernel state${removed.length ? `; also removed:\n${removed.map((l) => `  ${l}\n`).join('')}` : '\n'}`);
  else ctx.io.out(removed.length ? `down: no daemon on ${path}; removed:\n${removed.map((l) => `  ${l}\n`).join('')}` : `down: no daemon on ${path} and nothing left in the kernel\n`);
  return EXIT.ok;
}

/** The VICI socket, intercept pools and pin root from flags or the config file, if given. */
function downOptions(ctx: CliContext): KernelDownOptions {
  const vici = ctx.args.settings.get('vici-socket')?.at(-1);
  const pools = ctx.args.settings.get('intercept-pool');
  const pins = ctx.args.settings.get('pin-root')?.at(-1);
  if (ctx.args.settings.has('config') || pins !== undefined) {
    const cfg = loadChecked(ctx.args.settings, ctx).config;
    return { viciSocket: vici ?? cfg.viciSocket, interceptPools: pools ?? cfg.interceptPools, pinRoot: cfg.pinRoot };
  }
  return { viciSocket: vici, interceptPools: pools };
}

/** Polls the control socket until nobody answers (bounded: 15 s). */
async function waitUntilGone(ctx: CliContext, path: string): Promise<void> {
  const deadline = ctx.clock.monoMs() + 15_000;
  while (ctx.clock.monoMs() < deadline) {
    try {
      await ctx.controlRequest(path, { cmd: 'status' });
    } catch (err) {
      if (err instanceof DnssealError && err.code === 'not_running') return;
    }
    await Bun.sleep(100);
  }
  throw new DnssealError('control', 'timeout', `down: the daemon on ${path} acknowledged but is still running after 15 s`);
}

/** The daemon holds the pins' lock until its process ends: retry `busy` for a bounded time. */
async function teardownWhenFree(ctx: CliContext, log: Logger, opts: KernelDownOptions): Promise<string[]> {
  const deadline = ctx.clock.monoMs() + 10_000;
  for (;;) {
    try {
      return await ctx.teardown(log, opts);
    } catch (err) {
      if (!(err instanceof DnssealError && err.code === 'busy') || ctx.clock.monoMs() >= deadline) throw err;
      await Bun.sleep(100);
    }
  }
}
