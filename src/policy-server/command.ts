/**
 * `dnsseal policy-server --config FILE [flags]`: load, serve, reload on SIGHUP, stop on
 * SIGTERM/SIGINT. Exit codes follow src/cli/exit-codes.ts: an invalid config is thrown as a
 * ConfigError before anything starts (the CLI prints `file:line: …` and exits 1); 2 when
 * serving could not start; 0 after a clean stop. Only main.ts exits the process.
 */
import { loadConfigText, type LoadDeps, fileDeps } from '../config/load.ts';
import type { Config } from '../config/types.ts';
import { startMetricsServer, type MetricsServer } from '../ops/metrics-server.ts';
import type { Metrics } from '../ops/metrics.ts';
import type { Clock } from '../util/clock.ts';
import { ConfigError, errorMessage } from '../util/errors.ts';
import type { Logger } from '../util/log.ts';
import { loadPolicyServerConfig, type PolicyServerConfig } from './config.ts';
import { startPolicyServer } from './run.ts';

export interface SignalSource {
  on(signal: 'SIGHUP' | 'SIGTERM' | 'SIGINT', fn: () => void): void;
  off(signal: 'SIGHUP' | 'SIGTERM' | 'SIGINT', fn: () => void): void;
}

export interface PolicyServerCommandDeps {
  clock: Clock;
  /** Used until the config is loaded (and when `makeLogger` is absent). */
  log: Logger;
  /** Builds the logger the config asks for (`log_level`, `log_format`). */
  makeLogger?: (cfg: Config) => Logger;
  metrics?: Metrics;
  signals: SignalSource;
  loadDeps?: LoadDeps;
}

/** `values`: the parsed flags (flag name → values), as `parseArgs` gives them. */
export async function runPolicyServerCommand(values: Map<string, string[]>, deps: PolicyServerCommandDeps): Promise<number> {
  const path = values.get('config')?.at(-1);
  if (!path || path === 'none') throw new ConfigError('--config', 'policy-server needs --config FILE (the rule tables and the serve: section live there)');
  const loadDeps = deps.loadDeps ?? fileDeps;
  const load = (): PolicyServerConfig => {
    let text: string;
    try {
      text = loadDeps.readFile(path);
    } catch (err) {
      throw new ConfigError('--config', `cannot read ${path}: ${errorMessage(err)}`, { cause: err });
    }
    return loadPolicyServerConfig(path, (t, source) => loadConfigText(t, source, values, loadDeps, 'policy-server'), text);
  };
  const cfg = load(); // a ConfigError goes to the CLI: nothing has started
  const log = deps.makeLogger?.(cfg.base) ?? deps.log;
  let running;
  let metricsServer: MetricsServer | null = null;
  try {
    running = await startPolicyServer(cfg, { clock: deps.clock, log, metrics: deps.metrics, load });
  } catch (err) {
    log.error('policy-server: could not start', { err: errorMessage(err) });
    return 2;
  }
  if (cfg.base.metrics && deps.metrics) {
    try {
      metricsServer = startMetricsServer(cfg.base.metrics, deps.metrics, log);
    } catch (err) {
      log.error('policy-server: could not start the metrics endpoint', { err: errorMessage(err) });
      await running.close();
      return 2;
    }
  }
  const { promise: stopped, resolve: stop } = Promise.withResolvers<void>();
  const onHup = () => void running.reload();
  const onStop = () => stop();
  deps.signals.on('SIGHUP', onHup);
  deps.signals.on('SIGTERM', onStop);
  deps.signals.on('SIGINT', onStop);
  await stopped;
  deps.signals.off('SIGHUP', onHup);
  deps.signals.off('SIGTERM', onStop);
  deps.signals.off('SIGINT', onStop);
  await running.close();
  await metricsServer?.stop();
  log.info('policy-server: stopped');
  return 0;
}
