/**
 * Reads the YAML document and then the flags into the draft, setting by setting as the table
 * (settings.ts) says: a value setting through its ValueType, a section through its readers.
 * YAML problems are collected (each located at its line) so that one bad value does not hide
 * the next; a bad flag stops at once (`--flag: …`). Cross-references are checked in finalize.ts.
 */
import { ConfigError, errorMessage } from '../util/errors.ts';
import type { Draft } from './draft.ts';
import { notUsedByPolicyServer, type FileReader } from './setting.ts';
import { SETTINGS } from './settings.ts';
import type { YamlDoc } from './yaml-doc.ts';

const KNOWN_KEYS = SETTINGS.map((s) => s.key);

/** Whether the draft's command uses setting `s` (the policy server uses only some: setting.ts WITH_POLICY_SERVER). */
function usedBy(d: Draft, s: (typeof SETTINGS)[number]): boolean {
  return d.role !== 'policy-server' || s.commands.includes('policy-server');
}

export function applyYaml(doc: YamlDoc, d: Draft, files: FileReader): void {
  const r = doc.root;
  doc.checkKeys(r, [], KNOWN_KEYS);
  for (const s of SETTINGS) {
    if (!(s.key in r)) continue;
    if (!usedBy(d, s)) {
      doc.section(() => doc.fail([s.key], notUsedByPolicyServer(s.key)));
      continue;
    }
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
        if (!texts) continue;
        if (!usedBy(d, s)) each(() => refuse(f.name, s.key));
        else each(() => f.apply(texts, d, files));
      }
      continue;
    }
    const texts = s.flag && values.get(s.flag.name);
    if (!texts || !s.flag) continue;
    const flag = s.flag;
    if (!usedBy(d, s)) {
      each(() => refuse(flag.name, s.key));
      continue;
    }
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

/** A flag of a setting the policy server does not use (the parser refuses it first; tests call the loader directly). */
function refuse(flag: string, key: string): never {
  throw new ConfigError(`--${flag}`, notUsedByPolicyServer(key));
}
