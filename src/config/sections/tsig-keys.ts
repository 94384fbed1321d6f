/**
 * `tsig_keys:` (name → {algorithm, secret | secret_file}) and `--tsig-key NAME:hmac-sha256:BASE64`
 * or `--tsig-key NAME=FILE` (the secret read from FILE, out of `ps`).
 */
import { ConfigError, errorMessage } from '../../util/errors.ts';
import { parseTsigKeyFlag } from '../../dns/tsig-key.ts';
import type { Draft } from '../draft.ts';
import type { FieldDoc, FileReader } from '../setting.ts';
import { isObj, type YamlDoc } from '../yaml-doc.ts';
import { flagPair } from './flag-text.ts';

export const TSIG_FIELDS: FieldDoc[] = [
  { key: 'algorithm', type: '`hmac-sha256`', default: '`hmac-sha256`', doc: 'TSIG algorithm.' },
  { key: 'secret', type: 'base64', doc: 'The shared secret (or use `secret_file`). Never logged.' },
  { key: 'secret_file', type: 'path', doc: 'File holding the base64 secret (keeps it out of the config).' },
];

export function decodeSecret(b64: string): Uint8Array {
  const t = b64.trim();
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(t) || t.length % 4 !== 0) throw new Error('the secret is not base64');
  const bytes = Uint8Array.from(atob(t), (c) => c.charCodeAt(0));
  if (bytes.length < 16) throw new Error(`the secret is ${bytes.length} bytes; use at least 16 (e.g. 32 random bytes, base64)`);
  return bytes;
}

export function readTsigKeys(keys: unknown, doc: YamlDoc, d: Draft, files: FileReader): void {
  if (!isObj(keys)) doc.fail(['tsig_keys'], 'must be a mapping name → {algorithm, secret | secret_file}');
  for (const [name, k] of doc.entries(keys, ['tsig_keys'])) {
    const p = ['tsig_keys', name];
    if (!isObj(k)) doc.fail(p, `key "${name}" must be a mapping {algorithm, secret}`);
    doc.checkKeys(k, p, TSIG_FIELDS.map((f) => f.key));
    if (k.algorithm !== undefined) doc.oneOf(k.algorithm, [...p, 'algorithm'], ['hmac-sha256']);
    if ((k.secret === undefined) === (k.secret_file === undefined)) doc.fail(p, `key "${name}" needs exactly one of "secret" or "secret_file"`);
    const field = k.secret !== undefined ? 'secret' : 'secret_file';
    try {
      const text = field === 'secret' ? doc.str(k.secret, [...p, field], 'secret') : files.readFile(doc.str(k.secret_file, [...p, field], 'secret_file'));
      d.tsigKeys.set(name, { secret: decodeSecret(text), where: doc.at(p) });
    } catch (err) {
      doc.fail([...p, field], `key "${name}": ${errorMessage(err)}`);
    }
  }
}

export function applyTsigKeyFlags(texts: readonly string[], d: Draft, files: FileReader): void {
  const given = new Set<string>();
  const once = (name: string) => {
    if (given.has(name)) throw new ConfigError('--tsig-key', `key "${name}" is given twice; give each key once`);
    given.add(name);
  };
  for (const k of texts) {
    // Two forms: the secret inline, `NAME:hmac-sha256:BASE64` (issue #5, `dig -y` reordered), or
    // in a file, `NAME=FILE`. Inline when a ':' comes before any '=' (base64 ends in '=').
    const colon = k.indexOf(':');
    const eq = k.indexOf('=');
    if (colon > 0 && (eq < 0 || colon < eq)) {
      const key = parseTsigKeyFlag(k, '--tsig-key');
      once(k.slice(0, colon));
      // Keyed by the name as written, like the file form: `tsig-key=` on an upstream names it so.
      d.tsigKeys.set(k.slice(0, colon), { secret: key.secret, where: '--tsig-key' });
      continue;
    }
    const [name, file] = flagPair('tsig-key', k, 'NAME=FILE or NAME:hmac-sha256:BASE64');
    once(name);
    try {
      d.tsigKeys.set(name, { secret: decodeSecret(files.readFile(file)), where: '--tsig-key' });
    } catch (err) {
      throw new ConfigError('--tsig-key', `key "${name}" from ${file}: ${errorMessage(err)}`);
    }
  }
}
