/** `dnsseal run`: load the config, build the process-wide dependencies, run the daemon. */
import { Metrics } from '../ops/metrics.ts';
import { ConfigError } from '../util/errors.ts';
import { loadConfig } from '../config/load.ts';
import type { CliContext } from './context.ts';
import { EXIT } from './exit-codes.ts';

export async function runCommand(ctx: CliContext): Promise<number> {
  const p = ctx.args.positionals[0];
  if (p !== undefined) throw new ConfigError('run', `unexpected argument "${p}" (settings are flags: see "dnsseal help run")`);
  const code = await startDaemon(ctx);
  // the daemon logged why; the CLI's contract is 2 for any runtime failure
  return code === 0 ? EXIT.ok : EXIT.runtime;
}

/**
 * Not async: the closures handed to the daemon live as long as it runs, and must not keep the
 * start-up config reachable (a reload frees it: 200k rules of it).
 */
function startDaemon(ctx: CliContext): Promise<number> {
  // loadConfig has checked everything Policy.fromConfig relies on (the daemon builds it once)
  const cfg = loadConfig(ctx.args.values, ctx.files);
  const log = ctx.makeLogger(cfg);
  // reload and SIGHUP re-read the same file with the same flags (flags still win), off the event loop
  const reloadConfig = ctx.offThreadConfig ? ctx.offThreadConfig(ctx.args.values, log) : () => loadConfig(ctx.args.values, ctx.files);
  const down = { viciSocket: cfg.viciSocket, interceptPools: cfg.interceptPools, pinRoot: cfg.pinRoot };
  const kernelDown = (l: typeof log) => ctx.teardown(l, down);
  return ctx.runDaemon(cfg, { log, clock: ctx.clock, metrics: new Metrics(), reloadConfig, kernelDown });
}

