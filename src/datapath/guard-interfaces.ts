/**
 * Where the leak guard goes when the config names no `wan` interface: on every interface that
 * carries a default route (IPv4 or IPv6). Without this, a marked packet with no XFRM policy to
 * take it (no SA yet, strongSwan down) would leave in clear — the guard must always be
 * somewhere. Read once at start with `ip -j route` (spawning at start-up is fine; the DNS path
 * never spawns). New default routes later need `wan:` or a restart: say so in the log.
 */
import type { Config } from '../config/types.ts';
import { DnssealError, errorMessage } from '../util/errors.ts';
import type { Logger } from '../util/log.ts';

/** Runs `ip -j [-6] route show default` and returns its stdout (injected in tests). */
export type RouteReader = (family: 4 | 6) => string;

export const readDefaultRoutes: RouteReader = (family) => {
  const r = Bun.spawnSync(['ip', '-j', ...(family === 6 ? ['-6'] : []), 'route', 'show', 'default'], { stdout: 'pipe', stderr: 'pipe' });
  if (r.exitCode !== 0) throw new DnssealError('datapath', 'routes', `ip route show default failed: ${r.stderr.toString().trim()}`);
  return r.stdout.toString();
};

/** Interfaces of the default routes, deduplicated, in the order `ip` lists them. */
export function defaultRouteInterfaces(read: RouteReader = readDefaultRoutes): string[] {
  const devs: string[] = [];
  for (const family of [4, 6] as const) {
    const text = read(family).trim();
    if (!text) continue;
    let rows: unknown;
    try {
      rows = JSON.parse(text);
    } catch (err) {
      throw new DnssealError('datapath', 'routes', `cannot read the default routes (ip -j route): ${errorMessage(err)}`);
    }
    if (!Array.isArray(rows)) continue;
    for (const row of rows) {
      const dev = (row as { dev?: unknown }).dev;
      if (typeof dev === 'string' && dev && !devs.includes(dev)) devs.push(dev);
    }
  }
  return devs;
}

/** `cfg` with `wan` defaulted to the default-route interfaces when it names none. */
export function withGuardInterfaces<C extends Pick<Config, 'wan'>>(cfg: C, log: Logger, read: RouteReader = readDefaultRoutes): C {
  if (cfg.wan.length > 0) return cfg;
  const wan = defaultRouteInterfaces(read);
  if (wan.length === 0) {
    log.warn('datapath: no wan configured and no default route: the leak guard has no interface yet; name one with --wan');
    return cfg;
  }
  log.info('datapath: no wan configured; the leak guard goes on the default-route interfaces (set wan: to choose)', { wan: wan.join(',') });
  return { ...cfg, wan };
}
