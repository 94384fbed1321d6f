/** `dnsseal policy-server --config FILE`: the central rule server (embodiment 2, src/policy-server/). */
import { Metrics } from '../ops/metrics.ts';
import type { CliContext } from './context.ts';

export async function policyServerCommand(ctx: CliContext): Promise<number> {
  const { runPolicyServerCommand } = await import('../policy-server/command.ts');
  return runPolicyServerCommand(ctx.args.settings, {
    clock: ctx.clock,
    log: ctx.makeLogger({ logLevel: 'info', logFormat: 'logfmt' }),
    makeLogger: (cfg) => ctx.makeLogger(cfg),
    metrics: new Metrics(),
    signals: ctx.signals,
    loadDeps: ctx.files,
  });
}
