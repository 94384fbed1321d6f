/**
 * PLACEHOLDER (owned by the proxy work, #2): builds policy, datapath, registry, proxy and
 * control server from a Config and runs until a signal. Returns the process exit code.
 */
import type { Config } from './config/types.ts';
import type { Clock } from './util/clock.ts';
import type { Logger } from './util/log.ts';
import type { Metrics } from './ops/metrics.ts';
import { DnssealError } from './util/errors.ts';

export interface DaemonDeps {
  log: Logger;
  clock: Clock;
  metrics: Metrics;
}

export async function runDaemon(_cfg: Config, _deps: DaemonDeps): Promise<number> {
  throw new DnssealError('daemon', 'not_implemented', 'the daemon is not wired yet');
}
