/**
 * `dnsseal run`: load the config (every problem reported at once, exit 1), build the
 * process-wide dependencies, log the config's warnings, run the daemon.
 */
import { Metrics } from '../ops/metrics.ts';
import { problemText, type Problem } from '../config/check.ts';
import { ConfigError } from '../util/errors.ts';
import type { Logger } from '../util/log.ts';
import type { CliContext } from './context.ts';
import { loadChecked, RUN_SHADOW_RULES } from './config-load.ts';
import { EXIT } from './exit-codes.ts';

/** Warnings never stop the daemon; they are logged, one line each, at start and at each reload. */
function logWarnings(log: Logger, warnings: Problem[]): void {
  for (const w of warnings) log.warn(`config: ${problemText(w)}`);
}

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
  // the check has checked everything Policy.fromConfig relies on (the daemon builds it once)
  const { config: cfg, warnings } = loadChecked(ctx.args.values, ctx);
  const log = ctx.makeLogger(cfg);
  // first: it may start the process again (same pid), which must happen before anything is
  // opened or logged
  ctx.applyMemoryPlan?.(cfg.memoryPlanMb, log);
  logWarnings(log, warnings);
  // reload and SIGHUP re-read the same file with the same flags (flags still win), off the
  // event loop when the worker is there
  const onWarnings = (w: Problem[]) => logWarnings(log, w);
  const reloadConfig = ctx.offThreadConfig
    ? ctx.offThreadConfig(ctx.args.values, { log, onWarnings, interfaces: ctx.interfaces, maxShadowRules: RUN_SHADOW_RULES })
    : () => {
        const r = loadChecked(ctx.args.values, ctx);
        onWarnings(r.warnings);
        return r.config;
      };
  const down = { viciSocket: cfg.viciSocket, interceptPools: cfg.interceptPools, pinRoot: cfg.pinRoot };
  const kernelDown = (l: typeof log) => ctx.teardown(l, down);
  return ctx.runDaemon(cfg, { log, clock: ctx.clock, metrics: new Metrics(), reloadConfig, kernelDown, version: ctx.version });
}
