/**
 * The CLI: argv → command → exit code. Errors never escape as stack traces: configuration and
 * usage problems print `where: what` and return 1, an unreachable daemon 3, anything else 2
 * (exit-codes.ts decides which error is which). Flags and arguments are checked before a
 * command runs, so a usage error does nothing.
 */
import { COMMAND_FLAGS, parseArgs, type ParsedArgs } from '../config/flags.ts';
import { ConfigError, DnssealError, errorMessage } from '../util/errors.ts';
import type { CliContext, CliDeps } from './context.ts';
import { EXIT, UNREACHABLE_CODES, USAGE_CODES } from './exit-codes.ts';
import { COMMANDS, renderHelp } from './help.ts';
import { renderManPage } from './man.ts';
import { checkCommand, configDefaultCommand, configReferenceCommand, explainCommand } from './policy-commands.ts';
import { downCommand, flushCommand, listCommand, logCommand, reloadCommand, statusCommand } from './control-commands.ts';
import { runCommand } from './run-command.ts';
import { policyServerCommand } from './policy-server-command.ts';
import { installUnitCommand, resolverSetupCommand } from './ops-commands.ts';

type Command = (ctx: CliContext) => Promise<number>;

const HANDLERS: Record<string, Command> = {
  run: runCommand,
  'policy-server': policyServerCommand,
  check: checkCommand,
  explain: explainCommand,
  list: listCommand,
  status: statusCommand,
  flush: flushCommand,
  reload: reloadCommand,
  log: logCommand,
  down: downCommand,
  'install-unit': installUnitCommand,
  'resolver-setup': resolverSetupCommand,
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
  'config-reference': configReferenceCommand,
  'config-default': configDefaultCommand,
  man: async (ctx) => {
    ctx.io.out(renderManPage(ctx.version));
    return EXIT.ok;
  },
};

/** The positional arguments the command's doc allows (most take none: settings and filters are flags). */
function checkPositionals(args: ParsedArgs): void {
  const spec = COMMANDS[args.command]?.args;
  const max = spec?.max ?? 0;
  const min = spec?.min ?? 0;
  const [first, ...extra] = args.positionals;
  if (args.positionals.length < min) throw new ConfigError(args.command, `needs ${spec!.name}: ${COMMANDS[args.command]!.usage}`);
  if (args.positionals.length > max) {
    const bad = max === 0 ? first : extra[max - 1];
    const what = max === 0 ? 'takes no arguments (settings and filters are flags)' : `takes one ${spec!.name}`;
    throw new ConfigError(args.command, `unexpected argument "${bad}": ${what}; see "dnsseal help ${args.command}"`);
  }
}

export async function runCli(argv: string[], deps: CliDeps): Promise<number> {
  let args: ParsedArgs | undefined;
  try {
    args = parseArgs(argv);
    const handler = HANDLERS[args.command];
    if (!handler) throw new ConfigError(args.command, `unknown command (commands: ${Object.keys(COMMANDS).join(', ')}); see "dnsseal help"`);
    checkPositionals(args);
    return await handler({ ...deps, args, json: args.values.has('json') });
  } catch (err) {
    const command = args?.command ?? argv.find((a) => !a.startsWith('-'));
    // errors in JSON only for a command that takes --json (`version --json` is refused in text)
    const takesJson = command !== undefined && (COMMAND_FLAGS[command] ?? []).some((f) => f.name === 'json');
    return report(err, deps, takesJson && (args?.values.has('json') ?? argv.includes('--json')), command);
  }
}

/** The exit code for an error (exit-codes.ts). */
export function exitCodeOf(err: unknown): number {
  if (!(err instanceof DnssealError)) return EXIT.runtime;
  if (err instanceof ConfigError || USAGE_CODES.has(err.code)) return EXIT.usage;
  if (UNREACHABLE_CODES.has(err.code)) return EXIT.unreachable;
  return EXIT.runtime;
}

function report(err: unknown, deps: CliDeps, json: boolean, command: string | undefined): number {
  const code = exitCodeOf(err);
  const kind = err instanceof DnssealError ? err.code : 'error';
  const message = err instanceof Error ? err.message : errorMessage(err);
  let hint = '';
  if (err instanceof DnssealError && err.code === 'not_running') hint = ' (is "dnsseal run" running? see --control)';
  if (json && command === 'check') {
    // `check --json` answers with its report on stdout in every case, a usage error included
    const where = err instanceof ConfigError ? err.where : '';
    const what = where && message.startsWith(`${where}: `) ? message.slice(where.length + 2) : message;
    deps.io.out(JSON.stringify({ ok: false, errors: [{ file: null, line: null, key: where || null, message: what }], warnings: [], summary: null }) + '\n');
  } else if (json) deps.io.err(JSON.stringify({ ok: false, code: kind, exit: code, error: message }) + '\n');
  else deps.io.err(message.split('\n').map((l) => `dnsseal: ${l}`).join('\n') + `${hint}\n`);
  return code;
}
