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
 * base loader still reports `file:line` correctly for everything else.
 */
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, join } from 'node:path';
import type { Config } from '../config/types.ts';
import { StaticKeyring } from '../dns/tsig-key.ts';
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
export function splitServeSection(text: string): { rest: string; serve: string | null; line: number } {
  const lines = text.split('\n');
  const start = lines.findIndex((l) => /^serve\s*:/.test(l));
  if (start < 0) return { rest: text, serve: null, line: 0 };
  let end = start + 1;
  while (end < lines.length && (/^\s/.test(lines[end]!) || lines[end]!.trim() === '' || lines[end]!.startsWith('#'))) end++;
  const block = lines.slice(start, end);
  const rest = [...lines.slice(0, start), ...block.map(() => ''), ...lines.slice(end)].join('\n');
  if (lines.slice(end).some((l) => /^serve\s*:/.test(l))) throw new ConfigError(`${start + 1}`, 'serve: appears twice');
  return { rest, serve: block.join('\n'), line: start + 1 };
}

function lineOf(section: string, key: string, firstLine: number): number {
  const idx = section.split('\n').findIndex((l) => new RegExp(`^\\s+${key}\\s*:`).test(l));
  return idx < 0 ? firstLine : firstLine + idx;
}

/** Validates the `serve:` section; zone paths are relative to the config file. */
export function parseServeSection(section: string | null, source: string, firstLine: number, base: Config): PolicyServerOptions {
  const opts: PolicyServerOptions = { zone: null, trustedKeys: [], requireTsig: false, annotate: 'signed', fudgeS: 300 };
  if (section === null) return opts;
  let raw: unknown;
  try {
    raw = (Bun.YAML.parse(section) as { serve?: unknown } | null)?.serve;
  } catch (err) {
    throw new ConfigError(`${source}:${firstLine}`, `serve: is not valid YAML: ${(err as Error).message}`);
  }
  if (raw === null || raw === undefined) return opts;
  if (typeof raw !== 'object' || Array.isArray(raw)) throw new ConfigError(`${source}:${firstLine}`, 'serve: must be a mapping');
  const obj = raw as Record<string, unknown>;
  const at = (k: string) => `${source}:${lineOf(section, k, firstLine)}`;
  for (const k of Object.keys(obj)) {
    if (!(SERVE_KEYS as readonly string[]).includes(k)) throw new ConfigError(at(k), `serve: unknown key "${k}" (known: ${SERVE_KEYS.join(', ')})`);
  }
  if (obj.trusted_keys !== undefined) {
    if (!Array.isArray(obj.trusted_keys) || !obj.trusted_keys.every((k) => typeof k === 'string')) {
      throw new ConfigError(at('trusted_keys'), 'serve.trusted_keys must be a list of TSIG key names');
    }
    const known = new Set(base.tsigKeys.map((k) => k.name.toLowerCase().replace(/\.$/, '')));
    for (const k of obj.trusted_keys as string[]) {
      const n = k.toLowerCase().replace(/\.$/, '');
      if (!known.has(n)) throw new ConfigError(at('trusted_keys'), `serve.trusted_keys names "${k}", which is not in tsig_keys`);
      opts.trustedKeys.push(n);
    }
  }
  if (obj.require_tsig !== undefined) {
    if (typeof obj.require_tsig !== 'boolean') throw new ConfigError(at('require_tsig'), 'serve.require_tsig must be true or false');
    opts.requireTsig = obj.require_tsig;
  }
  if (obj.annotate !== undefined) {
    if (obj.annotate !== 'signed' && obj.annotate !== 'all') throw new ConfigError(at('annotate'), 'serve.annotate must be "signed" or "all"');
    opts.annotate = obj.annotate;
  }
  if (obj.fudge !== undefined) {
    if (typeof obj.fudge !== 'number' || !Number.isInteger(obj.fudge) || obj.fudge < 1 || obj.fudge > 3600) {
      throw new ConfigError(at('fudge'), 'serve.fudge must be whole seconds, 1..3600 (300 recommended, RFC 8945 §10)');
    }
    opts.fudgeS = obj.fudge;
  }
  if (obj.zone_origin !== undefined && typeof obj.zone_origin !== 'string') throw new ConfigError(at('zone_origin'), 'serve.zone_origin must be a domain name');
  if (obj.zone !== undefined) {
    if (typeof obj.zone !== 'string' || obj.zone === '') throw new ConfigError(at('zone'), 'serve.zone must be a path to a zone file');
    const path = isAbsolute(obj.zone) || source.startsWith('<') ? obj.zone : join(dirname(source), obj.zone);
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (err) {
      throw new ConfigError(at('zone'), `cannot read zone file ${path}: ${(err as Error).message}`);
    }
    opts.zone = Zone.parse(text, path, (obj.zone_origin as string | undefined) ?? '');
  }
  return opts;
}

/** Reads and validates a policy-server config file (or text, for tests). */
export function loadPolicyServerConfig(source: string, loadBase: BaseLoader, text?: string): PolicyServerConfig {
  let body = text;
  if (body === undefined) {
    try {
      body = readFileSync(source, 'utf8');
    } catch (err) {
      throw new ConfigError(source, `cannot read config: ${(err as Error).message}`);
    }
  }
  const split = splitServeSection(body);
  const base = loadBase(split.rest, source);
  const serve = parseServeSection(split.serve, source, split.line, base);
  if (!serve.zone && base.upstreams.length === 0) {
    throw new ConfigError(source, 'a policy server needs serve.zone or at least one upstream to answer from');
  }
  return { base, serve, keyring: new StaticKeyring(base.tsigKeys) };
}
