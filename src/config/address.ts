/**
 * `ADDR[:PORT]` texts as the config and flags write them (IPv6 as `[ADDR]:PORT` or bare).
 * Errors are plain Errors; the caller adds where (file:line or --flag).
 */
import { formatIP, parseIP } from '../util/ip.ts';

export interface HostPort {
  address: string;
  port: number;
}

function parsePort(p: string, text: string): number {
  if (!/^[0-9]{1,5}$/.test(p) || Number(p) < 1 || Number(p) > 65535) throw new Error(`"${text}": port "${p}" must be 1-65535`);
  return Number(p);
}

/** Parses ADDR, ADDR:PORT, [V6]:PORT or a bare V6 literal; the address must be an IP literal. */
export function parseHostPort(text: string, defaultPort: number | null): HostPort {
  if (typeof text !== 'string' || text.trim() === '') throw new Error('the address is empty');
  const t = text.trim();
  let host: string;
  let port: string | undefined;
  const bracket = /^\[([^\]]+)\](?::(.*))?$/.exec(t);
  if (bracket) [host, port] = [bracket[1]!, bracket[2]];
  else if ((t.match(/:/g) ?? []).length > 1) host = t; // bare IPv6, no port
  else [host, port] = t.split(':') as [string, string | undefined];
  const bytes = parseIP(host);
  if (!bytes || (bytes.length === 4 && host.includes(':'))) {
    throw new Error(`"${text}": "${host}" is not an IP address (host names are not resolved here)`);
  }
  if (port === undefined || port === '') {
    if (defaultPort === null) throw new Error(`"${text}" needs a port: ADDR:PORT${bytes.length === 16 ? ' (IPv6 as [ADDR]:PORT)' : ''}`);
    return { address: formatIP(bytes), port: defaultPort };
  }
  return { address: formatIP(bytes), port: parsePort(port, text) };
}

/**
 * The `listen` addresses that parse (port 53 by default), each with its text as written; the
 * others are left out — the setting's own type reports them. For the checks that compare them.
 */
export function parsedListen(list: readonly string[]): Array<HostPort & { text: string }> {
  return list.flatMap((text) => {
    try {
      return [{ text, ...parseHostPort(text, 53) }];
    } catch {
      return [];
    }
  });
}

export function formatHostPort(hp: HostPort): string {
  return hp.address.includes(':') ? `[${hp.address}]:${hp.port}` : `${hp.address}:${hp.port}`;
}

/**
 * A bare IP literal (`upstream_source`): no port, no brackets, no zone id; IPv4-mapped IPv6 is
 * refused (write the IPv4 address). Returns the normalised text.
 */
export function parseIpLiteral(text: string): string {
  if (typeof text !== 'string' || text.trim() === '') throw new Error('the address is empty');
  const t = text.trim();
  const bytes = t.includes('%') ? null : parseIP(t);
  if (!bytes || (bytes.length === 4 && t.includes(':'))) {
    throw new Error(`"${text}" is not an IP address (an IPv4 or IPv6 literal, no port, brackets or host name)`);
  }
  return formatIP(bytes);
}

/** 4 or 6, by the literal's form (`address` already normalised). */
export function ipFamily(address: string): 4 | 6 {
  return address.includes(':') ? 6 : 4;
}

/**
 * A pin root as the loader accepts it: an absolute path without `..`, trailing slash dropped.
 * `fail` reports the problem where it was written (file:line or --flag) and does not return.
 */
export function pinRootPath(text: string, fail: (msg: string) => never): string {
  const p = text.replace(/\/+$/, '');
  if (!p.startsWith('/') || p.split('/').includes('..')) fail(`"${text}" must be an absolute path (on a bpf filesystem, e.g. /sys/fs/bpf/dnsseal)`);
  if (p === '/sys/fs/bpf') fail(`"${text}" is the bpffs mount itself: name a directory below it (e.g. /sys/fs/bpf/dnsseal)`);
  return p;
}
