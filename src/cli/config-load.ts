/**
 * The configuration as the commands that run on it read it (`run`, its reloads, `explain`):
 * through the one-pass check (src/config/check.ts), so an invalid file is refused with every
 * problem as `file:line: key: message`, and the warnings come back for the caller to log. A
 * table of more than RUN_SHADOW_RULES rules is not searched for rules that never win here
 * (`dnsseal check` does): a million-rule table starts as fast as it loads.
 */
import { checkConfig, problemText, type Problem } from '../config/check.ts';
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
