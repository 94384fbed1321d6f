/**
 * Structured logger: one line per event, logfmt or JSON. Never log secret material
 * (keys, TSIG secrets, private keys) — callers pass names, not values.
 */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type LogFormat = 'logfmt' | 'json';
export type LogFields = Record<string, string | number | boolean | undefined | null>;

const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  enabled(level: LogLevel): boolean;
  child(fields: LogFields): Logger;
}

export interface LoggerOptions {
  level?: LogLevel;
  format?: LogFormat;
  write?: (line: string) => void;
  clock?: () => number;
}

function logfmtValue(v: unknown): string {
  const s = String(v);
  return /^[A-Za-z0-9_.:/@%+\-]+$/.test(s) ? s : JSON.stringify(s);
}

export function createLogger(opts: LoggerOptions = {}, base: LogFields = {}): Logger {
  const level = opts.level ?? 'info';
  const format = opts.format ?? 'logfmt';
  const write = opts.write ?? ((line: string) => process.stderr.write(line + '\n'));
  const clock = opts.clock ?? Date.now;
  const emit = (lvl: LogLevel, msg: string, fields?: LogFields) => {
    if (ORDER[lvl] < ORDER[level]) return;
    const all: LogFields = { ts: new Date(clock()).toISOString(), level: lvl, msg, ...base, ...fields };
    if (format === 'json') {
      const clean: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(all)) if (v !== undefined) clean[k] = v;
      write(JSON.stringify(clean));
    } else {
      const parts: string[] = [];
      for (const [k, v] of Object.entries(all)) if (v !== undefined) parts.push(`${k}=${logfmtValue(v)}`);
      write(parts.join(' '));
    }
  };
  return {
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
    enabled: (l) => ORDER[l] >= ORDER[level],
    child: (f) => createLogger(opts, { ...base, ...f }),
  };
}

/** A logger that drops everything (tests, benchmarks). */
export const silentLogger: Logger = createLogger({ level: 'error', write: () => {} });
