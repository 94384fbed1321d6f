/**
 * What one setting is, as data: its YAML key, its flag, how a value is read (from the file and
 * from the command line), its default, which commands and modes use it, and its documentation.
 * The table of every setting is settings.ts; the loader, the flag parser, per-command flag
 * checks, `--help` and the reference are all derived from it.
 *
 * Two kinds:
 *   - a value (`setting`/`optionalSetting`): one ValueType parses both the YAML value and the
 *     flag, and the Config field is derived from the descriptor (types.ts), so a new value
 *     setting is one entry in settings.ts and nothing else;
 *   - a section (channels, tables, …): a dedicated reader for the YAML and one for each flag,
 *     in its own file; key, flags, documentation and command membership still live in the table.
 */
import type { Draft } from './draft.ts';
import type { KeyPath } from './yaml-locator.ts';
import type { YamlDoc } from './yaml-doc.ts';
import type { ConfigError } from '../util/errors.ts';

export type Mode = 'host' | 'gateway' | 'intercept';
export const MODES: readonly Mode[] = ['host', 'gateway', 'intercept'];

/** Reads files the config names (rule files, TSIG secrets). */
export interface FileReader {
  readFile(path: string): string;
}

/** How one value is read, from the file and from the command line. */
export interface ValueType<T> {
  /** The reference's "type" column. */
  doc: string;
  /** The flag's value placeholder (`SECONDS`, `ADDR:PORT`). */
  arg: string;
  /** A list: the flag repeats, and the values given on the command line replace the file's. */
  list?: boolean;
  /**
   * A YAML value that is present (maybe `null`) → the value; `undefined` = unset. Problems go
   * through `doc.fail(path…)` so they carry the line; `key` is for messages.
   */
  yaml(v: unknown, doc: YamlDoc, path: KeyPath, key: string): T | undefined;
  /**
   * The flag's values (one for a single flag, the last given; every one for a list) → the value;
   * `undefined` = unset. Throws a plain Error; the loader puts `--flag: ` in front.
   */
  flag(texts: readonly string[]): T | undefined;
}

/** Checks at the end, once file and flags are merged: may normalise, reports at `where`. */
export type FinalCheck<T> = (value: T, where: string, report: (err: ConfigError) => void) => T;

interface Common {
  /** YAML key (snake_case). */
  key: string;
  /** The reference's "type" column; default: the value type's. */
  typeDoc?: string;
  /** The reference's "default" column (markdown); default: derived from `default`. */
  defaultDoc?: string;
  /** The meaning, for the reference (markdown). */
  doc: string;
  /** Modes that use it; default: every mode. */
  modes?: readonly Mode[];
  /**
   * Commands whose flags include it; default: the commands that read a node's config
   * (CONFIG_COMMANDS). `WITH_POLICY_SERVER` when the policy server uses it too.
   */
  commands?: readonly string[];
}

export interface ValueInput<F extends string, T> extends Common {
  /** Config field (camelCase). */
  field: F;
  type: ValueType<T>;
  /** Flag name without dashes; default: the key with `-` for `_`; `null`: no flag. */
  flag?: string | null;
  /** Flag placeholder; default: the type's. */
  arg?: string;
  /** One line for `--help` and the reference's flag table. */
  help: string;
  /** The `--help` default (plain text); default: derived from `default`. */
  flagDefault?: string;
  check?: FinalCheck<T>;
  /**
   * Keep the Config field optional although the loader always sets it: for settings older
   * than this table that hand-built Configs in tests and benches leave out. Not for new ones.
   */
  optionalField?: boolean;
}

export interface ValueSetting<F extends string = string, T = unknown, Req extends boolean = boolean> {
  readonly kind: 'value';
  /** Has a default, so the Config field is always set. */
  readonly required: Req;
  readonly key: string;
  readonly field: F;
  readonly type: ValueType<T>;
  readonly default: Req extends true ? T : undefined;
  readonly flag: FlagDescriptor | null;
  readonly typeDoc: string;
  readonly defaultDoc: string;
  readonly doc: string;
  readonly modes: readonly Mode[];
  readonly commands: readonly string[];
  readonly check?: FinalCheck<T>;
}

/** A flag as the parser and `--help` see it. */
export interface FlagDescriptor {
  /** Without dashes. */
  name: string;
  /** Value placeholder; absent for a switch. */
  arg?: string;
  repeatable?: boolean;
  /** Shown as `[default: …]`. */
  default?: string;
  help: string;
  /** Commands that take it. */
  commands: readonly string[];
  /** The YAML key it sets, if it is a setting's flag. */
  key?: string;
}

/** A flag of a section: it also knows how to apply its values to the draft. */
export interface SectionFlag extends Omit<FlagDescriptor, 'commands' | 'key'> {
  /**
   * Carries policy (rules, channels, client tables, statics): given without --config, it
   * replaces the embedded example rules instead of mixing with them.
   */
  policy?: boolean;
  apply(texts: readonly string[], d: Draft, files: FileReader): void;
}

/** A documented field of a section's items (reference only; the reader checks the keys). */
export interface FieldDoc {
  key: string;
  type: string;
  default?: string;
  doc: string;
}

export interface SectionInput extends Common {
  typeDoc: string;
  fields: FieldDoc[];
  /** Reads the section's value (present and not null) into the draft. */
  yaml(value: unknown, doc: YamlDoc, d: Draft, files: FileReader): void;
  flags: SectionFlag[];
}

export interface SectionSetting {
  readonly kind: 'section';
  readonly key: string;
  readonly typeDoc: string;
  readonly defaultDoc: string;
  readonly doc: string;
  readonly modes: readonly Mode[];
  readonly commands: readonly string[];
  readonly fields: FieldDoc[];
  readonly yaml: SectionInput['yaml'];
  readonly flags: (SectionFlag & FlagDescriptor)[];
}

export type Setting = ValueSetting<string, any, boolean> | SectionSetting;

/** The commands that load a node's whole configuration (file and flags): every setting's flag is theirs. */
export const CONFIG_COMMANDS = ['run', 'check', 'explain'] as const;

/**
 * `dnsseal policy-server` reads the same file (plus its `serve:` section) but uses only part of
 * it: the settings whose `commands` are `WITH_POLICY_SERVER`. Any other key in its file, or flag
 * on its command line, is refused by name (`notUsedByPolicyServer`) rather than ignored: a
 * setting an operator wrote must do what it says, or say that it does nothing.
 */
export const WITH_POLICY_SERVER = [...CONFIG_COMMANDS, 'policy-server'] as const;

/** The refusal of a node-only setting by the policy server (after `file:line: ` or `--flag: `). */
export function notUsedByPolicyServer(key: string): string {
  return `the policy server does not use ${key}; it is a setting of \`dnsseal run\` (see "dnsseal help policy-server" for what it takes)`;
}

/** `60` → `` `60` ``, `['a']` → `` `[a]` ``; nothing for an empty list or no default. */
function defaultText(v: unknown, md: boolean): string {
  if (v === undefined || (Array.isArray(v) && v.length === 0 && !md)) return '';
  const text = Array.isArray(v) ? (md ? `[${v.join(', ')}]` : v.join(', ')) : String(v);
  return md ? `\`${text}\`` : text;
}

function makeValue<F extends string, T>(s: ValueInput<F, T>, def: T | undefined): ValueSetting<F, T, boolean> {
  const commands = s.commands ?? CONFIG_COMMANDS;
  const flagName = s.flag === undefined ? s.key.replace(/_/g, '-') : s.flag;
  const flag: FlagDescriptor | null =
    flagName === null
      ? null
      : {
          name: flagName,
          arg: s.arg ?? s.type.arg,
          ...(s.type.list ? { repeatable: true } : {}),
          ...((s.flagDefault ?? defaultText(def, false)) ? { default: s.flagDefault ?? defaultText(def, false) } : {}),
          help: s.help,
          commands,
          key: s.key,
        };
  return {
    kind: 'value',
    required: def !== undefined && !s.optionalField,
    key: s.key,
    field: s.field,
    type: s.type,
    default: def as never,
    flag,
    typeDoc: s.typeDoc ?? s.type.doc,
    defaultDoc: s.defaultDoc ?? defaultText(def, true),
    doc: s.doc,
    modes: s.modes ?? MODES,
    commands,
    ...(s.check ? { check: s.check } : {}),
  };
}

/** A setting that always has a value (its Config field is required). */
export function setting<F extends string, T, O extends boolean = false>(
  s: ValueInput<F, T> & { default: NoInfer<T>; optionalField?: O },
): ValueSetting<F, T, O extends true ? false : true> {
  return makeValue(s, s.default) as ValueSetting<F, T, O extends true ? false : true>;
}

/** A setting that may be unset (its Config field is optional). */
export function optionalSetting<F extends string, T>(s: ValueInput<F, T>): ValueSetting<F, T, false> {
  return makeValue(s, undefined) as ValueSetting<F, T, false>;
}

/** A structured setting with its own readers. */
export function section(s: SectionInput): SectionSetting {
  const commands = s.commands ?? CONFIG_COMMANDS;
  return {
    kind: 'section',
    key: s.key,
    typeDoc: s.typeDoc,
    defaultDoc: s.defaultDoc ?? '',
    doc: s.doc,
    modes: s.modes ?? MODES,
    commands,
    fields: s.fields,
    yaml: s.yaml,
    flags: s.flags.map((f) => ({ ...f, commands, key: s.key })),
  };
}

/**
 * The Config fields of the value settings in `L`: required for `setting`, optional for
 * `optionalSetting`, typed by each one's ValueType.
 */
export type SettingValues<L extends readonly Setting[]> = {
  [S in L[number] as S extends { kind: 'value'; required: true; field: infer F extends string } ? F : never]: S extends { type: ValueType<infer T> } ? T : never;
} & {
  [S in L[number] as S extends { kind: 'value'; required: false; field: infer F extends string } ? F : never]?: S extends { type: ValueType<infer T> } ? T : never;
};
