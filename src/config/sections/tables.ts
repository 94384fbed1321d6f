/**
 * `tables:` (id → ordered rules or `- rules_file:` items), `--protect PATTERN=CHANNEL[,upstream=NAME]`
 * and `--rules-file FILE[,channel=NAME][,upstream=NAME]` (both append to the `default` table).
 * References (a rule's channel and upstream exist) are checked in finalize.ts.
 */
import { dirname, isAbsolute, join } from 'node:path';
import { ConfigError, errorMessage } from '../../util/errors.ts';
import { parseCondition } from '../../policy/condition.ts';
import type { PackedRules } from '../../policy/packed-rules.ts';
import type { Draft, DraftTable } from '../draft.ts';
import { parseRulesFile, type RulesFileDefaults } from '../rules-file.ts';
import type { FieldDoc, FileReader } from '../setting.ts';
import { isObj, type YamlDoc } from '../yaml-doc.ts';
import { flagOptions, flagPair } from './flag-text.ts';

export const RULE_FIELDS: FieldDoc[] = [
  { key: 'match', type: 'pattern', doc: 'Condition (quote it: a leading `*` is YAML syntax); `*` is any number of labels, none included. Exact `taro.nec.co.jp`; suffix `*.myfriends.com` (`myfriends.com` and every name under it); subdomain `**.myfriends.com` (the names under it only, not `myfriends.com`); prefix `sato.*` (first label, `sato` itself included); infix `*.biglobe.*` (the labels anywhere in the name: `biglobe.ne.jp`, `www.biglobe`). Case-insensitive, trailing dot ignored, IDN allowed.' },
  { key: 'channel', type: 'channel name', doc: 'How matching names are protected.' },
  { key: 'upstream', type: 'upstream name', doc: 'Optional: resolve matching names through this upstream (split DNS).' },
  { key: 'rules_file', type: 'path', doc: 'Instead of `match`: insert the rules of this file here, one `PATTERN [CHANNEL [UPSTREAM]]` per line (`#` comments); `channel`/`upstream` on the item are the defaults for lines without them. For large rule sets: a million lines load in about a second, YAML would take many. Relative to the config file.' },
];

/** Expands a `- rules_file: PATH` item (PATH relative to the config file). */
function readRulesFileItem(doc: YamlDoc, item: Record<string, unknown>, rp: (string | number)[], files: FileReader): PackedRules {
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

function readRule(doc: YamlDoc, id: string, i: number, item: unknown, rp: (string | number)[], rules: DraftTable['rules'], files: FileReader): void {
  if (!isObj(item)) doc.fail(rp, 'a rule is a mapping: {match: PATTERN, channel: NAME}');
  doc.checkKeys(item, rp, RULE_FIELDS.map((f) => f.key));
  if (item.rules_file !== undefined) {
    if (item.match !== undefined) doc.fail(rp, 'an item has either "match" or "rules_file", not both');
    rules.push(readRulesFileItem(doc, item, rp, files));
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
  const rule: DraftTable['rules'][number] = {
    condition,
    channel: doc.str(item.channel, [...rp, 'channel'], 'channel'),
    where: { match: doc.at([...rp, 'match']), channel: doc.at([...rp, 'channel']), upstream: doc.at([...rp, 'upstream']) },
  };
  if (item.upstream !== undefined) rule.upstream = doc.str(item.upstream, [...rp, 'upstream'], 'upstream');
  rules.push(rule);
}

export function readTables(tables: unknown, doc: YamlDoc, d: Draft, files: FileReader): void {
  if (!isObj(tables)) doc.fail(['tables'], 'must be a mapping table id → list of rules');
  for (const [id, list] of doc.entries(tables, ['tables'])) {
    const path = ['tables', id];
    if (list !== null && !Array.isArray(list)) doc.fail(path, `table "${id}" must be a list of rules ("- match: …")`);
    const rules: DraftTable['rules'] = [];
    ((list ?? []) as unknown[]).forEach((item, i) => doc.section(() => readRule(doc, id, i, item, [...path, i], rules, files)));
    d.tables.set(id, { where: doc.at(path), rules });
  }
}

function defaultTable(d: Draft, where: string) {
  const table = d.tables.get('default') ?? { where, rules: [] };
  d.tables.set('default', table);
  return table;
}

export function applyProtectFlags(texts: readonly string[], d: Draft): void {
  for (const p of texts) {
    const [pattern, rest] = flagPair('protect', p, 'PATTERN=CHANNEL[,upstream=NAME]');
    const { head: channel, opts } = flagOptions('protect', rest, ['upstream']);
    let condition;
    try {
      condition = parseCondition(pattern);
    } catch (err) {
      throw new ConfigError('--protect', errorMessage(err));
    }
    const upstream = opts.get('upstream');
    defaultTable(d, '--protect').rules.push({
      condition,
      channel,
      ...(upstream ? { upstream } : {}),
      where: { match: '--protect', channel: '--protect', upstream: '--protect' },
    });
  }
}

export function applyRulesFileFlags(texts: readonly string[], d: Draft, files: FileReader): void {
  for (const f of texts) {
    const { head: path, opts } = flagOptions('rules-file', f, ['channel', 'upstream']);
    let text: string;
    try {
      text = files.readFile(path);
    } catch (err) {
      throw new ConfigError('--rules-file', `cannot read ${path}: ${errorMessage(err).replace(/^.*?: /, '')}`);
    }
    const defaults: RulesFileDefaults = {};
    if (opts.has('channel')) defaults.channel = opts.get('channel')!;
    if (opts.has('upstream')) defaults.upstream = opts.get('upstream')!;
    const table = defaultTable(d, '--rules-file');
    table.rules.push(parseRulesFile(text, path, defaults));
  }
}
