/**
 * The configuration as the commands that run on it read it (`run`, its reloads, `explain`):
 * through the one-pass check (src/config/check.ts), so an invalid file is refused with every
 * problem as `file:line: key: message`, and the warnings come back for the caller to log. A
 * table of more than RUN_SHADOW_RULES rules is not searched for rules that never win here
 * (`dnsseal check` does): a million-rule table starts as fast as it loads.
 */
import { checkConfig, problemText, type Problem } from '../config/check.ts';
import { draftSettings } from '../config/finalize.ts';
import { readDraft } from '../config/load.ts';
import { SETTINGS } from '../config/settings.ts';
import type { SettingsConfig } from '../config/types.ts';
import type { Config } from '../config/types.ts';
import { ConfigError } from '../util/errors.ts';
import type { CliDeps } from './context.ts';

/** Tables up to this size are searched for rules that never win when a command loads its config. */
export const RUN_SHADOW_RULES = 100_000;

export function loadChecked(values: Map<string, string[]>, deps: Pick<CliDeps, 'files' | 'interfaces'>): { config: Config; warnings: Problem[] } {
  const r = checkConfig(values, deps.files, { interfaces: deps.interfaces, maxShadowRules: RUN_SHADOW_RULES });
  if (!r.config) throw new ConfigError('', r.errors.map(problemText).join('\n'));
  return { config: r.config, warnings: r.warnings };
}

/**
 * The settings the control commands take from --config (the control socket; for `down` also the
 * VICI socket, pins and intercept pools). A file with errors elsewhere — an edit in progress, a
 * typo in a rule — must not keep `status`, `list` or `down` from reaching the running daemon:
 * when only other parts are wrong, the settings are used and `warning` says the file has errors.
 * An unreadable or unparsable file, or an error in one of `keys` itself, still refuses.
 */
export function loadControlSettings(
  values: Map<string, string[]>,
  deps: Pick<CliDeps, 'files' | 'interfaces'>,
  keys: string[],
): { settings: SettingsConfig; warning?: string } {
  const r = checkConfig(values, deps.files, { interfaces: deps.interfaces, maxShadowRules: 0 });
  if (r.config) return { settings: r.config };
  const read = readDraft(values, deps.files, () => {});
  const refuse = () => new ConfigError('', r.errors.map(problemText).join('\n'));
  if (read.text === undefined || read.doc === undefined) throw refuse();
  // an error in one of these settings themselves (in the file or their flag) still refuses
  const own = new Set(keys.flatMap((k) => [k, ...SETTINGS.flatMap((x) => (x.key === k && x.kind === 'value' && x.flag ? [`--${x.flag.name}`] : []))]));
  if (r.errors.some((e) => e.key !== null && own.has(e.key))) throw refuse();
  const s = draftSettings(read.draft);
  const n = r.errors.length;
  return {
    settings: s.values,
    warning: `warning: ${read.source} has ${n} error${n === 1 ? '' : 's'} ("dnsseal check --config ${read.source}" lists them); using its ${keys.length > 1 ? `${keys.slice(0, -1).join(', ')} and ${keys.at(-1)} settings` : `${keys[0]} setting`} as given`,
  };
}
