/**
 * Reads the YAML document and then the flags into the draft, setting by setting as the table
 * (settings.ts) says: a value setting through its ValueType, a section through its readers.
 * YAML problems are collected (each located at its line) so that one bad value does not hide
 * the next; a bad flag stops at once (`--flag: …`). Cross-references are checked in finalize.ts.
 */
import { ConfigError, errorMessage } from '../util/errors.ts';
import type { Draft } from './draft.ts';
import type { FileReader } from './setting.ts';
import { SETTINGS } from './settings.ts';
import type { YamlDoc } from './yaml-doc.ts';

const KNOWN_KEYS = SETTINGS.map((s) => s.key);

export function applyYaml(doc: YamlDoc, d: Draft, files: FileReader): void {
  const r = doc.root;
  doc.checkKeys(r, [], KNOWN_KEYS);
  for (const s of SETTINGS) {
    if (!(s.key in r)) continue;
    const v = r[s.key];
    if (s.kind === 'value') {
      doc.section(() => d.values.set(s.key, { value: s.type.yaml(v, doc, [s.key], s.key), where: doc.at([s.key]) }));
    } else if (v !== null) {
      doc.section(() => s.yaml(v, doc, d, files));
    }
  }
  doc.throwErrors();
}

/**
 * Flag values by flag name (without dashes), as the parser gives them; flags win over the file.
 * A bad flag throws at once, or — with `report` (`dnsseal check`) — is reported and the other
 * flags are still applied.
 */
export function applyFlags(values: Map<string, string[]>, d: Draft, files: FileReader, report?: (err: ConfigError) => void): void {
  const each = (fn: () => void) => {
    if (!report) return fn();
    try {
      fn();
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      report(err);
    }
  };
  for (const s of SETTINGS) {
    if (s.kind === 'section') {
      for (const f of s.flags) {
        const texts = values.get(f.name);
        if (texts) each(() => f.apply(texts, d, files));
      }
      continue;
    }
    const texts = s.flag && values.get(s.flag.name);
    if (!texts || !s.flag) continue;
    const flag = s.flag;
    each(() => {
      let value: unknown;
      try {
        value = s.type.flag(texts);
      } catch (err) {
        if (err instanceof ConfigError) throw err;
        throw new ConfigError(`--${flag.name}`, errorMessage(err), { cause: err });
      }
      d.values.set(s.key, { value, where: `--${flag.name}` });
    });
  }
}
