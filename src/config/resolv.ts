/**
 * The default upstream when none is configured: **every** usable `nameserver` of resolv.conf,
 * in order (the first file that has one: /etc/resolv.conf, then systemd-resolved's list of its
 * own upstreams), so one dead resolver costs a failover, not the whole service. Addresses
 * dnsseal itself listens on (and 127.0.0.53, the usual stub address) are skipped, or dnsseal
 * would forward to itself in a loop; a nameserver listed twice is taken once.
 */
import { MAX_SERVERS } from '../proxy/upstream-set.ts';
import { formatHostPort, parseHostPort, type HostPort } from './address.ts';

export const RESOLV_PATHS = ['/etc/resolv.conf', '/run/systemd/resolve/resolv.conf'];

export interface ResolvPick {
  /** The usable nameservers, in file order; empty when none. */
  upstreams: HostPort[];
  skipped: string[];
}

/** `texts`: resolv.conf contents in order of preference; `listen`: our ADDR:PORT list. */
export function pickResolvUpstream(texts: string[], listen: string[]): ResolvPick {
  const ours = new Set(listen);
  ours.add('127.0.0.53:53');
  const skipped: string[] = [];
  for (const text of texts) {
    const picked: HostPort[] = [];
    const seen = new Set<string>();
    for (const line of text.split('\n')) {
      const m = /^\s*nameserver\s+(\S+)/.exec(line);
      if (!m) continue;
      let hp: HostPort;
      try {
        hp = parseHostPort(m[1]!.replace(/%.*$/, ''), 53);
      } catch {
        continue;
      }
      const key = formatHostPort(hp);
      const wildcardOurs = [...ours].some((l) => l.endsWith(`:${hp.port}`) && (l.startsWith('0.0.0.0:') || l.startsWith('[::]:')));
      if (ours.has(key) || (wildcardOurs && (hp.address.startsWith('127.') || hp.address === '::1'))) {
        skipped.push(key);
        continue;
      }
      if (seen.has(key) || picked.length >= MAX_SERVERS) continue;
      seen.add(key);
      picked.push(hp);
    }
    if (picked.length > 0) return { upstreams: picked, skipped };
  }
  return { upstreams: [], skipped };
}
