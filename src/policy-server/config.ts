/**
 * Policy-server configuration: the proxy's own YAML (same `listen`, `upstreams`, `tsig_keys`,
 * `channels`, `tables`, `clients` — the same rule syntax, parsed by the same loader) plus one
 * top-level `serve:` section with what only a policy server needs:
 *
 *   serve:
 *     zone: nec.com.zone          # answer names under this zone from the file (else forward)
 *     zone_origin: nec.com        # default origin if the file has no $ORIGIN
 *     trusted_keys: [lan-gw]      # keys whose signed queries may name the client by ECS
 *     require_tsig: false         # true: unsigned queries get REFUSED
 *     annotate: signed            # `signed` (default) or `all` EDNS answers carry the option
 *     fudge: 300                  # seconds of clock skew accepted on signed queries
 *
 * The `serve:` block is cut out of the text line-for-line (blank lines take its place), so the
 * base loader still reports `file:line` correctly for everything else; the block is read at its
 * own lines by the config's YamlDoc, so its problems are located the same way. Problems of both
 * parts are reported together.
 */
import { readTextFile } from '../util/text-file.ts';
import { dirname, isAbsolute, join } from 'node:path';
import type { Config } from '../config/types.ts';
import { StaticKeyring } from '../dns/tsig-key.ts';
import { ConfigErrors, isObj, YamlDoc } from '../config/yaml-doc.ts';
import type { KeyPath } from '../config/yaml-locator.ts';
import { ConfigError } from '../util/errors.ts';
import { Zone } from './zone.ts';

export interface PolicyServerOptions {
  zone: Zone | null;
  trustedKeys: string[];
  requireTsig: boolean;
  annotate: 'signed' | 'all';
  fudgeS: number;
}

export interface PolicyServerConfig {
  base: Config;
  serve: PolicyServerOptions;
  keyring: StaticKeyring;
}

/** Loads the shared part of the config (A's loader: YAML text + source → Config). */
export type BaseLoader = (text: string, source: string) => Config;

export const SERVE_KEYS = ['zone', 'zone_origin', 'trusted_keys', 'require_tsig', 'annotate', 'fudge'] as const;

/** Splits the top-level `serve:` block off, keeping line numbers of the rest. */
export function splitServeSection(text: string, source = '<config>'): { rest: string; serve: string | null; line: number } {
  const lines = text.split('\n');
  const start = lines.findIndex((l) => /^serve\s*:/.test(l));
  if (start < 0) return { rest: text, serve: null, line: 0 };
  let end = start + 1;
  while (end < lines.length && (/^\s/.test(lines[end]!) || lines[end]!.trim() === '' || lines[end]!.startsWith('#'))) end++;
  const block = lines.slice(start, end);
  const rest = [...lines.slice(0, start), ...block.map(() => ''), ...lines.slice(end)].join('\n');
  const again = lines.slice(end).findIndex((l) => /^serve\s*:/.test(l));
  if (again >= 0) throw new ConfigError(`${source}:${end + again + 1}`, `serve: appears twice (first at line ${start + 1}); YAML would keep only the last one`);
  return { rest, serve: block.join('\n'), line: start + 1 };
}

/** `"yes"`, `0`, `[1,2]`: a value as the message quotes it. */
const shown = (v: unknown): string => (typeof v === 'number' && !Number.isFinite(v) ? String(v) : JSON.stringify(v));

/**
 * Validates the `serve:` section; zone paths are relative to the config file. Every problem is
 * reported, each at its `file:line` with the key, the value given and what is expected (a
 * ConfigErrors when there are several). `tsigKeys`: the names `trusted_keys` may use; null
 * when the rest of the config did not load (membership is then not checked).
 */
export function parseServeSection(section: string | null, source: string, firstLine: number, base: Pick<Config, 'tsigKeys'> | null): PolicyServerOptions {
  const opts: PolicyServerOptions = { zone: null, trustedKeys: [], requireTsig: false, annotate: 'signed', fudgeS: 300 };
  if (section === null) return opts;
  // the block at its own lines, so that the YAML locator gives the file's line numbers
  const doc = new YamlDoc(source, '\n'.repeat(Math.max(0, firstLine - 1)) + section);
  const raw = doc.root.serve;
  if (raw === null || raw === undefined) return opts;
  if (!isObj(raw)) doc.fail(['serve'], `serve: must be a mapping of ${SERVE_KEYS.join(', ')}, not ${shown(raw)}`);
  const obj = raw as Record<string, unknown>;
  doc.checkKeys(obj, ['serve'], [...SERVE_KEYS]);
  /** Runs one key's check; `bad` reports `serve.KEY: EXPECTED, not VALUE` at the value's line. */
  type Bad = (expected: string, value?: unknown, path?: KeyPath) => never;
  const check = (key: (typeof SERVE_KEYS)[number], fn: (v: unknown, bad: Bad) => void) => {
    if (obj[key] === undefined) return;
    const bad: Bad = (expected, value = obj[key], path = ['serve', key]) => doc.fail(path, `serve.${key}: ${expected}, not ${shown(value)}`);
    doc.section(() => fn(obj[key], bad));
  };
  check('trusted_keys', (v, bad) => {
    if (!Array.isArray(v)) return bad('must be a list of TSIG key names (of tsig_keys)');
    const known = base ? new Set(base.tsigKeys.map((k) => k.name.toLowerCase().replace(/\.$/, ''))) : null;
    const names = base ? base.tsigKeys.map((k) => k.name).join(', ') || 'none' : '';
    v.forEach((k, i) =>
      doc.section(() => {
        if (typeof k !== 'string' || k === '') return bad('must list TSIG key names', k, ['serve', 'trusted_keys', i]);
        const n = k.toLowerCase().replace(/\.$/, '');
        if (known && !known.has(n)) return bad(`must name keys of tsig_keys (${names})`, k, ['serve', 'trusted_keys', i]);
        opts.trustedKeys.push(n);
      }),
    );
  });
  check('require_tsig', (v, bad) => {
    if (typeof v !== 'boolean') return bad('must be true or false');
    opts.requireTsig = v;
  });
  check('annotate', (v, bad) => {
    if (v !== 'signed' && v !== 'all') return bad('must be signed or all');
    opts.annotate = v;
  });
  check('fudge', (v, bad) => {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > 3600) return bad('must be whole seconds between 1 and 3600 (300 recommended, RFC 8945 §10)');
    opts.fudgeS = v;
  });
  check('zone_origin', (v, bad) => {
    if (typeof v !== 'string' || v === '') return bad('must be a domain name (the origin of a zone file without $ORIGIN)');
  });
  check('zone', (v, bad) => {
    if (typeof v !== 'string' || v === '') return bad('must be the path of a zone file (relative to the config file)');
    const path = isAbsolute(v) || source.startsWith('<') ? v : join(dirname(source), v);
    let text: string;
    try {
      text = readTextFile(path);
    } catch (err) {
      return doc.fail(['serve', 'zone'], `serve.zone: cannot read zone file ${path}: ${(err as Error).message}`);
    }
    const origin = typeof obj.zone_origin === 'string' ? obj.zone_origin : '';
    opts.zone = Zone.parse(text, path, origin);
  });
  doc.throwErrors();
  return opts;
}

/** The problems one ConfigError stands for (a ConfigErrors holds several). */
const problemsOf = (err: ConfigError): ConfigError[] => (err instanceof ConfigErrors ? err.errors : [err]);

/**
 * Reads and validates a policy-server config file (or text, for tests). The shared part and
 * the `serve:` section are both checked before anything is thrown, so every problem of the
 * file is reported at once, in line order.
 */
export function loadPolicyServerConfig(source: string, loadBase: BaseLoader, text?: string): PolicyServerConfig {
  let body = text;
  if (body === undefined) {
    try {
      body = readTextFile(source);
    } catch (err) {
      throw new ConfigError(source, `cannot read config: ${(err as Error).message}`);
    }
  }
  const split = splitServeSection(body, source);
  const problems: ConfigError[] = [];
  const attempt = <T>(fn: () => T): T | null => {
    try {
      return fn();
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      problems.push(...problemsOf(err));
      return null;
    }
  };
  const base = attempt(() => loadBase(split.rest, source));
  const serve = attempt(() => parseServeSection(split.serve, source, split.line, base));
  if (base && serve && !serve.zone && base.upstreams.length === 0) {
    problems.push(new ConfigError(source, 'a policy server needs serve.zone or at least one upstream to answer from'));
  }
  if (problems.length === 1) throw problems[0]!;
  if (problems.length > 1) {
    const line = (e: ConfigError) => Number(/:(\d+)$/.exec(e.where)?.[1] ?? Number.MAX_SAFE_INTEGER);
    throw new ConfigErrors([...problems].sort((a, b) => line(a) - line(b)));
  }
  return { base: base!, serve: serve!, keyring: new StaticKeyring(base!.tsigKeys) };
}
