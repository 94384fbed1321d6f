/** `static:` (list of {cidr, channel, table}) and `--static CIDR=CHANNEL[,table=ID]` (appends). */
import type { Draft } from '../draft.ts';
import type { FieldDoc } from '../setting.ts';
import { isObj, type YamlDoc } from '../yaml-doc.ts';
import { flagOptions, flagPair } from './flag-text.ts';

export const STATIC_FIELDS: FieldDoc[] = [
  { key: 'cidr', type: 'CIDR', doc: 'Destination addresses that are always protected, whatever DNS says (for peers without DNS names).' },
  { key: 'channel', type: 'channel name', doc: 'Channel that protects them.' },
  { key: 'table', type: 'table id', default: '`default`', doc: 'Client group the entry belongs to.' },
];

export function readStatics(statics: unknown, doc: YamlDoc, d: Draft): void {
  if (!Array.isArray(statics)) doc.fail(['static'], 'must be a list of {cidr, channel, table}');
  statics.forEach((s: unknown, i: number) => {
    const p = ['static', i];
    if (!isObj(s)) doc.fail(p, 'a static entry is {cidr: CIDR, channel: NAME}');
    doc.checkKeys(s, p, STATIC_FIELDS.map((f) => f.key));
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

export function applyStaticFlags(texts: readonly string[], d: Draft): void {
  for (const s of texts) {
    const [cidr, rest] = flagPair('static', s, 'CIDR=CHANNEL[,table=ID]');
    const { head: channel, opts } = flagOptions('static', rest, ['table']);
    d.statics.push({ cidr, channel, table: opts.get('table') ?? 'default', where: '--static', whereChannel: '--static', whereTable: '--static' });
  }
}
