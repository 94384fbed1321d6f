/**
 * Process exit codes, documented in `dnsseal help` and the README. Scripts rely on them; do
 * not renumber. Which errors map to which code is decided here, for every command.
 */
export const EXIT = {
  /** Success. */
  ok: 0,
  /** Bad configuration, flags or usage: nothing was done. */
  usage: 1,
  /** Runtime failure: the daemon could not start or stopped on an error, a command failed. */
  runtime: 2,
  /** The daemon is not reachable on its control socket (not running, no permission, no reply). */
  unreachable: 3,
} as const;

/** What each code means, for `dnsseal help` and the man page. */
export const EXIT_MEANINGS: Array<[number, string]> = [
  [EXIT.ok, 'success'],
  [
    EXIT.usage,
    'configuration, flag or usage error, nothing was done (also: a reload the daemon refused as invalid, a flush filter or list --table naming an unknown channel or table); messages say file:line or --flag',
  ],
  [EXIT.runtime, 'runtime error (the daemon failed to start or stopped on an error; a command failed)'],
  [EXIT.unreachable, 'the daemon is not reachable on its control socket (not running, no permission, no reply)'],
];

/** Control-client error codes that mean "no daemon to talk to" (see src/control/client.ts). */
export const UNREACHABLE_CODES = new Set(['not_running', 'permission_denied', 'timeout', 'connect_failed']);

/**
 * Error codes that mean the input was wrong and nothing was done (exit 1), besides every
 * ConfigError (`config_invalid`): a policy file the policy server refused, a reload the daemon
 * refused because the file is invalid, control arguments the daemon refused (a flush filter
 * naming an unknown channel or table), a listen address resolver-setup cannot use, a binary path
 * install-unit cannot write into a unit.
 */
export const USAGE_CODES = new Set(['config_invalid', 'policy_invalid', 'reload_invalid', 'bad_args', 'bad_listen', 'address_conflict', 'bad_binary']);
