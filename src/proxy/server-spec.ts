/**
 * One server of an upstream, as the config writes it:
 *
 *   192.0.2.1  192.0.2.1:5353  [2001:db8::1]:53   plain DNS: UDP, TCP when the answer is truncated
 *   2001:db8::1  [2001:db8::1:53]                 IPv6 without a port (brackets: the port is 53)
 *   ::1:5353                                      refused: [::1]:5353 or [::1:5353]? (ambiguousIpv6)
 *   tls://192.0.2.1[:853]#dns.example             DNS over TLS (RFC 7858)
 *   https://192.0.2.1[:443][/dns-query]#dns.example  DNS over HTTPS (RFC 8484)
 *
 * ADDR is always an IP literal: resolving the upstream's own name would need an upstream. The
 * name after `#` is what the certificate must be issued for (and the TLS SNI, and the HTTP
 * Host); without it the certificate must name the IP address itself. Pure: no sockets, so the
 * config reader can use it to check a file before anything starts.
 */
import { formatHostPort, parseHostPort } from '../config/address.ts';
import { DnssealError } from '../util/errors.ts';
import { parseIP } from '../util/ip.ts';

export type ServerSpec =
  | { transport: 'dns'; address: string; port: number }
  | { transport: 'tls'; address: string; port: number; serverName: string }
  | { transport: 'https'; address: string; port: number; path: string; serverName: string };

export const DOT_PORT = 853;
export const DOH_PORT = 443;
export const DOH_PATH = '/dns-query';

const NAME = /^(?=.{1,253}$)([A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)(\.[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*\.?$/;
const PATH = /^\/[A-Za-z0-9\-._~!$&'()*+,;=:@/%]*$/;

function invalid(text: string, why: string): never {
  throw new DnssealError('proxy', 'upstream_invalid', `upstream server "${text}": ${why}`);
}

/** Parses one server; throws `DnssealError` (code `upstream_invalid`) saying what is wrong. */
export function parseServerSpec(text: string): ServerSpec {
  if (typeof text !== 'string' || text.trim() === '') invalid(String(text), 'empty');
  const t = text.trim();
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(t)?.[1]?.toLowerCase();
  if (scheme === undefined) {
    if (t.includes('#') || t.includes('/')) invalid(t, 'a name (#NAME) or a path needs tls:// or https://');
    return { transport: 'dns', ...hostPort(t, t, 53) };
  }
  if (scheme !== 'tls' && scheme !== 'https') invalid(t, `unknown scheme "${scheme}://" (plain ADDR[:PORT], tls://ADDR[:PORT]#NAME or https://ADDR[:PORT]/PATH#NAME)`);
  let rest = t.slice(scheme.length + 3);
  let serverName: string | undefined;
  const hash = rest.indexOf('#');
  if (hash >= 0) {
    serverName = rest.slice(hash + 1);
    rest = rest.slice(0, hash);
    if (!NAME.test(serverName)) invalid(t, `"${serverName}" after # is not a DNS name (the name the certificate is issued for)`);
    serverName = serverName.replace(/\.$/, '').toLowerCase();
  }
  if (rest.includes('?')) invalid(t, 'a query string is not allowed');
  const slash = rest.indexOf('/');
  const authority = slash >= 0 ? rest.slice(0, slash) : rest;
  const path = slash >= 0 ? rest.slice(slash) : null;
  if (scheme === 'tls') {
    if (path !== null && path !== '/') invalid(t, 'tls:// takes no path');
    const hp = hostPort(authority, t, DOT_PORT);
    return { transport: 'tls', ...hp, serverName: serverName ?? hp.address };
  }
  if (path !== null && !PATH.test(path)) invalid(t, `"${path}" is not a valid URL path`);
  const hp = hostPort(authority, t, DOH_PORT);
  return { transport: 'https', ...hp, path: path === null || path === '/' ? DOH_PATH : path, serverName: serverName ?? hp.address };
}

/**
 * `::1:5353`, `2001:db8::1:53`: a bare IPv6 text that is a complete address followed by
 * `:DIGITS` reads both as that address with a port and as one longer address (RFC 3986 and
 * RFC 5952 §6 put an IPv6 address with a port in brackets). Taken as the longer address it
 * would silently send every query to a server that is not there, so it is refused, with both
 * spellings. `2001:4860:4860::8888` is not ambiguous (`2001:4860:4860:` is no address).
 */
function ambiguousIpv6(authority: string): { head: string; port: string } | null {
  const m = /^([^[\]]*[^:[\]]):(\d{1,5})$/.exec(authority);
  if (!m || !m[1]!.includes(':') || Number(m[2]) > 65535) return null;
  const bytes = parseIP(m[1]!);
  return bytes && bytes.length === 16 ? { head: m[1]!, port: m[2]! } : null;
}

function hostPort(authority: string, text: string, defaultPort: number): { address: string; port: number } {
  const amb = ambiguousIpv6(authority);
  if (amb) {
    invalid(
      text,
      `ambiguous: an IPv6 address with a port goes in brackets — write [${amb.head}]:${amb.port} for port ${amb.port} of ${amb.head}, or [${authority}] for the address ${authority} (port ${defaultPort})`,
    );
  }
  try {
    return parseHostPort(authority, defaultPort);
  } catch (err) {
    return invalid(text, `${(err as Error).message}${authority.length > 0 && /[a-z]/i.test(authority) && !authority.includes(':') ? ' — write the address, and the name after #' : ''}`);
  }
}

/** The canonical text of a server (logs, `status`): round-trips through `parseServerSpec`. */
export function formatServerSpec(s: ServerSpec): string {
  const hp = formatHostPort(s);
  switch (s.transport) {
    case 'dns':
      return hp;
    case 'tls':
      return `tls://${hp}${s.serverName === s.address ? '' : `#${s.serverName}`}`;
    case 'https':
      return `https://${hp}${s.path}${s.serverName === s.address ? '' : `#${s.serverName}`}`;
  }
}
