/**
 * The daemon's start-up, in the order it must happen. Each step pushes its undo on the stack,
 * so a failure half-way leaves nothing running and a stop unwinds in reverse:
 *
 *  1. the policy (a bad config stops here, before any kernel object is touched);
 *  2. the data path (`auto`: eBPF, or a refusal when the policy protects anything and eBPF
 *     cannot come up) and the client groups, then intercept mode's NAT;
 *  3. IPsec: the channel table, then strongSwan (charon absent is not fatal: the channels are
 *     loaded when it appears, and until then the guard drops their traffic);
 *  4. the registry adopts the pinned map and writes the statics — before any query can register;
 *     then the TLS relay and acceptor (tls-step.ts; the relay routes by the registry);
 *  5. the policy-server link (its channels join the table as they are first seen);
 *  6. the answer cache, then the proxy: upstream sockets first (every server of every upstream
 *     name), then the listeners — from here DNS is served, to the senders `allow_clients`
 *     admits; then enforce_dns (its redirect targets are the bound listen addresses);
 *  7. the live config (reload), the control socket, the metrics endpoint.
 */
import { statSync } from 'node:fs';
import type { Config } from '../config/types.ts';
import { startControlServer } from '../control/server.ts';
import { createControlHandlers } from '../control/handlers.ts';
import type { Datapath } from '../datapath/datapath.ts';
import { createDatapath } from '../datapath/factory.ts';
import { createEbpfDatapath } from '../datapath/ebpf/index.ts';
import { followedDefaultRoutes, withGuardInterfaces } from '../datapath/guard-interfaces.ts';
import { StaticKeyring } from '../dns/tsig-key.ts';
import { createIntercept, type InterceptRuntime } from '../intercept/factory.ts';
import { interceptObjectPath } from '../intercept/object.ts';
import type { IpsecChannels } from '../ipsec/channel-manager.ts';
import { createIpsecChannels } from '../ipsec/ipsec-factory.ts';
import { DEFAULT_VICI_SOCKET } from '../ipsec/vici-client.ts';
import { startMetricsServer } from '../ops/metrics-server.ts';
import { exportXfrmStat } from '../ops/xfrm-stat.ts';
import { forEachTarget } from '../policy/rule-list.ts';
import { Policy } from '../policy/policy.ts';
import { ServerChannels, policyServerLink } from '../policy-server/proxy-side.ts';
import type { PolicyServerLink } from '../proxy/pipeline.ts';
import { startProxy, type Proxy } from '../proxy/proxy.ts';
import { exportProxyCounters, newProxyCounters, type ProxyCounters } from '../proxy/proxy-counters.ts';
import { Registry } from '../registry/registry.ts';
import { allowedClients, ClientAcl, lanPrefixesForAccess } from '../proxy/client-acl.ts';
import { QueryLog } from '../proxy/query-log.ts';
import { DnssealError, errorMessage } from '../util/errors.ts';
import type { UndoStack } from '../util/undo-stack.ts';
import { ChannelTable } from './channel-table.ts';
import { ikeExemption } from './ike-exemption.ts';
import { LiveConfig } from './live-config.ts';
import { Enforce } from './enforce.ts';
import { FakeDnsEnforcer, NftDnsEnforcer } from '../datapath/dns-enforce.ts';
import { LiveLocalRecords, LivePolicy, channelsPart, clientGroups, hostsPart, localRecordsOf, policyPart, staticsOf } from './live-parts.ts';
import { accessPart, listenPart, logPart, queryLogPart } from './live-settings.ts';
import { makeReloader } from './reload.ts';
import { datapathStatus, exportDatapathHealth, ReloadRecord, statusReport, viciStatus } from './status.ts';
import { cachePart, LiveUpstreams, openCache, upstreamOptions } from './live-upstreams.ts';
import { exportUpstreamHealth } from '../proxy/upstream-metrics.ts';
import type { AnswerCache } from '../cache/answer-cache.ts';
import { TlsRuntime, ipsecHooks, ipsecOnly } from './tls-step.ts';
import type { DaemonDeps, ReloadResult } from './types.ts';

/** What runs once the start-up is through. */
export interface RunningDaemon {
  datapath: Datapath;
  ipsec: IpsecChannels;
  registry: Registry;
  proxy: Proxy;
  counters: ProxyCounters;
  tls: TlsRuntime;
  /** Re-reads the config and applies it (rejects with `reload_*` and the reason; nothing changed then). */
  reload: () => Promise<ReloadResult>;
}

export async function startUp(cfg: Config, deps: DaemonDeps, stack: UndoStack, stop: (why: 'down') => void): Promise<RunningDaemon> {
  const { log, clock, metrics } = deps;
  // 1. The policy.
  const policy = new LivePolicy(Policy.fromConfig(cfg));

  // 2. The data path, then intercept mode's NAT (rebuilt from its pins before anything answers).
  const dp = openDatapath(cfg, deps);
  // Leaves the pinned maps in place: a restarted daemon adopts them and keeps protecting.
  stack.push('datapath', () => dp.close());
  exportDatapathHealth(dp, metrics);
  // The kernel classifies clients into groups exactly as the policy picks their table
  // (longest prefix); without this every client would look up group 0 in the kernel while
  // its entries are registered under its table's group, and go unmarked.
  dp.setClientGroups(clientGroups(cfg));
  const icpt = createIntercept({ cfg, datapathKind: dp.kind, log, clock, metrics, pinRoot: cfg.pinRoot, objectPath: interceptObjectPath });
  if (icpt) stack.push('intercept', () => icpt.close());

  // 3. IPsec.
  const channels = new ChannelTable(cfg.channels, dp, () => clock.nowMs());
  const ip =
    deps.ipsec ??
    createIpsecChannels(ipsecOnly(cfg), {
      log,
      metrics,
      clock,
      viciSocket: cfg.viciSocket,
      localId: cfg.localId,
      onChannelState: (channel, up) => channels.setUp(channel.id, up),
      onCharonUp: ikeExemption(dp, cfg.viciSocket ?? DEFAULT_VICI_SOCKET, log),
    });
  stack.push('ipsec', () => ip.close());
  // Drops by a trap policy whose peer SA is not up never reach the leak guard: export the
  // kernel's count of them. Only with strongSwan: without it dnsseal makes no XFRM policies.
  if (ip.kind === 'strongswan') exportXfrmStat({ metrics, log });
  channels.push();
  await ip.start();

  // 4. The registry: take over what a previous run left in the pinned map, before any query.
  const registry = new Registry({
    datapath: dp,
    clock,
    log,
    metrics,
    minHoldMs: cfg.minHoldS * 1000,
    idleMs: cfg.idleS * 1000,
    retireMs: cfg.retireS * 1000,
    ...(dp.capacity !== undefined ? { capacity: dp.capacity } : {}),
    hooks: ipsecHooks(ip),
    channels: cfg.channels,
  });
  registry.adopt();
  registry.setStatics(staticsOf(policy.current));
  registry.start();
  stack.push('registry', () => registry.stop());
  const tls = TlsRuntime.start(cfg, { log, metrics, registry, groupOf: (a) => policy.current.tableFor(a).group, originalDst: deps.tlsOriginalDst, interception: dp.tls }, stack);

  // 5. The policy-server link.
  const policyServer = cfg.policyServer ? linkPolicyServer(cfg, cfg.policyServer, deps, channels, registry, ip) : undefined;

  // 6. The proxy.
  const counters = newProxyCounters();
  exportProxyCounters(counters, metrics);
  const lanIfaces = cfg.lan; // closures keep fields, never `cfg`: a reload must let the old config go
  const lan = () => lanPrefixesForAccess(lanIfaces, deps.readAddrs, log);
  const acl = new ClientAcl(allowedClients(cfg.allowClients, lan));
  const queryLog = new QueryLog(log, cfg.logQueries);
  const cache = openCache(cfg, clock, metrics);
  const local = new LiveLocalRecords(localRecordsOf(cfg));
  const proxy = await startProxy({
    listen: cfg.listen,
    ...upstreamOptions(cfg),
    cache,
    canary: cfg.canary,
    // a CNAME target a protected answer named stays protected for its TTL (at least min_hold)
    cnameHold: { minHoldS: cfg.minHoldS },
    trustedForwarders: cfg.trustedForwarders,
    metrics,
    policy,
    registry,
    counters,
    clock,
    log,
    ...(policyServer ? { policyServer } : {}),
    ...(icpt ? { interceptor: icpt.interceptor } : {}),
    acl,
    queryLog,
    local,
  });
  stack.push('proxy', () => proxy.close());
  log.info('proxy: clients allowed', { allow_clients: acl.cidrs.join(','), log_queries: queryLog.on });
  exportUpstreamHealth(() => proxy.upstreams.values(), metrics);
  const upstreams = new LiveUpstreams({ proxy, cache, log });
  stack.push('replaced upstreams', () => upstreams.close());
  const enforce = new Enforce({
    enforcer: deps.enforcer ?? (cfg.datapath === 'fake' ? new FakeDnsEnforcer() : new NftDnsEnforcer()),
    log,
    metrics,
    listening: () => listenAddresses(proxy),
  });
  enforce.start(cfg);

  // 7. Reload, control, metrics. Parts apply in this order (a later one may read what an
  // earlier one changed: enforce_dns redirects to the listen addresses now bound; the policy
  // names the upstreams swapped in just before).
  const live = new LiveConfig(cfg, [
    listenPart(proxy.listenerSet, log),
    logPart(log),
    accessPart({ acl, lanPrefixes: lan }),
    queryLogPart(queryLog),
    upstreams.part(),
    cachePart(cache),
    hostsPart(local),
    channelsPart({ registry, ipsec: ip, allChannels: (l) => channels.all(l), pushChannels: (l) => channels.push(l) }),
    policyPart({ registry, datapath: dp, policy, serverChannels: channels.server !== undefined, holds: proxy.holds }),
    enforce.part(),
    tls.part(),
  ]);
  // status reports the last reload (and what it could not apply) whichever way it came
  const reloads = new ReloadRecord(() => clock.nowMs());
  const reloadOnce = deps.reloadConfig
    ? makeReloader({ live, load: deps.reloadConfig, log })
    : () => Promise.reject(new DnssealError('daemon', 'reload_unavailable', 'reload: this daemon has no config source to re-read; nothing changed'));
  const reload = () => reloads.run(reloadOnce);
  await openControl(cfg.control, deps, stack, { live, dp, ip, registry, proxy, counters, icpt, reload, reloads, stop, channels, tls, queryLog, cache });
  if (cfg.metrics) {
    const ms = startMetricsServer(cfg.metrics, metrics, log);
    stack.push('metrics', () => ms.stop());
  }
  // The closures made above (undo steps, parts) share this async function's scope, and with it
  // `cfg`: let the start-up config go, or the first reload could never free its 200k rules.
  cfg = RELEASED;
  return { datapath: dp, ipsec: ip, registry, proxy, counters, tls, reload };
}

/** What `cfg` holds once start-up is through (nothing may read it then). */
const RELEASED = Object.freeze({}) as Config;

/** The proxy's bound UDP listen addresses as `ADDR:PORT` (TCP shares each one's port). */
function listenAddresses(proxy: Proxy): string[] {
  return proxy.listeners.filter((l) => l.transport === 'udp').map((l) => (l.hostname.includes(':') ? `[${l.hostname}]:${l.port}` : `${l.hostname}:${l.port}`));
}

/**
 * The data path backend. The guard must sit somewhere: with no `wan` configured, on the
 * default-route interfaces, and on each interface a default route moves to later.
 */
function openDatapath(cfg: Config, deps: DaemonDeps): Datapath {
  const { log, clock, metrics } = deps;
  return createDatapath(cfg.datapath, {
    log,
    clock,
    protects: protects(cfg),
    ebpf:
      deps.ebpf ??
      (() => createEbpfDatapath({ cfg: withGuardInterfaces(cfg, log), log, clock, metrics, pinRoot: cfg.pinRoot, defaultRoutes: followedDefaultRoutes(cfg) })),
  });
}

/** What this configuration would protect, in words (empty: nothing) — `auto` needs eBPF then. */
export function protects(cfg: Config): string[] {
  let rules = 0;
  for (const t of cfg.tables) forEachTarget(t.rules, (_i, channel) => void (channel && rules++));
  const out: string[] = [];
  if (rules > 0) out.push(`${rules} rule${rules === 1 ? '' : 's'} with a channel`);
  if (cfg.statics.length > 0) out.push(`${cfg.statics.length} static${cfg.statics.length === 1 ? '' : 's'}`);
  if (cfg.policyServer) out.push(`policy server ${cfg.policyServer}`);
  return out;
}

/**
 * Channels a policy server names (#5, `server:NAME`) join the channel table of the registry and
 * the data path as they are first seen; a server tunnel channel gets its strongSwan connection,
 * which the pipeline awaits (channelReady) before registering under it.
 */
function linkPolicyServer(cfg: Config, upstream: string, deps: DaemonDeps, channels: ChannelTable, registry: Registry, ip: IpsecChannels): PolicyServerLink {
  const { log, clock } = deps;
  channels.server = new ServerChannels(
    (spec) => {
      log.info('daemon: policy server named a new channel', { channel: spec.name, id: spec.id, kind: spec.kind });
      registry.setChannels(channels.all());
      try {
        channels.push();
      } catch (err) {
        // The channel table only carries state and IKE exemptions; entries still get their mark.
        log.error('daemon: could not add a server channel to the data path channel table', { channel: spec.name, err: errorMessage(err) });
      }
    },
    (spec) => ip.ensureChannel(spec),
  );
  return policyServerLink(
    { keyring: new StaticKeyring(cfg.tsigKeys), keyName: policyServerKey(cfg, upstream), clock, channels: channels.server },
    upstream,
    // Gateway and intercept nodes speak for their LAN clients: the server applies each one's table.
    { sendClientSubnet: cfg.mode !== 'host' },
  );
}

/** The TSIG key for the policy-server upstream: its own `tsig_key`, or the only key configured. */
function policyServerKey(cfg: Config, upstream: string): string {
  const key = cfg.upstreams.find((u) => u.name === upstream)?.tsigKey ?? (cfg.tsigKeys.length === 1 ? cfg.tsigKeys[0]!.name : undefined);
  if (!key) {
    throw new DnssealError('daemon', 'policy_server_key', `policy server "${upstream}": no TSIG key to sign with; give the upstream a tsig_key`);
  }
  return key;
}

interface ControlParts {
  live: LiveConfig;
  dp: Datapath;
  ip: IpsecChannels;
  registry: Registry;
  proxy: Proxy;
  counters: ProxyCounters;
  icpt: InterceptRuntime | undefined;
  reload: () => Promise<ReloadResult>;
  reloads: ReloadRecord;
  stop: (why: 'down') => void;
  channels: ChannelTable;
  tls: TlsRuntime;
  queryLog: QueryLog;
  cache: AnswerCache;
}

/** The fields of the `configuration reloaded` log line. */
export function reloadLogFields(via: string, r: ReloadResult): Record<string, string | number> {
  const { applied, restartNeeded, settleErrors, ...figures } = r;
  return { via, ...figures, applied: applied.join(','), restartNeeded: restartNeeded.join(','), ...(settleErrors ? { settleErrors: settleErrors.join('; ') } : {}) };
}

/** `log` over the control socket: `{what: 'queries', on: true|false}` switches the query log. */
function queryLogCommand(queryLog: QueryLog, args: Record<string, unknown>, log: DaemonDeps['log']): Promise<{ queries: boolean }> {
  if (args.what !== 'queries' || typeof args.on !== 'boolean') {
    return Promise.reject(new DnssealError('control', 'bad_args', 'log: expected {"what": "queries", "on": true|false}'));
  }
  if (queryLog.on !== args.on) log.info(`daemon: query log ${args.on ? 'on' : 'off'}`, { via: 'control' });
  queryLog.set(args.on);
  return Promise.resolve({ queries: queryLog.on });
}

/**
 * The control socket: list/flush from the registry, status, reload, down, log. Takes the
 * socket's path, not the config: the handlers made here live as long as the daemon.
 */
async function openControl(path: string, deps: DaemonDeps, stack: UndoStack, p: ControlParts): Promise<void> {
  const { log, clock } = deps;
  const startedAtMs = clock.nowMs();
  const startedMono = clock.monoMs();
  /** The running config file's modification time (none for the embedded default or flags only). */
  const modifiedMs = (source: string): number | undefined => {
    if (source.startsWith('<')) return undefined;
    try {
      return statSync(source).mtimeMs;
    } catch {
      return undefined;
    }
  };
  const control = await startControlServer(
    path,
    createControlHandlers({
      registry: p.registry,
      cache: p.cache,
      clock: deps.clock,
      ...(p.icpt ? { intercepts: () => p.icpt!.list() } : {}),
      // flush refuses a channel or table the running policy does not have
      policyNames: () => ({ channels: p.channels.all().map((c) => c.name), tables: p.live.config.tables.map((t) => ({ id: t.id, group: t.group })) }),
      // from the running config (after a reload: the reloaded one, channels renamed included)
      status: () =>
        statusReport({
          version: deps.version ?? 'unknown',
          pid: process.pid,
          nowMs: clock.nowMs(),
          startedAtMs,
          uptimeMs: clock.monoMs() - startedMono,
          config: p.live.config,
          modifiedMs: modifiedMs(p.live.config.source),
          reloads: p.reloads,
          listen: p.proxy.listeners.map((l) => `${l.transport}://${l.hostname.includes(':') ? `[${l.hostname}]` : l.hostname}:${l.port}`),
          registry: p.registry.stats(),
          datapath: { kind: p.dp.kind, health: datapathStatus(p.dp) },
          ipsec: { kind: p.ip.kind, vici: viciStatus(p.ip), channels: p.ip.status() },
          channels: p.channels.all(p.live.config.channels),
          channelSince: (id) => p.channels.since(id),
          counters: p.counters,
          upstreams: new Map([...p.proxy.upstreams].map(([name, set]) => [name, set.healthOf()])),
          cache: { settings: p.cache.settings, size: p.cache.size, bytes: p.cache.bytes, counters: p.cache.counters },
          tls: p.tls.status(),
        }),
      // Reply first, then stop: the reply must leave before the control socket closes.
      down: async () => {
        setImmediate(() => p.stop('down'));
        return { stopping: true, removeKernelState: Boolean(deps.kernelDown) };
      },
      reload: async () => {
        const r = await p.reload();
        log.info('daemon: configuration reloaded', reloadLogFields('control', r));
        return r;
      },
      log: async (args) => queryLogCommand(p.queryLog, args, log),
    }),
    log,
  );
  stack.push('control', () => control.close());
}
