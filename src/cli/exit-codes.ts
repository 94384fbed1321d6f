/**
 * Process exit codes, documented in `dnsseal help`. Scripts rely on them; do not renumber.
 */
export const EXIT = {
  /** Success. */
  ok: 0,
  /** Bad configuration, flags or usage: nothing was started. */
  usage: 1,
  /** Runtime failure: the daemon could not start or stopped on an error, a command failed. */
  runtime: 2,
  /** The daemon is not reachable on its control socket (not running, no permission, no reply). */
  unreachable: 3,
} as const;

/** Control-client error codes that mean "no daemon to talk to" (see src/control/client.ts). */
export const UNREACHABLE_CODES = new Set(['not_running', 'permission_denied', 'timeout']);
