/**
 * Reads a YAML document into the draft: types, enums, ranges and unknown keys are checked
 * here, each error located at its line. Cross-references (a rule's channel exists, …) are
 * checked once flags have been applied, in finalize.ts.
 */
import { CHANNEL_FIELDS, CLIENT_FIELDS, knownKeys, RULE_FIELDS, SCHEMA, STATIC_FIELDS, TSIG_FIELDS, UPSTREAM_FIELDS } from './schema.ts';
import { isObj, type YamlDoc } from './yaml-doc.ts';
import type { Draft, DraftRule } from './draft.ts';
import { formatHostPort, parseHostPort, parseIpLiteral, pinRootPath } from './address.ts';
import { parseCondition } from '../policy/condition.ts';
import { parseCidr } from '../policy/cidr.ts';
import { errorMessage } from '../util/errors.ts';
import type { DatapathKind, Mode } from './types.ts';
import { parseRulesFile, type RulesFileDefaults } from './rules-file.ts';
import { dirname, isAbsolute, join } from 'node:path';

export const MODES: readonly Mode[] = ['host', 'gateway', 'intercept'];
export const DATAPATHS: readonly DatapathKind[] = ['ebpf', 'none', 'auto', 'fake'];
export const LOG_LEVELS = ['debug', 'info', 'warn', 'error'] as const;
export const LOG_FORMATS = ['logfmt', 'json'] as const;
export const CANARY = ['nxdomain', 'pass'] as const;

export interface SecretReader {
  readFile(path: string): string;
}

export function decodeSecret(b64: string): Uint8Array {
  const t = b64.trim();
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(t) || t.length % 4 !== 0) throw new Error('the secret is not base64');
  const bytes = Uint8Array.from(atob(t), (c) => c.charCodeAt(0));
  if (bytes.length < 16) throw new Error(`the secret is ${bytes.length} bytes; use at least 16 (e.g. 32 random bytes, base64)`);
  return bytes;
}

/** Expands a `- rules_file: PATH` item (PATH relative to the config file). */
function readRulesFile(doc: YamlDoc, item: Record<string, unknown>, rp: (string | number)[], files: SecretReader): DraftRule[] {
  const rel = doc.str(item.rules_file, [...rp, 'rules_file'], 'rules_file');
  const path = isAbsolute(rel) || !doc.source.includes('/') ? rel : join(dirname(doc.source), rel);
  let text: string;
  try {
    text = files.readFile(path);
  } catch (err) {
    return doc.fail([...rp, 'rules_file'], `cannot read rules file ${path}: ${errorMessage(err).replace(/^.*?: /, '')}`);
  }
  const defaults: RulesFileDefaults = {};
  if (item.channel !== undefined) defaults.channel = doc.str(item.channel, [...rp, 'channel'], 'channel');
  if (item.upstream !== undefined) defaults.upstream = doc.str(item.upstream, [...rp, 'upstream'], 'upstream');
  return parseRulesFile(text, path, defaults);
}

/** A `local_ts` item: `dynamic` or a CIDR (normalised); throws a plain Error otherwise. */
export function localTsItem(text: string): string {
  if (text === 'dynamic') return text;
  try {
    return parseCidr(text).text;
  } catch (err) {
    throw new Error(`local_ts: ${errorMessage(err)} (a CIDR like 10.1.0.0/24, or "dynamic")`);
  }
}

type HostPortReader = (v: unknown, path: (string | number)[], what: string, defPort: number | null) => { address: string; port: number };

function readUpstreams(doc: YamlDoc, upstreams: unknown, d: Draft, hostPort: HostPortReader): void {
  if (upstreams === null) return;
  if (!isObj(upstreams)) doc.fail(['upstreams'], 'must be a mapping name → ADDR[:PORT], e.g. "default: 9.9.9.9"');
  for (const [name, v] of doc.entries(upstreams, ['upstreams'])) {
    const path = ['upstreams', name];
    let addr: unknown = v;
    let tsigKey: string | undefined;
    if (isObj(v)) {
      doc.checkKeys(v, path, knownKeys(UPSTREAM_FIELDS));
      addr = v.address;
      if (v.tsig_key !== undefined) tsigKey = doc.str(v.tsig_key, [...path, 'tsig_key'], 'tsig_key');
    }
    const hp = hostPort(addr, isObj(v) ? [...path, 'address'] : path, `upstream "${name}"`, 53);
    d.upstreams.set(name, {
      spec: { name, address: hp.address, port: hp.port, ...(tsigKey ? { tsigKey } : {}) },
      where: doc.at(path),
      whereTsig: doc.at([...path, 'tsig_key']),
    });
  }
}

export function applyYaml(doc: YamlDoc, d: Draft, files: SecretReader): void {
  const r = doc.root;
  doc.checkKeys(r, [], knownKeys(SCHEMA));
  const hostPort = (v: unknown, path: (string | number)[], what: string, defPort: number | null) => {
    try {
      return parseHostPort(doc.str(v, path, what), defPort);
    } catch (err) {
      return doc.fail(path, `${what}: ${errorMessage(err)}`);
    }
  };

  // One entry per key; each runs on its own so that one bad value does not hide the next.
  const keys: Record<string, () => void> = {
    mode: () => {
      d.mode = doc.oneOf(r.mode, ['mode'], MODES);
      d.whereOf.set('mode', doc.at(['mode']));
    },
    listen: () => {
      const raw = r.listen === null ? [] : Array.isArray(r.listen) ? r.listen : [r.listen];
      d.listen = raw.map((v, i) => formatHostPort(hostPort(v, ['listen', i], 'listen', null)));
      if (d.listen.length === 0) doc.fail(['listen'], 'needs at least one ADDR:PORT');
    },
    upstreams: () => readUpstreams(doc, r.upstreams, d, hostPort),
    upstream_source: () => {
      if (r.upstream_source === null) {
        delete d.upstreamSource;
        return;
      }
      const text = doc.str(r.upstream_source, ['upstream_source'], 'upstream_source');
      try {
        d.upstreamSource = { address: parseIpLiteral(text), where: doc.at(['upstream_source']) };
      } catch (err) {
        doc.fail(['upstream_source'], `upstream_source: ${errorMessage(err)}`);
      }
    },
    datapath: () => (d.datapath = doc.oneOf(r.datapath, ['datapath'], DATAPATHS)),
    lan: () => {
      d.lan = doc.strList(r.lan, ['lan'], 'an interface name');
      d.whereOf.set('lan', doc.at(['lan']));
    },
    wan: () => (d.wan = doc.strList(r.wan, ['wan'], 'an interface name')),
    control: () => (d.control = doc.str(r.control, ['control'], 'control')),
    log_level: () => (d.logLevel = doc.oneOf(r.log_level, ['log_level'], LOG_LEVELS)),
    log_format: () => (d.logFormat = doc.oneOf(r.log_format, ['log_format'], LOG_FORMATS)),
    metrics: () => {
      if (r.metrics === null || r.metrics === false || r.metrics === 'off') delete d.metrics;
      else d.metrics = formatHostPort(hostPort(r.metrics, ['metrics'], 'metrics', null));
    },
    min_hold: () => (d.minHoldS = doc.int(r.min_hold, ['min_hold'], 0, 86400 * 7, 'seconds')),
    idle: () => (d.idleS = doc.int(r.idle, ['idle'], 0, 86400 * 7, 'seconds')),
    upstream_timeout: () => (d.upstreamTimeoutMs = doc.int(r.upstream_timeout, ['upstream_timeout'], 1, 60000, 'milliseconds')),
    canary: () => (d.canary = doc.oneOf(r.canary, ['canary'], CANARY)),
    vici_socket: () => (d.viciSocket = doc.str(r.vici_socket, ['vici_socket'], 'vici_socket')),
    pin_root: () => (d.pinRoot = pinRootPath(doc.str(r.pin_root, ['pin_root'], 'pin_root'), (msg) => doc.fail(['pin_root'], msg))),
    local_id: () => {
      if (r.local_id === null) delete d.localId;
      else d.localId = doc.str(r.local_id, ['local_id'], 'local_id');
    },
    local_ts: () => {
      const items = doc.strList(r.local_ts, ['local_ts'], 'a CIDR or "dynamic"');
      d.localTs = items.map((t, i) => {
        try {
          return localTsItem(t);
        } catch (err) {
          return doc.fail(Array.isArray(r.local_ts) ? ['local_ts', i] : ['local_ts'], errorMessage(err));
        }
      });
    },
  };
  for (const [key, apply] of Object.entries(keys)) if (key in r) doc.section(apply);

  doc.section(() => {
    if ('channels' in r && r.channels !== null) {
      if (!isObj(r.channels)) doc.fail(['channels'], 'must be a mapping name → {kind, gateway, identity, esp}');
      for (const [name, v] of doc.entries(r.channels, ['channels'])) {
        const path = ['channels', name];
        doc.section(() => {
          if (!isObj(v)) doc.fail(path, `channel "${name}" must be a mapping with at least "kind"`);
          doc.checkKeys(v, path, knownKeys(CHANNEL_FIELDS));
          d.channels.set(name, { input: { ...v }, where: (field) => doc.at(field ? [...path, field] : path) });
        });
      }
    }
  });
  doc.section(() => {
    if ('tables' in r && r.tables !== null) {
      if (!isObj(r.tables)) doc.fail(['tables'], 'must be a mapping table id → list of rules');
      for (const [id, list] of doc.entries(r.tables, ['tables'])) {
        const path = ['tables', id];
        if (list !== null && !Array.isArray(list)) doc.fail(path, `table "${id}" must be a list of rules ("- match: …")`);
        const rules: DraftRule[] = [];
        (list ?? []).forEach((item: unknown, i: number) =>
          doc.section(() => {
          const rp = [...path, i];
          if (!isObj(item)) doc.fail(rp, 'a rule is a mapping: {match: PATTERN, channel: NAME}');
          doc.checkKeys(item, rp, knownKeys(RULE_FIELDS));
          if (item.rules_file !== undefined) {
            if (item.match !== undefined) doc.fail(rp, 'an item has either "match" or "rules_file", not both');
            for (const r of readRulesFile(doc, item, rp, files)) rules.push(r); // no spread: 10^6 rules
            return;
          }
          if (item.match === undefined) doc.fail(rp, 'rule has no "match" (or "rules_file")');
          if (item.channel === undefined) doc.fail(rp, 'rule has no "channel"');
          const pattern = doc.str(item.match, [...rp, 'match'], 'match');
          let condition;
          try {
            condition = parseCondition(pattern);
          } catch (err) {
            doc.fail([...rp, 'match'], `table "${id}" rule ${i}: ${errorMessage(err)}`);
          }
          const rule: DraftRule = {
            condition,
            channel: doc.str(item.channel, [...rp, 'channel'], 'channel'),
            where: { match: doc.at([...rp, 'match']), channel: doc.at([...rp, 'channel']), upstream: doc.at([...rp, 'upstream']) },
          };
          if (item.upstream !== undefined) rule.upstream = doc.str(item.upstream, [...rp, 'upstream'], 'upstream');
          rules.push(rule);
          }),
        );
        d.tables.set(id, { where: doc.at(path), rules });
      }
    }
  });
  doc.section(() => {
    if ('clients' in r && r.clients !== null) {
      if (!Array.isArray(r.clients)) doc.fail(['clients'], 'must be a list of {cidr, table}');
      r.clients.forEach((c: unknown, i: number) => {
        const p = ['clients', i];
        if (!isObj(c)) doc.fail(p, 'a client entry is {cidr: CIDR, table: ID}');
        doc.checkKeys(c, p, knownKeys(CLIENT_FIELDS));
        d.clients.push({
          cidr: doc.str(c.cidr, [...p, 'cidr'], 'cidr'),
          table: doc.str(c.table, [...p, 'table'], 'table'),
          where: doc.at([...p, 'cidr']),
          whereTable: doc.at([...p, 'table']),
        });
      });
    }
  });
  doc.section(() => {
    if ('static' in r && r.static !== null) {
      if (!Array.isArray(r.static)) doc.fail(['static'], 'must be a list of {cidr, channel, table}');
      r.static.forEach((s: unknown, i: number) => {
        const p = ['static', i];
        if (!isObj(s)) doc.fail(p, 'a static entry is {cidr: CIDR, channel: NAME}');
        doc.checkKeys(s, p, knownKeys(STATIC_FIELDS));
        d.statics.push({
          cidr: doc.str(s.cidr, [...p, 'cidr'], 'cidr'),
          channel: doc.str(s.channel, [...p, 'channel'], 'channel'),
          table: s.table === undefined ? 'default' : doc.str(s.table, [...p, 'table'], 'table'),
          where: doc.at([...p, 'cidr']),
          whereChannel: doc.at([...p, 'channel']),
          whereTable: doc.at([...p, 'table']),
        });
      });
    }
  });
  doc.section(() => {
    if ('tsig_keys' in r && r.tsig_keys !== null) {
      if (!isObj(r.tsig_keys)) doc.fail(['tsig_keys'], 'must be a mapping name → {algorithm, secret | secret_file}');
      for (const [name, k] of doc.entries(r.tsig_keys, ['tsig_keys'])) {
        const p = ['tsig_keys', name];
        if (!isObj(k)) doc.fail(p, `key "${name}" must be a mapping {algorithm, secret}`);
        doc.checkKeys(k, p, knownKeys(TSIG_FIELDS));
        if (k.algorithm !== undefined) doc.oneOf(k.algorithm, [...p, 'algorithm'], ['hmac-sha256']);
        if ((k.secret === undefined) === (k.secret_file === undefined)) doc.fail(p, `key "${name}" needs exactly one of "secret" or "secret_file"`);
        const field = k.secret !== undefined ? 'secret' : 'secret_file';
        let text: string;
        try {
          text = field === 'secret' ? doc.str(k.secret, [...p, field], 'secret') : files.readFile(doc.str(k.secret_file, [...p, field], 'secret_file'));
          d.tsigKeys.set(name, { secret: decodeSecret(text), where: doc.at(p) });
        } catch (err) {
          doc.fail([...p, field], `key "${name}": ${errorMessage(err)}`);
        }
      }
    }
  });
  doc.section(() => {
    if ('policy_server' in r && r.policy_server !== null) {
      d.policyServer = { name: doc.str(r.policy_server, ['policy_server'], 'policy_server'), where: doc.at(['policy_server']) };
    }
  });
  doc.section(() => {
    if ('intercept_pools' in r) {
      d.interceptPools = doc.strList(r.intercept_pools, ['intercept_pools'], 'a CIDR');
      d.whereOf.set('intercept_pools', doc.at(['intercept_pools']));
    }
  });
  doc.throwErrors();
}
