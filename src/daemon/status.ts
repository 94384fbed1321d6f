/**
 * What the daemon adds to `status` about whether it can protect right now, and the gauges that
 * say the same to Prometheus:
 *
 * - the data path: `{up: true}`, or `{up: false, reason}` while `health()` reports it lost
 *   (pins removed, programs detached: protected names get SERVFAIL) — `dnsseal_datapath_up`;
 * - strongSwan: connected since, or waiting since with the last error (charon not started
 *   yet or restarting: DNS is served, protected traffic is dropped until the channels are
 *   loaded) — `dnsseal_ipsec_vici_up`, kept by the channel manager.
 */
import type { Datapath } from '../datapath/datapath.ts';
import type { IpsecChannels } from '../ipsec/channel-manager.ts';
import type { Metrics } from '../ops/metrics.ts';

export interface DatapathStatus {
  up: boolean;
  /** Why it cannot protect (health()), when it cannot. */
  reason?: string;
}

export function datapathStatus(dp: Pick<Datapath, 'health'>): DatapathStatus {
  const reason = dp.health();
  return reason === undefined ? { up: true } : { up: false, reason };
}

/** `dnsseal_datapath_up`, read from health() at each scrape. */
export function exportDatapathHealth(dp: Pick<Datapath, 'health'>, metrics: Metrics): void {
  const up = metrics.gauge('dnsseal_datapath_up', '1 while the data path can protect, 0 while it reports itself lost (protected names get SERVFAIL)');
  metrics.onCollect(() => up.set(dp.health() === undefined ? 1 : 0));
}

/** The `vici` field of `status`: charon's reachability, times in ISO form. */
export function viciStatus(ip: Pick<IpsecChannels, 'link'>): Record<string, string> {
  const link = ip.link();
  if (link.state === 'none') return { state: 'none' };
  const since = new Date(link.sinceMs).toISOString();
  return link.state === 'connected' ? { state: 'connected', since } : { state: 'waiting', since, lastError: link.lastError };
}
