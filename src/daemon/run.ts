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
import { reloadLogFields, startUp, type RunningDaemon } from './start-up.ts';
import { EXIT_OK, EXIT_START_FAILED, type DaemonDeps, type SignalSource, type StopReason } from './types.ts';

/**
 * Not async itself: the long-lived closures made while the daemon runs share their function's
 * scope, and `cfg` must not be in it — a reload would never free the start-up config (200k
 * rules of it).
 */
export function runDaemon(cfg: Config, deps: DaemonDeps): Promise<number> {
  const stack = new UndoStack(deps.log, 'daemon');
  const { promise: stopped, resolve: stop } = Promise.withResolvers<StopReason>();
  const shown = { mode: cfg.mode, config: cfg.source, upstreams: cfg.upstreams.map((u) => `${u.name}=${u.servers.map(formatServerSpec).join(',')}`).join(' ') };
  return serve(startUp(cfg, deps, stack, stop), shown, deps, stack, stopped, stop);
}

async function serve(
  starting: Promise<RunningDaemon>,
  shown: { mode: string; config: string; upstreams: string },
  deps: DaemonDeps,
  stack: UndoStack,
  stopped: Promise<StopReason>,
  stop: (why: StopReason) => void,
): Promise<number> {
  const { log } = deps;
  const signals = deps.signals ?? (process as unknown as SignalSource);
  let d: RunningDaemon;
  try {
    d = await starting;
  } catch (err) {
    log.error('daemon: could not start', { err: errorMessage(err), code: err instanceof DnssealError ? err.code : undefined });
    await stack.unwind();
    return EXIT_START_FAILED;
  }

  const listen = d.proxy.listeners.map((l) => `${l.transport}://${l.hostname}:${l.port}`);
  log.info('dnsseal running', {
    mode: shown.mode,
    config: shown.config,
    datapath: d.datapath.kind,
    ipsec: d.ipsec.kind,
    listen: listen.join(','),
    upstreams: shown.upstreams,
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
      (r) => log.info('daemon: configuration reloaded', reloadLogFields('SIGHUP', r)),
      (err) => log.warn('daemon: SIGHUP: reload failed', { err: errorMessage(err) }),
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
