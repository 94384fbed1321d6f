/**
 * The daemon (`dnsseal run`): starts everything from a Config (start-up.ts, in order), runs
 * until SIGTERM/SIGINT or a `down` request, reloads on SIGHUP, and returns the exit code (only
 * src/main.ts exits). On stop the undo stack unwinds in reverse: endpoints, then the listeners
 * (no answer leaves a half-stopped daemon), then registry, IPsec and data path. The kernel
 * state (pinned maps, charon's SAs) is left in place, unless the stop was a `down`.
 */
import type { Config } from '../config/types.ts';
import { formatServerSpec } from '../proxy/server-spec.ts';
import { DnssealError, errorMessage } from '../util/errors.ts';
import { UndoStack } from '../util/undo-stack.ts';
import { startUp, type RunningDaemon } from './start-up.ts';
import { EXIT_OK, EXIT_START_FAILED, type DaemonDeps, type SignalSource, type StopReason } from './types.ts';

export async function runDaemon(cfg: Config, deps: DaemonDeps): Promise<number> {
  const { log } = deps;
  const signals = deps.signals ?? (process as unknown as SignalSource);
  const stack = new UndoStack(log, 'daemon');
  const { promise: stopped, resolve: stop } = Promise.withResolvers<StopReason>();

  let d: RunningDaemon;
  try {
    d = await startUp(cfg, deps, stack, stop);
  } catch (err) {
    log.error('daemon: could not start', { err: errorMessage(err), code: err instanceof DnssealError ? err.code : undefined });
    await stack.unwind();
    return EXIT_START_FAILED;
  }

  const listen = d.proxy.listeners.map((l) => `${l.transport}://${l.hostname}:${l.port}`);
  log.info('dnsseal running', {
    mode: cfg.mode,
    config: cfg.source,
    datapath: d.datapath.kind,
    ipsec: d.ipsec.kind,
    listen: listen.join(','),
    upstreams: cfg.upstreams.map((u) => `${u.name}=${u.servers.map(formatServerSpec).join(',')}`).join(' '),
  });
  deps.onReady?.({
    listeners: d.proxy.listeners.map((l) => ({ transport: l.transport, hostname: l.hostname, port: l.port })),
    datapath: d.datapath.kind,
    ipsec: d.ipsec.kind,
    registry: d.registry,
    counters: d.counters,
    tls: d.tls.info(),
  });

  const onTerm = () => stop('SIGTERM');
  const onInt = () => stop('SIGINT');
  const onHup = () => {
    d.reload().then(
      (r) => log.info('daemon: configuration reloaded', { via: 'SIGHUP', ...r, restartNeeded: r.restartNeeded.join(',') }),
      (err: unknown) => log.warn('daemon: SIGHUP: reload failed', { err: errorMessage(err) }),
    );
  };
  signals.on('SIGTERM', onTerm);
  signals.on('SIGINT', onInt);
  signals.on('SIGHUP', onHup);
  const why = await stopped;
  signals.off('SIGTERM', onTerm);
  signals.off('SIGINT', onInt);
  signals.off('SIGHUP', onHup);
  log.info('dnsseal stopping', { reason: why });
  await stack.unwind();
  if (why === 'down' && deps.kernelDown) {
    try {
      const removed = await deps.kernelDown(log);
      log.info('down: kernel state removed', { objects: removed.length });
    } catch (err) {
      log.error('down: could not remove all kernel state (run `dnsseal down` again)', { err: errorMessage(err) });
      return EXIT_START_FAILED;
    }
  }
  log.info('dnsseal stopped');
  return EXIT_OK;
}
