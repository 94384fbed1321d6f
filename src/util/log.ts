/**
 * Structured logger: one line per event, logfmt or JSON. Never log secret material
 * (keys, TSIG secrets, private keys) — callers pass names, not values.
 *
 * Level and format change at run time (`configure`, a reload of `log_level` / `log_format`):
 * a logger and every child made from it share one setting.
 */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type LogFormat = 'logfmt' | 'json';
export type LogFields = Record<string, string | number | boolean | undefined | null>;

export interface LogSettings {
  level: LogLevel;
  format: LogFormat;
}

const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  /** A line (at level info) written whatever the level is set to: records asked for on their own (the query log). */
  record(msg: string, fields?: LogFields): void;
  enabled(level: LogLevel): boolean;
  child(fields: LogFields): Logger;
  /** Changes level and/or format for this logger, the one it was made from and every child. */
  configure(settings: Partial<LogSettings>): void;
  settings(): LogSettings;
}

export interface LoggerOptions {
  level?: LogLevel;
  format?: LogFormat;
  write?: (line: string) => void;
  clock?: () => number;
}

/** A logfmt value: bare when it is safe, else a JSON string. */
export function logfmtValue(v: unknown): string {
  const s = String(v);
  return /^[A-Za-z0-9_.:/@%+\-]+$/.test(s) ? s : JSON.stringify(s);
}

/** One line in `format` (fields whose value is undefined are left out). */
export function formatLine(format: LogFormat, all: LogFields): string {
  if (format === 'json') {
    const clean: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(all)) if (v !== undefined) clean[k] = v;
    return JSON.stringify(clean);
  }
  const parts: string[] = [];
  for (const [k, v] of Object.entries(all)) if (v !== undefined) parts.push(`${k}=${logfmtValue(v)}`);
  return parts.join(' ');
}

export function createLogger(opts: LoggerOptions = {}, base: LogFields = {}): Logger {
  return make({ level: opts.level ?? 'info', format: opts.format ?? 'logfmt' }, opts, base);
}

function make(state: LogSettings, opts: LoggerOptions, base: LogFields): Logger {
  const write = opts.write ?? ((line: string) => process.stderr.write(line + '\n'));
  const clock = opts.clock ?? Date.now;
  const line = (lvl: LogLevel, msg: string, fields?: LogFields) =>
    write(formatLine(state.format, { ts: new Date(clock()).toISOString(), level: lvl, msg, ...base, ...fields }));
  const emit = (lvl: LogLevel, msg: string, fields?: LogFields) => {
    if (ORDER[lvl] >= ORDER[state.level]) line(lvl, msg, fields);
  };
  return {
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
    record: (m, f) => line('info', m, f),
    enabled: (l) => ORDER[l] >= ORDER[state.level],
    child: (f) => make(state, opts, { ...base, ...f }),
    configure: (s) => {
      if (s.level !== undefined) state.level = s.level;
      if (s.format !== undefined) state.format = s.format;
    },
    settings: () => ({ ...state }),
  };
}

/** A logger that drops everything (tests, benchmarks); shared, so `configure` leaves it as it is. */
export const silentLogger: Logger = { ...createLogger({ level: 'error', write: () => {} }), configure: () => {} };
