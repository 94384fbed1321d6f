/**
 * `upstreams:` (name → ADDR[:PORT] or {address, tsig_key}) and `--upstream [NAME=]ADDR[:PORT][,tsig-key=KEY]`.
 * A flag replaces or adds the upstream of its name; without `tsig-key=` it keeps the key the
 * file gave that name.
 */
import { ConfigError, errorMessage } from '../../util/errors.ts';
import { parseHostPort } from '../address.ts';
import type { Draft } from '../draft.ts';
import type { FieldDoc } from '../setting.ts';
import { isObj, type YamlDoc } from '../yaml-doc.ts';
import { flagOptions } from './flag-text.ts';

export const UPSTREAM_FIELDS: FieldDoc[] = [
  { key: 'address', type: 'ADDR[:PORT]', doc: 'IP literal, port 53 unless given; IPv6 as `[ADDR]:PORT`.' },
  { key: 'tsig_key', type: 'key name', doc: 'Sign queries to this upstream with this TSIG key (a policy server).' },
];

export function readUpstreams(upstreams: unknown, doc: YamlDoc, d: Draft): void {
  if (!isObj(upstreams)) doc.fail(['upstreams'], 'must be a mapping name → ADDR[:PORT], e.g. "default: 9.9.9.9"');
  for (const [name, v] of doc.entries(upstreams, ['upstreams'])) {
    const path = ['upstreams', name];
    let addr: unknown = v;
    let tsigKey: string | undefined;
    if (isObj(v)) {
      doc.checkKeys(v, path, UPSTREAM_FIELDS.map((f) => f.key));
      addr = v.address;
      if (v.tsig_key !== undefined) tsigKey = doc.str(v.tsig_key, [...path, 'tsig_key'], 'tsig_key');
    }
    const at = isObj(v) ? [...path, 'address'] : path;
    const what = `upstream "${name}"`;
    const text = doc.str(addr, at, what);
    let hp;
    try {
      hp = parseHostPort(text, 53);
    } catch (err) {
      doc.fail(at, `${what}: ${errorMessage(err)}`);
    }
    d.upstreams.set(name, {
      spec: { name, address: hp.address, port: hp.port, ...(tsigKey ? { tsigKey } : {}) },
      where: doc.at(path),
      whereTsig: doc.at([...path, 'tsig_key']),
    });
  }
}

export function applyUpstreamFlags(texts: readonly string[], d: Draft): void {
  for (const u of texts) {
    const { head, opts } = flagOptions('upstream', u, ['tsig-key']);
    const eq = head.indexOf('=');
    const [name, addr] = eq > 0 ? [head.slice(0, eq), head.slice(eq + 1)] : ['default', head];
    let hp;
    try {
      hp = parseHostPort(addr, 53);
    } catch (err) {
      throw new ConfigError('--upstream', errorMessage(err));
    }
    const prev = d.upstreams.get(name);
    const tsigKey = opts.get('tsig-key') ?? prev?.spec.tsigKey;
    const spec = { name, address: hp.address, port: hp.port, ...(tsigKey ? { tsigKey } : {}) };
    d.upstreams.set(name, { spec, where: '--upstream', whereTsig: opts.has('tsig-key') ? '--upstream' : (prev?.whereTsig ?? '--upstream') });
  }
}
