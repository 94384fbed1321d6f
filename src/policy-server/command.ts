/**
 * `dnsseal policy-server [--config FILE] [flags]`: load, serve, reload on SIGHUP, stop on
 * SIGTERM/SIGINT. Returns the exit code (only main.ts exits): 0 after a clean stop, 2 when the
 * config is invalid (the message says file:line), 1 when serving could not start.
 */
import { loadConfigText, type LoadDeps, fileDeps } from '../config/load.ts';
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
  log: Logger;
  metrics?: Metrics;
  signals: SignalSource;
  loadDeps?: LoadDeps;
}

/** `values`: the parsed flags (flag name → values), as `parseArgs` gives them. */
export async function runPolicyServerCommand(values: Map<string, string[]>, deps: PolicyServerCommandDeps): Promise<number> {
  const path = values.get('config')?.at(-1);
  if (!path) {
    deps.log.error('policy-server: --config FILE is required (the rule tables live there)');
    return 2;
  }
  const loadDeps = deps.loadDeps ?? fileDeps;
  const load = (): PolicyServerConfig => {
    let text: string;
    try {
      text = loadDeps.readFile(path);
    } catch (err) {
      throw new ConfigError('--config', `cannot read ${path}: ${errorMessage(err)}`, { cause: err });
    }
    return loadPolicyServerConfig(path, (t, source) => loadConfigText(t, source, values, loadDeps), text);
  };
  let cfg: PolicyServerConfig;
  try {
    cfg = load();
  } catch (err) {
    deps.log.error(errorMessage(err));
    return err instanceof ConfigError ? 2 : 1;
  }
  let running;
  try {
    running = await startPolicyServer(cfg, { clock: deps.clock, log: deps.log, metrics: deps.metrics, load });
  } catch (err) {
    deps.log.error('policy-server: could not start', { err: errorMessage(err) });
    return 1;
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
  deps.log.info('policy-server: stopped');
  return 0;
}
