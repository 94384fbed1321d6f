/**
 * Applies command-line flags over the draft (flags win): scalars replace, lists given on the
 * command line replace the file's list, `--upstream`/`--channel`/`--tsig-key` replace or add
 * by name, `--protect`/`--client-table`/`--static` append.
 */
import { ConfigError, errorMessage } from '../util/errors.ts';
import type { Draft } from './draft.ts';
import { formatHostPort, parseHostPort, parseIpLiteral, pinRootPath } from './address.ts';
import { parseCondition } from '../policy/condition.ts';
import type { ChannelInput } from '../policy/channel.ts';
import { parseRulesFile, type RulesFileDefaults } from './rules-file.ts';
import { parseTsigKeyFlag } from '../dns/tsig-key.ts';
import { CANARY, DATAPATHS, decodeSecret, localTsItem, LOG_FORMATS, LOG_LEVELS, MODES, type SecretReader } from './from-yaml.ts';

type Values = Map<string, string[]>;

function oneOf<T extends string>(flag: string, v: string, allowed: readonly T[]): T {
  if (!allowed.includes(v as T)) throw new ConfigError(`--${flag}`, `must be one of ${allowed.join(', ')}, not "${v}"`);
  return v as T;
}

function int(flag: string, v: string, min: number, max: number): number {
  if (!/^[0-9]+$/.test(v) || Number(v) < min || Number(v) > max) {
    throw new ConfigError(`--${flag}`, `must be a whole number between ${min} and ${max}, not "${v}"`);
  }
  return Number(v);
}

function hostPort(flag: string, v: string, defPort: number | null) {
  try {
    return parseHostPort(v, defPort);
  } catch (err) {
    throw new ConfigError(`--${flag}`, errorMessage(err));
  }
}

/** `NAME=VALUE` split at the first "=". */
function pair(flag: string, v: string, shape: string): [string, string] {
  const eq = v.indexOf('=');
  if (eq <= 0 || eq === v.length - 1) throw new ConfigError(`--${flag}`, `"${v}" is not ${shape}`);
  return [v.slice(0, eq), v.slice(eq + 1)];
}

/** `a,key=value,…` → head and options; refuses options not in `allowed`. */
function options(flag: string, text: string, allowed: string[]): { head: string; opts: Map<string, string> } {
  const [head, ...rest] = text.split(',');
  const opts = new Map<string, string>();
  for (const o of rest) {
    const eq = o.indexOf('=');
    const k = eq < 0 ? o : o.slice(0, eq);
    if (!allowed.includes(k) || eq < 0) {
      throw new ConfigError(`--${flag}`, `unknown option "${o}" (allowed: ${allowed.map((a) => `${a}=…`).join(', ')})`);
    }
    opts.set(k, o.slice(eq + 1));
  }
  return { head: head!, opts };
}

export function parseChannelFlag(v: string): { name: string; input: ChannelInput } {
  const shape = 'NAME=tunnel:GATEWAY[,identity=ID][,esp=PROPOSAL] or NAME=peer[,identity=ID|%name][,esp=PROPOSAL][,negotiate=…][,negotiate_timeout=MS]';
  const [name, spec] = pair('channel', v, shape);
  const { head, opts } = options('channel', spec, ['identity', 'esp', 'negotiate', 'negotiate_timeout']);
  const input: ChannelInput = {};
  if (head === 'peer') input.kind = 'peer';
  else if (head.startsWith('tunnel:') && head.length > 7) Object.assign(input, { kind: 'tunnel', gateway: head.slice(7) });
  else throw new ConfigError('--channel', `"${v}": expected ${shape}`);
  for (const [k, val] of opts) (input as Record<string, unknown>)[k] = val;
  // A number, as YAML gives it; anything else stays text and buildChannel says what is wrong.
  const timeout = opts.get('negotiate_timeout');
  if (timeout !== undefined && /^[0-9]{1,9}$/.test(timeout)) input.negotiate_timeout = Number(timeout);
  return { name, input };
}

export function applyFlags(values: Values, d: Draft, files: SecretReader): void {
  const one = (k: string) => values.get(k)?.at(-1);
  const many = (k: string) => values.get(k);

  const mode = one('mode');
  if (mode !== undefined) {
    d.mode = oneOf('mode', mode, MODES);
    d.whereOf.set('mode', '--mode');
  }
  const listen = many('listen');
  if (listen) d.listen = listen.map((l) => formatHostPort(hostPort('listen', l, null)));
  for (const u of many('upstream') ?? []) {
    const { head, opts } = options('upstream', u, ['tsig-key']);
    const eq = head.indexOf('=');
    const [name, addr] = eq > 0 ? [head.slice(0, eq), head.slice(eq + 1)] : ['default', head];
    const hp = hostPort('upstream', addr, 53);
    const prev = d.upstreams.get(name);
    const tsigKey = opts.get('tsig-key') ?? prev?.spec.tsigKey;
    const spec = { name, address: hp.address, port: hp.port, ...(tsigKey ? { tsigKey } : {}) };
    d.upstreams.set(name, { spec, where: '--upstream', whereTsig: opts.has('tsig-key') ? '--upstream' : (prev?.whereTsig ?? '--upstream') });
  }
  const source = one('upstream-source');
  if (source !== undefined) {
    try {
      d.upstreamSource = { address: parseIpLiteral(source), where: '--upstream-source' };
    } catch (err) {
      throw new ConfigError('--upstream-source', errorMessage(err));
    }
  }
  const datapath = one('datapath');
  if (datapath !== undefined) d.datapath = oneOf('datapath', datapath, DATAPATHS);
  if (many('lan')) {
    d.lan = many('lan')!;
    d.whereOf.set('lan', '--lan');
  }
  if (many('wan')) d.wan = many('wan')!;
  const control = one('control');
  if (control !== undefined) {
    if (control === '') throw new ConfigError('--control', 'needs a path');
    d.control = control;
  }
  const level = one('log-level');
  if (level !== undefined) d.logLevel = oneOf('log-level', level, LOG_LEVELS);
  const format = one('log-format');
  if (format !== undefined) d.logFormat = oneOf('log-format', format, LOG_FORMATS);
  const metrics = one('metrics');
  if (metrics !== undefined) {
    if (metrics === 'off') delete d.metrics;
    else d.metrics = formatHostPort(hostPort('metrics', metrics, null));
  }
  const minHold = one('min-hold');
  if (minHold !== undefined) d.minHoldS = int('min-hold', minHold, 0, 86400 * 7);
  const idle = one('idle');
  if (idle !== undefined) d.idleS = int('idle', idle, 0, 86400 * 7);
  const timeout = one('upstream-timeout');
  if (timeout !== undefined) d.upstreamTimeoutMs = int('upstream-timeout', timeout, 1, 60000);
  const canary = one('canary');
  if (canary !== undefined) d.canary = oneOf('canary', canary, CANARY);

  for (const c of many('channel') ?? []) {
    const { name, input } = parseChannelFlag(c);
    d.channels.set(name, { input, where: () => '--channel' });
  }
  for (const p of many('protect') ?? []) {
    const shape = 'PATTERN=CHANNEL[,upstream=NAME]';
    const [pattern, rest] = pair('protect', p, shape);
    const { head: channel, opts } = options('protect', rest, ['upstream']);
    let condition;
    try {
      condition = parseCondition(pattern);
    } catch (err) {
      throw new ConfigError('--protect', errorMessage(err));
    }
    const table = d.tables.get('default') ?? { where: '--protect', rules: [] };
    d.tables.set('default', table);
    const upstream = opts.get('upstream');
    table.rules.push({
      condition,
      channel,
      ...(upstream ? { upstream } : {}),
      where: { match: '--protect', channel: '--protect', upstream: '--protect' },
    });
  }
  for (const f of many('rules-file') ?? []) {
    const { head: path, opts } = options('rules-file', f, ['channel', 'upstream']);
    let text: string;
    try {
      text = files.readFile(path);
    } catch (err) {
      throw new ConfigError('--rules-file', `cannot read ${path}: ${errorMessage(err).replace(/^.*?: /, '')}`);
    }
    const defaults: RulesFileDefaults = {};
    if (opts.has('channel')) defaults.channel = opts.get('channel')!;
    if (opts.has('upstream')) defaults.upstream = opts.get('upstream')!;
    const table = d.tables.get('default') ?? { where: '--rules-file', rules: [] };
    d.tables.set('default', table);
    for (const r of parseRulesFile(text, path, defaults)) table.rules.push(r);
  }
  for (const c of many('client-table') ?? []) {
    const [cidr, table] = pair('client-table', c, 'CIDR=TABLE');
    d.clients = d.clients.filter((x) => x.cidr !== cidr);
    d.clients.push({ cidr, table, where: '--client-table', whereTable: '--client-table' });
  }
  for (const s of many('static') ?? []) {
    const [cidr, rest] = pair('static', s, 'CIDR=CHANNEL[,table=ID]');
    const { head: channel, opts } = options('static', rest, ['table']);
    d.statics.push({ cidr, channel, table: opts.get('table') ?? 'default', where: '--static', whereChannel: '--static', whereTable: '--static' });
  }
  for (const k of many('tsig-key') ?? []) {
    // Two forms: the secret inline, `NAME:hmac-sha256:BASE64` (issue #5, `dig -y` reordered), or
    // in a file, `NAME=FILE`. Inline when a ':' comes before any '=' (base64 ends in '=').
    const colon = k.indexOf(':');
    const eq = k.indexOf('=');
    if (colon > 0 && (eq < 0 || colon < eq)) {
      const key = parseTsigKeyFlag(k, '--tsig-key');
      // Keyed by the name as written, like the file form: `tsig-key=` on an upstream names it so.
      d.tsigKeys.set(k.slice(0, colon), { secret: key.secret, where: '--tsig-key' });
      continue;
    }
    const [name, file] = pair('tsig-key', k, 'NAME=FILE or NAME:hmac-sha256:BASE64');
    try {
      d.tsigKeys.set(name, { secret: decodeSecret(files.readFile(file)), where: '--tsig-key' });
    } catch (err) {
      throw new ConfigError('--tsig-key', `key "${name}" from ${file}: ${errorMessage(err)}`);
    }
  }
  const ps = one('policy-server');
  if (ps !== undefined) d.policyServer = { name: ps, where: '--policy-server' };
  if (many('intercept-pool')) {
    d.interceptPools = many('intercept-pool')!;
    d.whereOf.set('intercept_pools', '--intercept-pool');
  }
  const vici = one('vici-socket');
  if (vici !== undefined) {
    if (vici === '') throw new ConfigError('--vici-socket', 'needs a path');
    d.viciSocket = vici;
  }
  const pinRoot = one('pin-root');
  if (pinRoot !== undefined) {
    d.pinRoot = pinRootPath(pinRoot, (msg) => {
      throw new ConfigError('--pin-root', msg);
    });
  }
  const localId = one('local-id');
  if (localId !== undefined) {
    if (localId === '') throw new ConfigError('--local-id', 'needs an identity (a name or address in our certificate)');
    d.localId = localId;
  }
  if (many('local-ts')) {
    d.localTs = many('local-ts')!.map((t) => {
      try {
        return localTsItem(t);
      } catch (err) {
        throw new ConfigError('--local-ts', errorMessage(err));
      }
    });
  }
}

/** Flags that carry policy: when any is given without --config, the example rules are dropped. */
export const POLICY_FLAGS = ['protect', 'rules-file', 'channel', 'client-table', 'static'];
