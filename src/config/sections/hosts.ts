/**
 * Local records (issue 12; src/proxy/local-records.ts answers them):
 *
 *   hosts:                                  # name → address or list of addresses
 *     router.lan: 192.168.1.1
 *     nas.lan: [192.168.1.10, "fd00::10"]
 *   hosts_file: /etc/dnsseal/hosts          # /etc/hosts format: ADDR NAME [ALIAS…], `#` comments
 *
 * `--host NAME=ADDR[,ADDR…]` (repeatable; the first flag for a name replaces the file's
 * addresses of it, the next ones add) and `--hosts-file FILE` (replaces the file's). A name is
 * a host name (labels of letters, digits, `-`, `_`; Unicode as A-labels; no wildcard), an
 * address an IP literal; each refused at its own line (`file:line` of the config or of the hosts
 * file). A name given in both places has the addresses of both; for the reverse (PTR) name of
 * an address, the first name it was given for counts, `hosts:` before the file.
 */
import { dirname, isAbsolute, join } from 'node:path';
import { canonicalLabels } from '../../policy/name.ts';
import type { HostEntry } from '../../proxy/local-records.ts';
import { ConfigError, errorMessage } from '../../util/errors.ts';
import { canonicalIp } from '../../util/ip.ts';
import type { Draft, DraftHost } from '../draft.ts';
import type { FieldDoc, FileReader } from '../setting.ts';
import { isObj, type YamlDoc } from '../yaml-doc.ts';
import { flagPair } from './flag-text.ts';

export const HOSTS_FIELDS: FieldDoc[] = [
  {
    key: 'NAME',
    type: 'address or list of addresses',
    doc: 'A local name (`router.lan`: letters, digits, `-`, `_`; no wildcard) and its IPv4 and IPv6 addresses: A and AAAA queries for it, and PTR queries for the addresses\' reverse names, are answered here with `hosts_ttl`; other types get NODATA.',
  },
];

/** A host name → canonical (lower case, A-labels, no root dot); throws what is wrong with it. */
export function hostName(text: string): string {
  const t = text.endsWith('.') ? text.slice(0, -1) : text;
  if (t.includes('*')) throw new Error(`"${text}" is a pattern; a local name is one name (write each name)`);
  return canonicalLabels(t).join('.');
}

/** An address → its canonical text; throws when it is not an IP literal. */
export function hostAddress(text: string): string {
  const a = canonicalIp(text);
  if (a === undefined) throw new Error(`"${text}" is not an IP address`);
  return a;
}

export function readHosts(hosts: unknown, doc: YamlDoc, d: Draft): void {
  if (!isObj(hosts)) doc.fail(['hosts'], 'must be a mapping name → address or list of addresses');
  for (const [key, v] of doc.entries(hosts, ['hosts'])) {
    const path = ['hosts', key];
    doc.section(() => {
      let name: string;
      try {
        name = hostName(key);
      } catch (err) {
        doc.fail(path, `local name ${errorMessage(err)}`);
      }
      const items = Array.isArray(v) ? v : [v];
      if (items.length === 0 || v === null) doc.fail(path, `local name "${key}" needs at least one address`);
      const addrs: string[] = [];
      items.forEach((item, i) => {
        const at = Array.isArray(v) ? [...path, i] : path;
        doc.section(() => {
          const text = doc.str(item, at, `address of "${key}"`);
          try {
            addrs.push(hostAddress(text));
          } catch (err) {
            doc.fail(at, `local name "${key}": ${errorMessage(err)}`);
          }
        });
      });
      d.hosts.push({ name, addrs, where: doc.at(path) });
    });
  }
}

export function applyHostFlags(texts: readonly string[], d: Draft): void {
  const replaced = new Set<string>();
  for (const t of texts) {
    const [n, rest] = flagPair('host', t, 'NAME=ADDR[,ADDR…]');
    let name: string;
    let addrs: string[];
    try {
      name = hostName(n);
      addrs = rest.split(',').map(hostAddress);
    } catch (err) {
      throw new ConfigError('--host', errorMessage(err));
    }
    const given = d.hosts.find((h) => h.name === name);
    if (given && !replaced.has(name)) {
      // the first flag for a name replaces what the file gave it
      given.addrs = addrs;
      given.where = '--host';
    } else if (given) {
      given.addrs.push(...addrs);
    } else {
      d.hosts.push({ name, addrs, where: '--host' });
    }
    replaced.add(name);
  }
}

const MAX_REPORTED = 20;

/**
 * An /etc/hosts-format text: `ADDR NAME [ALIAS…]` per line, `#` to the end of a line a comment.
 * Each problem at `source:line` (at most 20 reported).
 */
export function parseHostsFile(text: string, source: string): DraftHost[] {
  const out: DraftHost[] = [];
  const errors: ConfigError[] = [];
  text.split('\n').forEach((raw, i) => {
    if (errors.length >= MAX_REPORTED) return;
    const fields = raw.replace(/#.*/, '').trim().split(/\s+/).filter(Boolean);
    if (fields.length === 0) return;
    const where = `${source}:${i + 1}`;
    try {
      const addr = hostAddress(fields[0]!);
      if (fields.length === 1) throw new Error(`${fields[0]} has no name (a line is ADDR NAME [ALIAS…])`);
      for (const n of fields.slice(1)) out.push({ name: hostName(n), addrs: [addr], where });
    } catch (err) {
      errors.push(new ConfigError(where, errorMessage(err)));
    }
  });
  if (errors.length === 1) throw errors[0]!;
  if (errors.length > 1) {
    const more = errors.length >= MAX_REPORTED ? `\n${source}: (stopped after ${MAX_REPORTED} problems)` : '';
    throw new ConfigError('', errors.map((e) => e.message).join('\n') + more);
  }
  return out;
}

function readHostsFileAt(path: string, where: string, files: FileReader): NonNullable<Draft['hostsFile']> {
  let text: string;
  try {
    text = files.readFile(path);
  } catch (err) {
    throw new ConfigError(where, `cannot read hosts file ${path}: ${errorMessage(err).replace(/^.*?: /, '')}`);
  }
  return { path, where, entries: parseHostsFile(text, path) };
}

/** `hosts_file: PATH` (relative to the config file), read now: its records are part of the config (a reload re-reads it). */
export function readHostsFile(v: unknown, doc: YamlDoc, d: Draft, files: FileReader): void {
  const rel = doc.str(v, ['hosts_file'], 'hosts_file');
  const path = isAbsolute(rel) || !doc.source.includes('/') ? rel : join(dirname(doc.source), rel);
  d.hostsFile = readHostsFileAt(path, doc.at(['hosts_file']), files);
}

export function applyHostsFileFlags(texts: readonly string[], d: Draft, files: FileReader): void {
  d.hostsFile = readHostsFileAt(texts.at(-1)!, '--hosts-file', files);
}

/**
 * The local records as given, in order: `hosts:` (and `--host`) first, then the hosts file line
 * by line (LocalRecords merges a name given twice, and gives an address's PTR to the first name
 * given for it — the order matters).
 */
export function hostEntries(d: Draft): HostEntry[] {
  return [...d.hosts, ...(d.hostsFile?.entries ?? [])].map((h) => ({ name: h.name, addrs: h.addrs }));
}
