/**
 * Where the leak guard goes when the config names no `wan` interface: on every interface that
 * carries a default route (IPv4 or IPv6). Without this, a marked packet with no XFRM policy to
 * take it (no SA yet, strongSwan down) would leave in clear — the guard must always be
 * somewhere.
 *
 * The default routes are read from /proc/net/route and /proc/net/ipv6_route (no process spawned),
 * once at start and then on every interface poll (3 s, DefaultRouteFollower below): when the
 * default route moves to another interface (WAN failover, DHCP on a new uplink, a VPN/PPP link
 * coming up), that interface gets the guard within one poll. The guard is never taken off an interface that lost
 * its default route: it may get it back, and a guard too many drops nothing that should leave in
 * clear (fail closed). With `wan` configured nothing is derived or followed: the operator chose.
 *
 * What /proc shows, and so what is followed: IPv4 lists the main table only (as `ip route` does)
 * and, for a multipath default route, only its first nexthop — name ECMP uplinks in `wan`. IPv6
 * lists every table, so a default route in a policy-routing table counts too (one guard more).
 */
import { readFileSync } from 'node:fs';
import type { Config } from '../config/types.ts';
import { DnssealError, errorMessage } from '../util/errors.ts';
import type { Logger } from '../util/log.ts';

/** The two route tables in /proc (injected in tests). */
export interface RouteFiles {
  v4: string;
  v6: string;
}

export const PROC_ROUTE_FILES: RouteFiles = { v4: '/proc/net/route', v6: '/proc/net/ipv6_route' };

/** route(8) flags, as /proc prints them (hex). */
const RTF_UP = 0x0001;
const RTF_REJECT = 0x0200;

/** What the kernel accepts as an interface name (dev_valid_name); anything else is garbage. */
function validIfname(name: string | undefined): name is string {
  return !!name && name.length < 16 && name !== '.' && name !== '..' && !/[\s/:]/.test(name);
}

function hexField(s: string | undefined, digits: number): number | undefined {
  if (s === undefined || s.length > digits || !/^[0-9a-fA-F]+$/.test(s)) return undefined;
  return Number.parseInt(s, 16);
}

function addOnce(devs: string[], dev: string): void {
  if (!devs.includes(dev)) devs.push(dev);
}

/**
 * Interfaces of the IPv4 default routes in /proc/net/route text: Destination and Mask 00000000,
 * RTF_UP set, RTF_REJECT clear (an unreachable default has Iface `*`). Header and bad lines skipped.
 */
export function parseIpv4DefaultRoutes(text: string): string[] {
  const devs: string[] = [];
  for (const line of text.split('\n')) {
    // Iface Destination Gateway Flags RefCnt Use Metric Mask MTU Window IRTT
    const f = line.trim().split(/\s+/);
    if (f.length < 8) continue;
    const [iface, dst, , flagsHex, , , , mask] = f;
    const flags = hexField(flagsHex, 4);
    if (!validIfname(iface) || dst !== '00000000' || mask !== '00000000' || flags === undefined) continue;
    if (!(flags & RTF_UP) || flags & RTF_REJECT) continue;
    addOnce(devs, iface);
  }
  return devs;
}

/**
 * Interfaces of the IPv6 default routes in /proc/net/ipv6_route text: destination all zeros with
 * prefix length 00, RTF_REJECT clear (an unreachable default, and each table's null entry, sit on
 * `lo` with the reject flag), device not `lo`. Bad lines skipped.
 */
export function parseIpv6DefaultRoutes(text: string): string[] {
  const devs: string[] = [];
  for (const line of text.split('\n')) {
    // dst dst_len src src_len next_hop metric refcnt use flags device
    const f = line.trim().split(/\s+/);
    if (f.length < 10) continue;
    const [dst, dstLen, , , , , , , flagsHex] = f;
    const dev = f[f.length - 1];
    const flags = hexField(flagsHex, 8);
    if (dst !== '0'.repeat(32) || dstLen !== '00' || flags === undefined || flags & RTF_REJECT) continue;
    if (!validIfname(dev) || dev === 'lo') continue;
    addOnce(devs, dev);
  }
  return devs;
}

/** The file's text; '' when it does not exist (no IPv6 in this kernel). */
function readRouteFile(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return '';
    throw new DnssealError('datapath', 'routes', `cannot read the default routes from ${path}: ${errorMessage(err)}`, { cause: err });
  }
}

/**
 * Interfaces of the default routes, IPv4 first, deduplicated, in the order the kernel lists them.
 * Throws only when a route file exists but cannot be read; never on its content.
 */
export function defaultRouteInterfaces(files: RouteFiles = PROC_ROUTE_FILES): string[] {
  const devs = parseIpv4DefaultRoutes(readRouteFile(files.v4));
  for (const dev of parseIpv6DefaultRoutes(readRouteFile(files.v6))) addOnce(devs, dev);
  return devs;
}

/** `cfg` with `wan` defaulted to the default-route interfaces when it names none. */
export function withGuardInterfaces<C extends Pick<Config, 'wan'>>(cfg: C, log: Logger, files: RouteFiles = PROC_ROUTE_FILES): C {
  if (cfg.wan.length > 0) return cfg;
  let wan: string[] = [];
  try {
    wan = defaultRouteInterfaces(files);
  } catch (err) {
    log.warn('datapath: reading the default routes failed; the guard follows them once they can be read', { err: errorMessage(err) });
  }
  if (wan.length === 0) {
    log.warn('datapath: no wan configured and no default route yet: the leak guard goes on the default-route interface once there is one (or name one with --wan)');
    return cfg;
  }
  log.info('datapath: no wan configured; the leak guard goes on the default-route interfaces and follows them (set wan: to choose)', { wan: wan.join(',') });
  return { ...cfg, wan };
}

/**
 * What the interface poll follows: the default-route interfaces when the config names no `wan`
 * (the guard goes wherever a default route moves), nothing when it names some.
 */
export function followedDefaultRoutes(cfg: Pick<Config, 'wan'>, files: RouteFiles = PROC_ROUTE_FILES): (() => string[]) | undefined {
  return cfg.wan.length > 0 ? undefined : () => defaultRouteInterfaces(files);
}

/**
 * The interfaces the guard follows when `wan` was derived from the default routes (a rule's
 * interface list, asked on every poll): the configured ones plus every default-route interface
 * seen so far. Nothing is ever removed: an interface that lost its default route keeps its guard
 * (fail closed: it may get the route back, and a guard too many lets nothing leak); one that
 * disappears is handled by the poll like any other.
 */
export class DefaultRouteFollower {
  private readonly wan: string[];
  /** Added because a default route moved there, not attached yet (announced once attached). */
  private readonly announce = new Set<string>();
  private unreadable = false;

  constructor(
    wan: readonly string[],
    private readonly read: () => string[],
    private readonly log: Logger,
  ) {
    this.wan = [...wan];
  }

  /** The guarded interfaces: the configured ones, then each default-route interface seen. */
  names(): string[] {
    let devs: string[];
    try {
      devs = this.read();
    } catch (err) {
      if (!this.unreadable) this.log.warn('datapath: cannot read the default routes; the guard stays where it is', { err: errorMessage(err) });
      this.unreadable = true;
      return this.wan;
    }
    this.unreadable = false;
    for (const name of devs) {
      if (this.wan.includes(name)) continue;
      this.wan.push(name);
      this.announce.add(name);
    }
    return this.wan;
  }

  /** The guard is on `name` now: says so once when a default route brought it there. */
  attached(name: string): void {
    if (this.announce.delete(name)) this.log.info(`datapath: default route now via ${name}; leak guard attached`, { dev: name });
  }
}
