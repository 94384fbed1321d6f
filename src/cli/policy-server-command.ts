/** `dnsseal policy-server --config FILE`: the central rule server (embodiment 2, src/policy-server/). */
import { Metrics } from '../ops/metrics.ts';
import { ConfigError } from '../util/errors.ts';
import type { CliContext } from './context.ts';

export async function policyServerCommand(ctx: CliContext): Promise<number> {
  const p = ctx.args.positionals[0];
  if (p !== undefined) throw new ConfigError('policy-server', `unexpected argument "${p}"`);
  const { runPolicyServerCommand } = await import('../policy-server/command.ts');
  return runPolicyServerCommand(ctx.args.values, {
    clock: ctx.clock,
    log: ctx.makeLogger({ logLevel: 'info', logFormat: 'logfmt' }),
    makeLogger: (cfg) => ctx.makeLogger(cfg),
    metrics: new Metrics(),
    signals: ctx.signals,
    loadDeps: ctx.files,
  });
}
