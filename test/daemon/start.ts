/**
 * The in-process daemon the daemon-level tests run: `runDaemon` on a config with test
 * defaults (silent log, real clock, fresh metrics, no IPsec), signals from an emitter, and the
 * promise resolved once it listens — or rejected when it exits during start-up.
 */
import { EventEmitter } from 'node:events';
import type { Config } from '../../src/config/types.ts';
import { runDaemon, type DaemonDeps, type DaemonInfo, type SignalSource } from '../../src/daemon/index.ts';
import { NoIpsec } from '../../src/ipsec/channel-manager.ts';
import { Metrics } from '../../src/ops/metrics.ts';
import { realClock } from '../../src/util/clock.ts';
import { silentLogger } from '../../src/util/log.ts';

export interface StartedDaemon {
  info: DaemonInfo;
  /** Settles with the exit code once the daemon stopped (emit SIGTERM on `signals`). */
  exit: Promise<number>;
  signals: EventEmitter;
}

/**
 * `deps` overrides the defaults; `signals` is the emitter the test sends SIGTERM/SIGHUP on.
 * (Not async itself, like runDaemon: the config must not stay reachable through this scope.)
 */
export function startDaemon(
  cfg: Config,
  deps: Partial<Omit<DaemonDeps, 'signals' | 'onReady'>> & { signals?: EventEmitter } = {},
  what = 'daemon',
): Promise<StartedDaemon> {
  const { signals = new EventEmitter(), ...rest } = deps;
  const ready = Promise.withResolvers<DaemonInfo>();
  const exit = runDaemon(cfg, {
    log: silentLogger,
    clock: realClock,
    metrics: new Metrics(),
    ipsec: new NoIpsec(cfg.channels),
    ...rest,
    signals: signals as unknown as SignalSource,
    onReady: ready.resolve,
  });
  return whenReady(ready.promise, exit, signals, what);
}

async function whenReady(ready: Promise<DaemonInfo>, exit: Promise<number>, signals: EventEmitter, what: string): Promise<StartedDaemon> {
  const info = await Promise.race([ready, exit.then((c) => Promise.reject(new Error(`${what} exited ${c}`)))]);
  return { info, exit, signals };
}
