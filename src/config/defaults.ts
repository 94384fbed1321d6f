/**
 * A Config built in code (tests, benches, tools) from the settings table's defaults plus what
 * the caller gives: a setting added to the table later gets its default here, so such configs
 * never need editing when the table grows. Nothing is validated: callers build what they mean.
 */
import { SETTINGS } from './settings.ts';
import type { Config, SettingsConfig } from './types.ts';

/** Every value setting that has a default, with it (lists copied). */
export function settingDefaults(): SettingsConfig {
  const out: Record<string, unknown> = {};
  for (const s of SETTINGS) {
    if (s.kind !== 'value' || s.default === undefined) continue;
    out[s.field] = Array.isArray(s.default) ? [...s.default] : s.default;
  }
  return out as SettingsConfig;
}

/** The defaults, empty policy and no upstreams, with `parts` on top. */
export function configWith(parts: Partial<Config> & Pick<Config, 'source'>): Config {
  return { ...settingDefaults(), upstreams: [], channels: [], tables: [], clients: [], statics: [], tsigKeys: [], ...parts };
}
