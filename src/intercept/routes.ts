/**
 * Unreachable routes for the pool prefixes on the node (start-up only, `ip route replace`,
 * idempotent). Without them a packet to a pool address that has no mapping (expired, never
 * handed out, another group's) would follow the node's default route and leave in clear with an
 * intercept destination; with them the node answers ICMP unreachable and nothing leaves.
 * Translated packets never meet these routes: the NAT rewrites the destination at tc ingress,
 * before the route lookup.
 */
import { DnssealError } from '../util/errors.ts';
import type { Logger } from '../util/log.ts';
import { parseRange } from './address.ts';

function ip(args: string[]): { ok: boolean; err: string } {
  const r = Bun.spawnSync(['ip', ...args], { stdout: 'pipe', stderr: 'pipe' });
  return { ok: r.exitCode === 0, err: r.stderr.toString().trim() };
}

export function installPoolRoutes(pools: string[], log: Logger): void {
  for (const cidr of pools) {
    const r = parseRange(cidr);
    const res = ip([r.family === 6 ? '-6' : '-4', 'route', 'replace', 'unreachable', r.cidr]);
    if (!res.ok) throw new DnssealError('intercept', 'route_failed', `ip route replace unreachable ${r.cidr}: ${res.err}`);
    log.debug('intercept: unreachable route for the pool', { pool: r.cidr });
  }
}

/** `dnsseal down`: removes the routes installPoolRoutes added; returns a line per route removed. */
export function removePoolRoutes(pools: string[]): string[] {
  const out: string[] = [];
  for (const cidr of pools) {
    const r = parseRange(cidr);
    if (ip([r.family === 6 ? '-6' : '-4', 'route', 'del', 'unreachable', r.cidr]).ok) out.push(`route unreachable ${r.cidr}`);
  }
  return out;
}
