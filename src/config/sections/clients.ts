/** `clients:` (list of {cidr, table}) and `--client-table CIDR=TABLE` (replaces the file's entry for CIDR). */
import type { Draft } from '../draft.ts';
import type { FieldDoc } from '../setting.ts';
import { isObj, type YamlDoc } from '../yaml-doc.ts';
import { flagPair } from './flag-text.ts';

export const CLIENT_FIELDS: FieldDoc[] = [
  { key: 'cidr', type: 'CIDR', doc: 'Client addresses (IPv4 or IPv6; a bare address is a /32 or /128). The longest matching prefix picks the table.' },
  { key: 'table', type: 'table id', doc: 'Rule table for these clients.' },
];

export function readClients(clients: unknown, doc: YamlDoc, d: Draft): void {
  if (!Array.isArray(clients)) doc.fail(['clients'], 'must be a list of {cidr, table}');
  clients.forEach((c: unknown, i: number) => {
    const p = ['clients', i];
    if (!isObj(c)) doc.fail(p, 'a client entry is {cidr: CIDR, table: ID}');
    doc.checkKeys(c, p, CLIENT_FIELDS.map((f) => f.key));
    d.clients.push({
      cidr: doc.str(c.cidr, [...p, 'cidr'], 'cidr'),
      table: doc.str(c.table, [...p, 'table'], 'table'),
      where: doc.at([...p, 'cidr']),
      whereTable: doc.at([...p, 'table']),
    });
  });
}

export function applyClientFlags(texts: readonly string[], d: Draft): void {
  for (const c of texts) {
    const [cidr, table] = flagPair('client-table', c, 'CIDR=TABLE');
    d.clients = d.clients.filter((x) => x.cidr !== cidr);
    d.clients.push({ cidr, table, where: '--client-table', whereTable: '--client-table' });
  }
}
