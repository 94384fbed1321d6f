/**
 * One reload of the running daemon (SIGHUP, `dnsseal reload`): read the config (off the event
 * loop when the loader can: config-worker.ts), keep channel ids by name (channel-ids.ts), run the
 * live config's transaction (live-config.ts), and say what happened in `ReloadResult`:
 * restart-only settings by their config key (`upstream_timeout`, `mode`), the keys applied live,
 * and the figures of the parts (entries released/moved/withdrawn, channels and listen
 * addresses added/replaced/removed).
 */
import { SETTINGS } from '../config/settings.ts';
import type { Config } from '../config/types.ts';
import { DnssealError, errorMessage } from '../util/errors.ts';
import type { Logger } from '../util/log.ts';
import { ChannelIds } from './channel-ids.ts';
import type { ConfigKey, LiveConfig } from './live-config.ts';
import type { ReloadResult } from './types.ts';

/** Config fields of sections whose config key differs (the others are the same word). */
const SECTION_KEYS: Partial<Record<ConfigKey, string>> = { statics: 'static', tsigKeys: 'tsig_keys' };
const VALUE_KEYS = new Map<string, string>(SETTINGS.flatMap((s) => (s.kind === 'value' ? [[s.field, s.key] as const] : [])));

/** The key an operator writes in the file for a Config field (`upstreamTimeoutMs` → `upstream_timeout`). */
export function configKeyOf(field: ConfigKey): string {
  return VALUE_KEYS.get(field) ?? SECTION_KEYS[field] ?? field;
}

export interface ReloaderDeps {
  live: LiveConfig;
  /** Reads the config anew (throws or rejects when it is invalid). */
  load: () => Config | Promise<Config>;
  log: Logger;
}

/** `reload()` for the daemon: one at a time, each against what the previous one left running. */
export function makeReloader(deps: ReloaderDeps): () => Promise<ReloadResult> {
  const ids = new ChannelIds(deps.live.config.channels);
  return async () => {
    const { plan, figures, settleErrors } = await deps.live.reload(async (running) => {
      let next: Config;
      try {
        next = await deps.load();
      } catch (err) {
        throw new DnssealError('daemon', 'reload_invalid', `reload refused, the running config is unchanged: ${errorMessage(err)}`, { cause: err });
      }
      return { ...next, channels: ids.stable(running.channels, next.channels) };
    });
    for (const e of settleErrors) deps.log.warn('daemon: reload applied, but settling a part failed', { err: e });
    // The replaced config (all its rules at once) is garbage now: ask for a collection, without
    // waiting for it (Bun.gc(false) schedules one; JavaScriptCore marks concurrently).
    Bun.gc(false);
    const c = plan.merged;
    const live = new Set(plan.parts.flatMap((p) => p.keys));
    return {
      source: c.source,
      tables: c.tables.length,
      rules: c.tables.reduce((n, t) => n + t.rules.length, 0),
      channels: c.channels.length,
      statics: c.statics.length,
      released: figures.released ?? 0,
      moved: figures.moved ?? 0,
      withdrawn: figures.withdrawn ?? 0,
      channelsLoaded: figures.channelsLoaded ?? 0,
      channelsReplaced: figures.channelsReplaced ?? 0,
      channelsUnloaded: figures.channelsUnloaded ?? 0,
      listenAdded: figures.listenAdded ?? 0,
      listenRemoved: figures.listenRemoved ?? 0,
      applied: plan.changed.filter((k) => live.has(k) && k !== 'source').map(configKeyOf),
      restartNeeded: plan.restartNeeded.map(configKeyOf),
      ...(settleErrors.length ? { settleErrors } : {}),
    };
  };
}
