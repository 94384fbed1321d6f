/**
 * The answer cache and the upstream sets of the running daemon: built from the config at start
 * (`openCache`, `upstreamOptions`) and changed live by a reload, as two parts of the reload
 * transaction (live-config.ts):
 *
 * - `upstreams` (`upstreams`, `upstream_source`, `upstream_timeout`, `upstream_tls_ca`):
 *   prepare opens the new sets (sockets bound, the CA read) while the running ones serve — a
 *   server list that cannot be opened refuses the reload and nothing changes; apply swaps them
 *   in (one assignment in the forwarder and the pipeline) and empties the cache (an upstream
 *   name may now point elsewhere); queries already sent finish on the old sets, which close
 *   once every such query has ended (its timeouts, failovers and TCP retry included) — then the
 *   cache is emptied once more, of what those last old answers put in it.
 * - `cache` (`cache_size`, `cache_bytes`, `cache_max_ttl`, `cache_max_negative_ttl`,
 *   `cache_stale`, `cache_prefetch`): new limits at once (a smaller cache evicts, size 0 turns
 *   it off and empties it, a size above 0 turns it on — the cache object always exists).
 */
import { AnswerCache } from '../cache/answer-cache.ts';
import type { CacheLimits } from '../cache/cache-limits.ts';
import { exportCacheMetrics } from '../cache/cache-metrics.ts';
import type { Config } from '../config/types.ts';
import type { Metrics } from '../ops/metrics.ts';
import { readTlsCa, type Proxy, type UpstreamOptions } from '../proxy/proxy.ts';
import { formatServerSpec } from '../proxy/server-spec.ts';
import type { UpstreamSet } from '../proxy/upstream-set.ts';
import type { Clock } from '../util/clock.ts';
import type { Logger } from '../util/log.ts';
import type { ConfigKey, LivePart } from './live-config.ts';

/** The cache's limits as the config gives them. */
export function cacheLimits(cfg: Config): Partial<CacheLimits> {
  return {
    maxEntries: cfg.cacheSize,
    maxBytes: cfg.cacheBytes,
    maxTtlS: cfg.cacheMaxTtlS,
    maxNegTtlS: cfg.cacheMaxNegativeTtlS,
    staleMaxS: cfg.cacheStaleS,
    prefetch: cfg.cachePrefetch,
  };
}

/** The cache, always built (size 0: off, so a reload can turn it on), its metrics exported. */
export function openCache(cfg: Config, clock: Clock, metrics: Metrics): AnswerCache {
  const cache = new AnswerCache({ clock, ...cacheLimits(cfg) });
  exportCacheMetrics(cache, metrics);
  return cache;
}

/** What the upstream sets are opened from; reads `upstream_tls_ca` (throws naming the file). */
export function upstreamOptions(cfg: Config): UpstreamOptions {
  const ca = readTlsCa(cfg.upstreamTlsCa);
  return {
    upstreams: cfg.upstreams,
    upstreamTimeoutMs: cfg.upstreamTimeoutMs,
    ...(cfg.upstreamSource !== undefined ? { upstreamSource: cfg.upstreamSource } : {}),
    ...(ca !== undefined ? { upstreamTlsCa: ca } : {}),
  };
}

/** `name=server,server …` for log lines. */
export function upstreamsText(cfg: Pick<Config, 'upstreams'>): string {
  return cfg.upstreams.map((u) => `${u.name}=${u.servers.map(formatServerSpec).join(',')}`).join(' ');
}

/**
 * How long a query sent to the old sets can still be running: each of up to 3 servers one
 * timeout, over UDP and again over TCP for a truncated answer, and a second to spare.
 */
export function drainMs(timeoutMs: number): number {
  return 2 * 3 * timeoutMs + 1000;
}

export const UPSTREAM_KEYS: readonly ConfigKey[] = ['upstreams', 'upstreamSource', 'upstreamTimeoutMs', 'upstreamTlsCa'];
export const CACHE_KEYS: readonly ConfigKey[] = ['cacheSize', 'cacheBytes', 'cacheMaxTtlS', 'cacheMaxNegativeTtlS', 'cacheStaleS', 'cachePrefetch'];

export interface LiveUpstreamsDeps {
  proxy: Pick<Proxy, 'openUpstreams' | 'replaceUpstreams'>;
  cache: Pick<AnswerCache, 'clear'>;
  log: Logger;
  /** How long replaced sets stay open (default `drainMs` of the running timeout). */
  drainMs?: (running: Config) => number;
}

interface UpstreamChange {
  next: Map<string, UpstreamSet>;
  /** Set by apply: the sets replaced. */
  old?: Map<string, UpstreamSet>;
  drainMs: number;
  text: string;
}

/** The `upstreams` part, and the replaced sets still draining (closed at once by `close`). */
export class LiveUpstreams {
  private readonly draining = new Map<ReturnType<typeof setTimeout>, Map<string, UpstreamSet>>();

  constructor(private readonly deps: LiveUpstreamsDeps) {}

  /** Replaced sets not yet closed. */
  get drainingCount(): number {
    return this.draining.size;
  }

  part(): LivePart<UpstreamChange> {
    const { proxy, cache, log } = this.deps;
    return {
      name: 'upstreams',
      owns: UPSTREAM_KEYS,
      prepare: async (running, next) => ({
        next: await proxy.openUpstreams(upstreamOptions(next)),
        drainMs: this.deps.drainMs?.(running) ?? drainMs(running.upstreamTimeoutMs),
        text: upstreamsText(next),
      }),
      abort: (p) => closeSets(p.next),
      apply: (p) => {
        p.old = proxy.replaceUpstreams(p.next);
        cache.clear();
      },
      rollback: (p) => {
        if (p.old) proxy.replaceUpstreams(p.old);
        p.old = undefined;
      },
      settle: (p) => {
        log.info('daemon: upstreams replaced', { upstreams: p.text });
        const old = p.old;
        if (!old) return {};
        const t = setTimeout(() => {
          this.draining.delete(t);
          closeSets(old);
          // answers to queries sent before the swap may have gone into the cache meanwhile
          cache.clear();
        }, p.drainMs);
        t.unref?.();
        this.draining.set(t, old);
        return {};
      },
    };
  }

  /** Closes the replaced sets still draining (the daemon stops). */
  close(): void {
    for (const [t, sets] of this.draining) {
      clearTimeout(t);
      closeSets(sets);
    }
    this.draining.clear();
  }
}

function closeSets(sets: Map<string, UpstreamSet>): void {
  for (const s of sets.values()) s.close();
}

/** The `cache` part: new limits, live. */
export function cachePart(cache: Pick<AnswerCache, 'setLimits' | 'settings'>): LivePart<{ before: CacheLimits; after: Partial<CacheLimits> }> {
  return {
    name: 'cache',
    owns: CACHE_KEYS,
    prepare: (_running, next) => ({ before: { ...cache.settings }, after: cacheLimits(next) }),
    apply: (p) => cache.setLimits(p.after),
    rollback: (p) => cache.setLimits(p.before),
  };
}
