/**
 * The CLI: argv → command → exit code. Errors never escape as stack traces: configuration and
 * usage problems print `where: what` and return 1, an unreachable daemon 3, anything else 2.
 */
import { parseArgs, type ParsedArgs } from '../config/flags.ts';
import { ConfigError, DnssealError, errorMessage } from '../util/errors.ts';
import type { CliContext, CliDeps } from './context.ts';
import { EXIT, UNREACHABLE_CODES } from './exit-codes.ts';
import { COMMANDS, renderHelp } from './help.ts';
import { checkCommand, configDefaultCommand, configReferenceCommand, explainCommand } from './policy-commands.ts';
import { downCommand, flushCommand, listCommand, reloadCommand, statusCommand } from './control-commands.ts';
import { runCommand } from './run-command.ts';
import { policyServerCommand } from './policy-server-command.ts';
import { installUnitCommand, resolverSetupCommand } from './ops-commands.ts';

type Command = (ctx: CliContext) => Promise<number>;

/** Machine set-up commands: their own flags (no config keys), so they bypass parseArgs. */
const OPS_HANDLERS: Record<string, (argv: string[], deps: CliDeps) => Promise<number>> = {
  'install-unit': installUnitCommand,
  'resolver-setup': resolverSetupCommand,
};

const HANDLERS: Record<string, Command> = {
  run: runCommand,
  'policy-server': policyServerCommand,
  check: checkCommand,
  explain: explainCommand,
  list: listCommand,
  status: statusCommand,
  flush: flushCommand,
  reload: reloadCommand,
  down: downCommand,
  version: async (ctx) => {
    ctx.io.out(`dnsseal ${ctx.version}\n`);
    return EXIT.ok;
  },
  help: async (ctx) => {
    const topic = ctx.args.positionals[0];
    if (topic && !COMMANDS[topic]) throw new ConfigError('help', `unknown command "${topic}" (commands: ${Object.keys(COMMANDS).join(', ')})`);
    ctx.io.out(renderHelp(topic));
    return EXIT.ok;
  },
  // hidden: used to generate src/config/REFERENCE.md and to show the embedded default
  'config-reference': configReferenceCommand,
  'config-default': configDefaultCommand,
};

export async function runCli(argv: string[], deps: CliDeps): Promise<number> {
  let args: ParsedArgs | undefined;
  try {
    const ops = OPS_HANDLERS[argv[0] ?? ''];
    if (ops && !argv.includes('--help') && !argv.includes('-h')) return await ops(argv.slice(1), deps);
    args = parseArgs(argv);
    const handler = HANDLERS[args.command];
    if (!handler) {
      throw new ConfigError(args.command, `unknown command (commands: ${Object.keys(COMMANDS).join(', ')}); see "dnsseal help"`);
    }
    return await handler({ ...deps, args, json: args.values.has('json') });
  } catch (err) {
    return report(err, deps, args?.values.has('json') ?? false);
  }
}

function report(err: unknown, deps: CliDeps, json: boolean): number {
  let code: number = EXIT.runtime;
  let kind = 'error';
  if (err instanceof ConfigError) {
    code = EXIT.usage;
    kind = err.code;
  } else if (err instanceof DnssealError) {
    kind = err.code;
    if (UNREACHABLE_CODES.has(err.code)) code = EXIT.unreachable;
    else if (err.code === 'policy_invalid') code = EXIT.usage;
  }
  const message = err instanceof Error ? err.message : errorMessage(err);
  let hint = '';
  if (code === EXIT.unreachable && err instanceof DnssealError && err.code === 'not_running') hint = ' (is "dnsseal run" running? see --control)';
  if (code === EXIT.unreachable && err instanceof DnssealError && err.code === 'permission_denied') hint = ' (the control socket is root-only: try sudo)';
  if (json) deps.io.err(JSON.stringify({ ok: false, code: kind, exit: code, error: message }) + '\n');
  else deps.io.err(message.split('\n').map((l) => `dnsseal: ${l}`).join('\n') + `${hint}\n`);
  return code;
}
