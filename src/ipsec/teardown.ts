/**
 * `dnsseal down` for the IPsec side, without a running daemon: every connection whose name
 * starts with `dnsseal-` has its trap uninstalled, is unloaded, and its SAs terminated. Connections of
 * anyone else are left alone. Idempotent; a charon that is not running has nothing of ours.
 * Returns one line per connection removed.
 */
import { errorMessage, DnssealError } from '../util/errors.ts';
import type { Logger } from '../util/log.ts';
import { CONN_PREFIX } from './conn-config.ts';
import type { ViciApi } from './vici-api.ts';
import { isSection } from './vici-codec.ts';

export async function teardownIpsec(vici: ViciApi, log: Logger): Promise<string[]> {
  let listed;
  try {
    listed = await vici.listConns();
  } catch (e) {
    if (e instanceof DnssealError && e.code === 'vici_unreachable') {
      log.info('charon not reachable; no IPsec connections to remove', { socket: vici.socketPath });
      return [];
    }
    throw e;
  }
  const removed: string[] = [];
  for (const entry of listed) {
    for (const [conn, body] of Object.entries(entry)) {
      if (!conn.startsWith(CONN_PREFIX)) continue;
      const children = isSection(body) ? body.children : undefined;
      const childNames = isSection(children) ? Object.keys(children) : [];
      // Same order as the channel manager: trap, config, then SAs (charon keeps the SAs
      // of an unloaded config, and one still negotiating must not come up afterwards).
      for (const child of childNames) await vici.uninstall({ child }).catch(() => {});
      try {
        await vici.unloadConn(conn);
      } catch (e) {
        log.warn('unload-conn failed', { conn, err: errorMessage(e) });
        throw e;
      }
      await vici.terminate({ ike: conn, timeoutMs: -1, force: true }).catch(() => {});
      removed.push(`ipsec connection ${conn}`);
    }
  }
  return removed;
}
