/**
 * One base error for the whole project. `code` is stable (scripts and tests match on it),
 * `component` prefixes the message (`vici: load-conn failed: …`), `cause` keeps the chain.
 */
export class DnssealError extends Error {
  readonly code: string;
  readonly component: string;

  constructor(component: string, code: string, message: string, options?: { cause?: unknown }) {
    super(`${component}: ${message}`, options);
    this.name = 'DnssealError';
    this.code = code;
    this.component = component;
  }
}

/** A user-facing configuration or flag error, with where it was found (`file:line` or `--flag`). */
export class ConfigError extends DnssealError {
  readonly where: string;

  constructor(where: string, message: string, options?: { cause?: unknown }) {
    super('config', 'config_invalid', message, options);
    this.name = 'ConfigError';
    this.where = where;
    // Operators read "file:line: what is wrong", so the location leads.
    this.message = where ? `${where}: ${message}` : message;
  }
}

/** Reads any thrown value as a message, without crashing on non-Error values. */
export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
