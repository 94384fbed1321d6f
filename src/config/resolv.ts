/**
 * The default upstream when none is configured: the first usable `nameserver` of
 * resolv.conf. Addresses dnsseal itself listens on (and 127.0.0.53, the usual stub address)
 * are skipped, or dnsseal would forward to itself in a loop.
 */
import { formatHostPort, parseHostPort, type HostPort } from './address.ts';

export const RESOLV_PATHS = ['/etc/resolv.conf', '/run/systemd/resolve/resolv.conf'];

export interface ResolvPick {
  upstream: HostPort | null;
  skipped: string[];
}

/** `texts`: resolv.conf contents in order of preference; `listen`: our ADDR:PORT list. */
export function pickResolvUpstream(texts: string[], listen: string[]): ResolvPick {
  const ours = new Set(listen);
  ours.add('127.0.0.53:53');
  const skipped: string[] = [];
  for (const text of texts) {
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
      return { upstream: hp, skipped };
    }
  }
  return { upstream: null, skipped };
}
