/**
 * The daemon (`dnsseal run`): builds policy, datapath, IPsec channels, registry, proxy, control
 * socket and metrics endpoint from a Config, runs until SIGTERM/SIGINT, and returns the exit
 * code (only src/main.ts exits). Order matters and is commented where it does:
 * the map is adopted before the first query can register into it, upstream sockets open
 * before listening ones, and on stop the listeners close first so no answer is released
 * by a half-torn-down daemon. The kernel state (pinned maps, charon's SAs) is left in place.
 */
import type { Config } from './config/types.ts';
import { startControlServer, type ControlServer } from './control/server.ts';
import { createControlHandlers } from './control/handlers.ts';
import type { Datapath } from './datapath/datapath.ts';
import { createDatapath } from './datapath/factory.ts';
import { createEbpfDatapath } from './datapath/ebpf/index.ts';
import { createIpsecChannels } from './ipsec/ipsec-factory.ts';
import type { IpsecChannels } from './ipsec/channel-manager.ts';
import { startMetricsServer, type MetricsServer } from './ops/metrics-server.ts';
import type { Metrics } from './ops/metrics.ts';
import { Policy } from './policy/policy.ts';
import { startProxy, type Proxy } from './proxy/proxy.ts';
import { exportProxyCounters, newProxyCounters, type ProxyCounters } from './proxy/proxy-counters.ts';
import { Registry } from './registry/registry.ts';
import type { Clock } from './util/clock.ts';
import { DnssealError, errorMessage } from './util/errors.ts';
import type { Logger } from './util/log.ts';

export interface DaemonDeps {
  log: Logger;
  clock: Clock;
  metrics: Metrics;
  /** Where signals come from (default: the process). Tests pass an emitter. */
  signals?: SignalSource;
  /** Called once everything listens (tests read the bound ports from it). */
  onReady?: (info: DaemonInfo) => void;
  /** Replaces the eBPF backend constructor (tests). */
  ebpf?: () => Datapath;
  /** Replaces the IPsec backend (tests). */
  ipsec?: IpsecChannels;
}

export type DaemonSignal = 'SIGTERM' | 'SIGINT' | 'SIGHUP';

export interface SignalSource {
  on(sig: DaemonSignal, fn: () => void): unknown;
  off(sig: DaemonSignal, fn: () => void): unknown;
}

export interface DaemonInfo {
  listeners: Array<{ transport: string; hostname: string; port: number }>;
  datapath: string;
  ipsec: string;
  registry: Registry;
  counters: ProxyCounters;
}

/** Exit codes (documented in `dnsseal --help` by the CLI). */
export const EXIT_OK = 0;
export const EXIT_START_FAILED = 1;

export async function runDaemon(cfg: Config, deps: DaemonDeps): Promise<number> {
  const { log, clock, metrics } = deps;
  const signals = deps.signals ?? (process as unknown as SignalSource);
  const stack: Array<{ what: string; undo: () => void | Promise<void> }> = [];
  const teardown = async () => {
    while (stack.length) {
      const { what, undo } = stack.pop()!;
      try {
        await undo();
      } catch (err) {
        log.warn('daemon: error while stopping', { what, err: errorMessage(err) });
      }
    }
  };

  let proxy: Proxy;
  let registry: Registry;
  let datapath: Datapath;
  let ipsec: IpsecChannels;
  const counters = newProxyCounters();
  try {
    const policy = Policy.fromConfig(cfg);

    datapath = createDatapath(cfg.datapath, {
      log,
      clock,
      ebpf: deps.ebpf ?? (() => createEbpfDatapath({ cfg, log, clock, metrics })),
    });
    const dp = datapath;
    // Leaves the pinned maps in place: a restarted daemon adopts them and keeps protecting.
    stack.push({ what: 'datapath', undo: () => dp.close() });

    const channelUp = new Map<number, boolean>();
    const pushChannels = () =>
      dp.setChannels(cfg.channels.map((c) => ({ id: c.id, mark: c.mark, up: channelUp.get(c.id) ?? false })));
    ipsec =
      deps.ipsec ??
      createIpsecChannels(cfg, {
        log,
        metrics,
        clock,
        onChannelState: (channel, up) => {
          channelUp.set(channel.id, up);
          pushChannels();
        },
      });
    const ip = ipsec;
    stack.push({ what: 'ipsec', undo: () => ip.close() });
    pushChannels();
    await ipsec.start();

    registry = new Registry({
      datapath,
      clock,
      log,
      metrics,
      minHoldMs: cfg.minHoldS * 1000,
      idleMs: cfg.idleS * 1000,
      hooks: ipsec,
      channels: cfg.channels,
    });
    // Before any query can register: take over what a previous run left in the pinned map.
    registry.adopt();
    registry.setStatics(policy.statics().map((s) => ({ group: s.group, cidr: s.cidr, channel: s.channel })));
    registry.start();
    const reg = registry;
    stack.push({ what: 'registry', undo: () => reg.stop() });

    exportProxyCounters(counters, metrics);
    proxy = await startProxy({
      listen: cfg.listen,
      upstreams: cfg.upstreams,
      upstreamTimeoutMs: cfg.upstreamTimeoutMs,
      canary: cfg.canary,
      policy,
      registry,
      counters,
      clock,
      log,
    });
    const px = proxy;
    stack.push({ what: 'proxy', undo: () => px.close() });

    const control: ControlServer = await startControlServer(
      cfg.control,
      createControlHandlers({
        registry,
        clock,
        status: () => ({
          mode: cfg.mode,
          config: cfg.source,
          datapath: dp.kind,
          ipsec: ip.kind,
          listen: px.listeners.map((l) => `${l.transport}://${l.hostname}:${l.port}`),
          upstreams: cfg.upstreams.map((u) => `${u.name}=${u.address}:${u.port}`),
          channels: ip.status(),
          proxy: counters,
        }),
        // TODO(control/reload, #7): SIGHUP and `dnsseal reload` land here. Re-read the config,
        // build a new Policy, registry.setChannels + setStatics + reconcile, swap the policy the
        // pipeline reads (give Pipeline a setPolicy), and keep the old state on any error.
      }),
      log,
    );
    stack.push({ what: 'control', undo: () => control.close() });

    if (cfg.metrics) {
      const ms: MetricsServer = startMetricsServer(cfg.metrics, metrics, log);
      stack.push({ what: 'metrics', undo: () => ms.stop() });
    }
  } catch (err) {
    log.error('daemon: could not start', { err: errorMessage(err), code: err instanceof DnssealError ? err.code : undefined });
    await teardown();
    return EXIT_START_FAILED;
  }

  log.info('dnsseal running', {
    mode: cfg.mode,
    config: cfg.source,
    datapath: datapath.kind,
    ipsec: ipsec.kind,
    listen: proxy.listeners.map((l) => `${l.transport}://${l.hostname}:${l.port}`).join(','),
    upstreams: cfg.upstreams.map((u) => `${u.name}=${u.address}:${u.port}`).join(','),
  });
  deps.onReady?.({
    listeners: proxy.listeners.map((l) => ({ transport: l.transport, hostname: l.hostname, port: l.port })),
    datapath: datapath.kind,
    ipsec: ipsec.kind,
    registry,
    counters,
  });

  const { promise: stopped, resolve: stop } = Promise.withResolvers<DaemonSignal>();
  const onTerm = () => stop('SIGTERM');
  const onInt = () => stop('SIGINT');
  const onHup = () => {
    // TODO(control/reload, #7): call the same reload as the control command (see above).
    log.warn('daemon: SIGHUP received; reload is not implemented yet, configuration unchanged');
  };
  signals.on('SIGTERM', onTerm);
  signals.on('SIGINT', onInt);
  signals.on('SIGHUP', onHup);
  const sig = await stopped;
  signals.off('SIGTERM', onTerm);
  signals.off('SIGINT', onInt);
  signals.off('SIGHUP', onHup);
  log.info('dnsseal stopping', { signal: sig });
  // The stack unwinds in reverse: endpoints, then the listeners (no answer leaves a
  // half-stopped daemon), then registry, IPsec and datapath (kernel state stays in place).
  await teardown();
  log.info('dnsseal stopped');
  return EXIT_OK;
}
