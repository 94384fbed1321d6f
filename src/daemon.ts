/**
 * The daemon (`dnsseal run`): builds policy, datapath, IPsec channels, registry, proxy, control
 * socket and metrics endpoint from a Config, runs until SIGTERM/SIGINT, and returns the exit
 * code (only src/main.ts exits). Order matters and is commented where it does:
 * the map is adopted before the first query can register into it, upstream sockets open
 * before listening ones, and on stop the listeners close first so no answer is released
 * by a half-torn-down daemon. The kernel state (pinned maps, charon's SAs) is left in place.
 *
 * Reload (`dnsseal reload`, SIGHUP) re-reads the config through `reloadConfig`, validates all of
 * it before touching anything, then swaps in one synchronous step (no query is decided half on
 * the old and half on the new policy): channels, statics, the policy the pipeline reads, then
 * entries no rule wants any more are withdrawn. Settings only a restart can change are reported.
 */
import type { Config } from './config/types.ts';
import { startControlServer, type ControlServer } from './control/server.ts';
import { createControlHandlers } from './control/handlers.ts';
import type { Datapath } from './datapath/datapath.ts';
import { createDatapath } from './datapath/factory.ts';
import { createEbpfDatapath } from './datapath/ebpf/index.ts';
import { followedDefaultRoutes, withGuardInterfaces } from './datapath/guard-interfaces.ts';
import { StaticKeyring } from './dns/tsig-key.ts';
import { createIntercept } from './intercept/factory.ts';
import { interceptObjectPath } from './intercept/object.ts';
import { createIpsecChannels } from './ipsec/ipsec-factory.ts';
import type { IpsecChannels } from './ipsec/channel-manager.ts';
import { startMetricsServer, type MetricsServer } from './ops/metrics-server.ts';
import type { Metrics } from './ops/metrics.ts';
import { exportXfrmStat } from './ops/xfrm-stat.ts';
import { Policy } from './policy/policy.ts';
import { tableGroup } from './policy/group.ts';
import type { ChannelSpec } from './policy/types.ts';
import { ServerChannels, policyServerLink } from './policy-server/proxy-side.ts';
import type { PolicyApi, PolicyServerLink } from './proxy/pipeline.ts';
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
  /**
   * Removes every kernel object dnsseal made (src/ops/down.ts); run after the daemon stopped
   * because of a `down` request. Absent in tests with fake back ends.
   */
  kernelDown?: (log: Logger) => Promise<string[]>;
  /**
   * Re-reads the configuration the daemon was started from (the CLI: `loadConfig` with the
   * original flags); throws when it is invalid. Absent: `reload` and SIGHUP are refused.
   */
  reloadConfig?: () => Config;
}

/** What `reload` answers (the control reply, also logged on SIGHUP). */
export interface ReloadResult {
  source: string;
  tables: number;
  rules: number;
  channels: number;
  statics: number;
  /** Names let go, entries moved to another channel, entries withdrawn (registry.reconcile). */
  released: number;
  moved: number;
  withdrawn: number;
  /** Settings that differ in the file but only change on a restart (the running values stay). */
  restartNeeded: string[];
}

/**
 * What a reload changes: the policy. Every other key (sockets, data path, IPsec, registry
 * timing — and any key added later) keeps its running value until a restart and is reported.
 */
const RELOADABLE = new Set<keyof Config>(['source', 'channels', 'tables', 'clients', 'statics']);

export type DaemonSignal = 'SIGTERM' | 'SIGINT' | 'SIGHUP';
/** Why the daemon stopped: a signal, or a `down` request on the control socket. */
export type StopReason = DaemonSignal | 'down';

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
  // The running policy and config; `reload` replaces both at once. The pipeline reads the
  // policy through `livePolicy`, so the swap is one assignment.
  let policy: Policy;
  let active: Config = cfg;
  const livePolicy: PolicyApi = {
    decide: (clientIp, names) => policy.decide(clientIp, names),
    preDecide: (clientIp, qname) => policy.preDecide(clientIp, qname),
  };
  // Channels a policy server named (#5, ids from 32768, `server:NAME`): they join the local
  // channel table of the registry and the data path as they are first seen.
  let serverChannels: ServerChannels | undefined;
  const allChannels = (local: ChannelSpec[]): ChannelSpec[] => (serverChannels ? [...local, ...serverChannels.list()] : local);
  const { promise: stopped, resolve: stop } = Promise.withResolvers<StopReason>();
  let reload: () => ReloadResult = () => {
    throw new DnssealError('daemon', 'reload_unavailable', 'reload: the daemon is still starting');
  };
  try {
    policy = Policy.fromConfig(cfg);

    datapath = createDatapath(cfg.datapath, {
      log,
      clock,
      // The guard must sit somewhere: with no `wan` configured, on the default-route interfaces,
      // and on each interface a default route moves to later (the interface poll follows them).
      ebpf: deps.ebpf ?? (() => createEbpfDatapath({ cfg: withGuardInterfaces(cfg, log), log, clock, metrics, pinRoot: cfg.pinRoot, defaultRoutes: followedDefaultRoutes(cfg) })),
    });
    const dp = datapath;
    // Leaves the pinned maps in place: a restarted daemon adopts them and keeps protecting.
    stack.push({ what: 'datapath', undo: () => dp.close() });
    // The kernel classifies clients into groups exactly as the policy picks their table
    // (longest prefix); without this every client would look up group 0 in the kernel while
    // its entries are registered under its table's group, and go unmarked.
    dp.setClientGroups(clientGroups(cfg));

    // Intercept mode (#6): pool, pinned NAT maps and LAN programs (ebpf), rebuilt from the pins
    // before the proxy answers anything; undefined in the other modes.
    const icpt = createIntercept({ cfg, datapathKind: datapath.kind, log, clock, metrics, pinRoot: cfg.pinRoot, objectPath: interceptObjectPath });
    if (icpt) stack.push({ what: 'intercept', undo: () => icpt.close() });

    const channelUp = new Map<number, boolean>();
    // Gateway and peer kind ride along: the data path learns them for server channels at runtime.
    const pushChannels = () =>
      dp.setChannels(
        allChannels(active.channels).map((c) => ({ id: c.id, mark: c.mark, up: channelUp.get(c.id) ?? false, gateway: c.gateway, peer: c.kind === 'peer' })),
      );
    ipsec =
      deps.ipsec ??
      createIpsecChannels(cfg, {
        log,
        metrics,
        clock,
        viciSocket: cfg.viciSocket,
        localId: cfg.localId,
        onChannelState: (channel, up) => {
          channelUp.set(channel.id, up);
          pushChannels();
        },
      });
    const ip = ipsec;
    stack.push({ what: 'ipsec', undo: () => ip.close() });
    // Drops by a trap policy whose peer SA is not up never reach the leak guard: export the
    // kernel's count of them. Only with strongSwan: without it dnsseal makes no XFRM policies.
    if (ipsec.kind === 'strongswan') exportXfrmStat({ metrics, log });
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

    let policyServer: PolicyServerLink | undefined;
    if (cfg.policyServer) {
      serverChannels = new ServerChannels((spec) => {
        log.info('daemon: policy server named a new channel', { channel: spec.name, id: spec.id, kind: spec.kind });
        reg.setChannels(allChannels(active.channels));
        try {
          pushChannels();
        } catch (err) {
          // The channel table only carries state and IKE exemptions; entries still get their mark.
          log.error('daemon: could not add a server channel to the data path channel table', { channel: spec.name, err: errorMessage(err) });
        }
        // A server tunnel channel gets its strongSwan connection; the pipeline awaits it (channelReady).
      }, (spec) => ip.ensureChannel(spec));
      policyServer = policyServerLink(
        { keyring: new StaticKeyring(cfg.tsigKeys), keyName: policyServerKey(cfg, cfg.policyServer), clock, channels: serverChannels },
        cfg.policyServer,
        // Gateway and intercept nodes speak for their LAN clients: the server applies each one's table.
        { sendClientSubnet: cfg.mode !== 'host' },
      );
    }

    exportProxyCounters(counters, metrics);
    proxy = await startProxy({
      listen: cfg.listen,
      upstreams: cfg.upstreams,
      ...(cfg.upstreamSource !== undefined ? { upstreamSource: cfg.upstreamSource } : {}),
      upstreamTimeoutMs: cfg.upstreamTimeoutMs,
      canary: cfg.canary,
      policy: livePolicy,
      registry,
      counters,
      clock,
      log,
      ...(policyServer ? { policyServer } : {}),
      ...(icpt ? { interceptor: icpt.interceptor } : {}),
    });
    const px = proxy;
    stack.push({ what: 'proxy', undo: () => px.close() });

    reload = () => {
      if (!deps.reloadConfig) {
        throw new DnssealError('daemon', 'reload_unavailable', 'reload: this daemon has no config source to re-read; nothing changed');
      }
      // 1. Validate everything before anything changes.
      let next: Config;
      let nextPolicy: Policy;
      try {
        next = deps.reloadConfig();
        checkChannelsReloadable(active, next, dp.kind, ip.kind);
        // Rules may only name upstreams the running forwarder has (upstreams change on restart).
        nextPolicy = Policy.fromConfig({ ...next, upstreams: active.upstreams });
      } catch (err) {
        throw new DnssealError('daemon', 'reload_invalid', `reload refused, the running policy is unchanged: ${errorMessage(err)}`, { cause: err });
      }
      const keys = [...new Set([...Object.keys(active), ...Object.keys(next)])] as (keyof Config)[];
      const restartNeeded = keys.filter((k) => !RELOADABLE.has(k) && !Bun.deepEquals(next[k], active[k]));
      const merged: Config = { ...active, source: next.source, channels: next.channels, tables: next.tables, clients: next.clients, statics: next.statics };
      // 2. Swap. Channels first (entries follow them by name), then statics (all-or-nothing:
      // on a map error the old channels come back and the old policy keeps running).
      reg.setChannels(allChannels(merged.channels));
      try {
        reg.setStatics(nextPolicy.statics().map((s) => ({ group: s.group, cidr: s.cidr, channel: s.channel })));
        dp.setClientGroups(clientGroups(merged));
      } catch (err) {
        reg.setChannels(allChannels(active.channels));
        try {
          dp.setClientGroups(clientGroups(active));
        } catch (e) {
          log.error('daemon: reload: could not restore the client groups', { err: errorMessage(e) });
        }
        throw new DnssealError('daemon', 'reload_failed', `reload: could not write the static entries, the running policy is unchanged: ${errorMessage(err)}`, { cause: err });
      }
      policy = nextPolicy;
      active = merged;
      pushChannels();
      // 3. Let go of what no rule wants any more (or moves it to the channel it now wants).
      const r = reg.reconcile(keepServerChoices(channelChooser(merged), serverChannels ? reg.list() : []));
      return {
        source: merged.source,
        tables: merged.tables.length,
        rules: merged.tables.reduce((n, t) => n + t.rules.length, 0),
        channels: merged.channels.length,
        statics: merged.statics.length,
        released: r.names,
        moved: r.moved,
        withdrawn: r.removed.length,
        restartNeeded,
      };
    };

    const control: ControlServer = await startControlServer(
      cfg.control,
      createControlHandlers({
        registry,
        clock,
        ...(icpt ? { intercepts: () => icpt.list() } : {}),
        // flush refuses a channel or table the running policy does not have
        policyNames: () => ({ channels: allChannels(active.channels).map((c) => c.name), tables: active.tables.map((t) => ({ id: t.id, group: t.group })) }),
        status: () => ({
          mode: cfg.mode,
          config: active.source,
          datapath: dp.kind,
          ipsec: ip.kind,
          listen: px.listeners.map((l) => `${l.transport}://${l.hostname}:${l.port}`),
          upstreams: cfg.upstreams.map((u) => `${u.name}=${u.address}:${u.port}`),
          channels: ip.status(),
          proxy: counters,
        }),
        // Reply first, then stop: the reply must leave before the control socket closes.
        down: async () => {
          setImmediate(() => stop('down'));
          return { stopping: true, removeKernelState: Boolean(deps.kernelDown) };
        },
        reload: async () => {
          const r = reload();
          log.info('daemon: configuration reloaded', { via: 'control', ...r, restartNeeded: r.restartNeeded.join(',') });
          return r;
        },
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

  const onTerm = () => stop('SIGTERM');
  const onInt = () => stop('SIGINT');
  const onHup = () => {
    try {
      const r = reload();
      log.info('daemon: configuration reloaded', { via: 'SIGHUP', ...r, restartNeeded: r.restartNeeded.join(',') });
    } catch (err) {
      log.warn('daemon: SIGHUP: reload failed', { err: errorMessage(err) });
    }
  };
  signals.on('SIGTERM', onTerm);
  signals.on('SIGINT', onInt);
  signals.on('SIGHUP', onHup);
  const sig = await stopped;
  signals.off('SIGTERM', onTerm);
  signals.off('SIGINT', onInt);
  signals.off('SIGHUP', onHup);
  log.info('dnsseal stopping', { reason: sig });
  // The stack unwinds in reverse: endpoints, then the listeners (no answer leaves a
  // half-stopped daemon), then registry, IPsec and datapath (kernel state stays in place).
  await teardown();
  if (sig === 'down' && deps.kernelDown) {
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

/**
 * strongSwan loads the configured tunnel connections at start (and the marks of live entries
 * depend on them): with it or the eBPF data path in use, the channel table must stay as it is
 * (rules, client tables and statics still reload). The fake/none back ends follow any change.
 */
function checkChannelsReloadable(running: Config, next: Config, datapathKind: string, ipsecKind: string): void {
  if (datapathKind !== 'ebpf' && ipsecKind === 'none') return;
  const show = (c: Config) => new Map(c.channels.map((ch) => [ch.name, ch]));
  const before = show(running);
  const after = show(next);
  const changed = [...new Set([...before.keys(), ...after.keys()])].filter((n) => !Bun.deepEquals(before.get(n), after.get(n)));
  if (changed.length > 0) {
    throw new DnssealError(
      'daemon',
      'reload_invalid',
      `channels changed (${changed.join(', ')}): with datapath ${datapathKind} and IPsec ${ipsecKind} channels are set up at start — restart dnsseal to change them`,
    );
  }
}

/** The TSIG key for the policy-server upstream: its own `tsig_key`, or the only key configured. */
function policyServerKey(cfg: Config, upstream: string): string {
  const key = cfg.upstreams.find((u) => u.name === upstream)?.tsigKey ?? (cfg.tsigKeys.length === 1 ? cfg.tsigKeys[0]!.name : undefined);
  if (!key) {
    throw new DnssealError('daemon', 'policy_server_key', `policy server "${upstream}": no TSIG key to sign with; give the upstream a tsig_key`);
  }
  return key;
}

/**
 * A reload re-decides names by the local rules only; a name a policy server protected (channel
 * `server:…`) keeps that channel unless a local rule now claims it (a local rule wins).
 */
function keepServerChoices(local: (group: number, name: string) => string | null, entries: { group: number; channel: string; names: string[] }[]) {
  const held = new Map<string, string>();
  for (const e of entries) {
    if (!e.channel.startsWith('server:')) continue;
    for (const n of e.names) held.set(`${e.group}\u0000${n}`, e.channel);
  }
  if (held.size === 0) return local;
  return (group: number, name: string) => local(group, name) ?? held.get(`${group}\u0000${name}`) ?? null;
}

/** Client CIDR → kernel group, as the policy maps clients to tables (figure 6, table 501). */
function clientGroups(cfg: Config): { cidr: string; group: number }[] {
  return cfg.clients.map((c) => ({ cidr: c.cidr, group: cfg.tables.find((t) => t.id === c.table)?.group ?? tableGroup(c.table) }));
}

/**
 * For registry.reconcile: the channel the new policy gives `name` in client group `group`
 * (the group's table alone, compiled once per group on first use), or null.
 */
function channelChooser(cfg: Config): (group: number, name: string) => string | null {
  const byGroup = new Map<number, Policy | null>();
  return (group, name) => {
    let p = byGroup.get(group);
    if (p === undefined) {
      const t = cfg.tables.find((x) => x.group === group);
      p = t ? Policy.fromConfig({ ...cfg, tables: [{ ...t, id: 'default' }], clients: [], statics: [] }) : null;
      byGroup.set(group, p);
    }
    return p?.decide('', [name]).channel?.name ?? null;
  };
}
