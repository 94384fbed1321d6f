/**
 * What `dnsseal status` reports: one document with stable snake_case keys (the README's table
 * of status fields; a test keeps the two equal), assembled from plain figures by
 * `statusReport` so it can be tested without a daemon. The daemon gathers the figures in
 * start-up.ts `openControl`; the CLI prints them for a person (src/cli/status-format.ts).
 *
 * Also here: whether the daemon can protect right now, and the gauges that say the same to
 * Prometheus —
 * - the data path: `{up: true}`, or `{up: false, reason}` while `health()` reports it lost
 *   (pins removed, programs detached: protected names get SERVFAIL) — `dnsseal_datapath_up`;
 * - strongSwan: connected since, or waiting since with the last error (charon not started
 *   yet or restarting: DNS is served, protected traffic is dropped until the channels are
 *   loaded) — `dnsseal_ipsec_vici_up`, kept by the channel manager;
 * and the record of reloads (`restart needed for: …` stays until a restart or a reload that
 * no longer asks for one).
 *
 * Slots other parts fill later (null until then, documented as such): each upstream's
 * `health` and `latency_ms` (the upstream lists/DoT/DoH work), `cache` (the answer cache). `tls`
 * is the TLS relay's and acceptor's (tls-step.ts; null when neither runs).
 */
import type { Config } from '../config/types.ts';
import { registryFigures } from '../control/handlers.ts';
import { SETTINGS } from '../config/settings.ts';
import type { Datapath } from '../datapath/datapath.ts';
import type { ChannelState, IpsecChannels } from '../ipsec/channel-manager.ts';
import type { Metrics } from '../ops/metrics.ts';
import type { ChannelSpec } from '../policy/types.ts';
import { UPSTREAM_BUCKETS, type ProxyCounters } from '../proxy/proxy-counters.ts';
import type { RegistryStats } from '../registry/registry.ts';
import { errorMessage } from '../util/errors.ts';
import type { ReloadResult } from './types.ts';

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

/** The `vici` part of `status`: charon's reachability, times in ISO form. */
export function viciStatus(ip: Pick<IpsecChannels, 'link'>): ViciStatus {
  const link = ip.link();
  if (link.state === 'none') return { state: 'none', since: null, last_error: null };
  const since = new Date(link.sinceMs).toISOString();
  return link.state === 'connected' ? { state: 'connected', since, last_error: null } : { state: 'waiting', since, last_error: link.lastError };
}

// ---------------------------------------------------------------------------------------------
// The document

export interface ViciStatus {
  /** `connected`, `waiting` (charon not reachable yet: DNS is served, protected traffic dropped) or `none` (no IPsec back end). */
  state: 'connected' | 'waiting' | 'none';
  since: string | null;
  last_error: string | null;
}

export interface ChannelStatus {
  name: string;
  id: number;
  kind: ChannelSpec['kind'];
  protocol: string;
  /** IPsec tunnel: its SA is up; IPsec peer: at least one peer SA is up; tls: the relay listens. */
  state: 'up' | 'down';
  /** When a tunnel's SA last went up or down (null: not since the daemon started). */
  since: string | null;
  /** peer: how many peer SAs are up. */
  peers_up: number;
}

export interface UpstreamStatus {
  name: string;
  address: string;
  port: number;
  /** Slot: the upstream work reports `up`/`down` here; null until then. */
  health: string | null;
  /** Slot: recent answer latency, ms; null until then. */
  latency_ms: number | null;
}

export interface LatencyBucket {
  /** Upper bound, seconds (null: no bound, the slowest answers). */
  le: number | null;
  /** Answers slower than the previous bound and at most `le` (not cumulative). */
  count: number;
}

export interface StatusReport {
  version: string;
  pid: number;
  started_at: string;
  uptime_s: number;
  mode: Config['mode'];
  config: {
    source: string;
    /** When the running configuration was read: the start, or the last reload that applied. */
    loaded_at: string;
    /** The file's modification time; null for the embedded default or flags only, or when it cannot be read. */
    modified_at: string | null;
    /** The file changed after it was loaded (a reload would read the change); null when unknown. */
    changed_since_load: boolean | null;
  };
  listen: string[];
  rules: { tables: number; rules: number; clients: number; statics: number };
  entries: { total: number; live: number; retired: number; blocked: number; static: number; by_channel: Record<string, number> };
  map: { used: number; capacity: number | null; fill: number | null };
  datapath: { kind: string; up: boolean; reason: string | null };
  ipsec: { kind: string; vici: ViciStatus };
  channels: ChannelStatus[];
  upstreams: UpstreamStatus[];
  enforce_dns: string;
  reload: {
    /** When the last reload was asked for (control or SIGHUP); null: none since the start. */
    last_at: string | null;
    last_ok: boolean | null;
    last_error: string | null;
    /** Config keys that changed in the file but apply only on a restart (their running values stay). */
    restart_needed: string[];
  };
  /** Client queries by how they ended (README: what each means). */
  queries: ProxyCounters['queries'];
  /** SERVFAIL answers by reason. */
  servfail: ProxyCounters['servfail'];
  upstream_latency: { count: number; sum_s: number; buckets: LatencyBucket[] };
  counters: {
    upstream_timeouts: number;
    upstream_send_failed: number;
    upstream_tcp_retries: number;
    upstream_shared: number;
    upstream_ignored: ProxyCounters['upstreamIgnored'];
    client_send_failed: number;
    tcp_connections: number;
    tcp_closed: ProxyCounters['tcpClosed'];
    client_subnet: ProxyCounters['clientSubnet'];
    stray_records_removed: number;
  };
  /** Slot: the answer cache's figures; null until the cache reports them. */
  cache: Record<string, unknown> | null;
  /** The TLS relay and acceptor (tls-step.ts TlsStatus); null when neither runs. */
  tls: Record<string, unknown> | null;
}

/** The figures `statusReport` is made from (what the daemon holds). */
export interface StatusInput {
  version: string;
  pid: number;
  nowMs: number;
  startedAtMs: number;
  uptimeMs: number;
  config: Config;
  /** The config file's modification time, if it has one. */
  modifiedMs: number | undefined;
  reloads: ReloadRecord;
  listen: string[];
  registry: RegistryStats;
  datapath: { kind: string; health: DatapathStatus };
  ipsec: { kind: string; vici: ViciStatus; channels: ChannelState[] };
  /** The channel table: configured (as the running config has them) and policy-server channels. */
  channels: ChannelSpec[];
  /** A tunnel channel's last SA change, by id. */
  channelSince: (id: number) => number | undefined;
  counters: ProxyCounters;
  /** The TLS relay's and acceptor's figures (tls-step.ts), null when neither runs. */
  tls?: { relay: unknown } | null;
}

const iso = (ms: number) => new Date(ms).toISOString();

/** Config field → YAML key (`minHoldS` → `min_hold`); sections are named by their key already. */
const KEY_OF_FIELD = new Map<string, string>(SETTINGS.flatMap((s) => (s.kind === 'value' ? [[s.field, s.key] as [string, string]] : [])));

export function configKeyOf(field: string): string {
  return KEY_OF_FIELD.get(field) ?? field;
}

function channelStatus(spec: ChannelSpec, state: ChannelState | undefined, since: number | undefined, relayUp: boolean): ChannelStatus {
  const up = spec.protocol === 'tls' ? relayUp : (state?.up ?? false);
  return {
    name: spec.name,
    id: spec.id,
    kind: spec.kind,
    protocol: spec.protocol,
    state: up ? 'up' : 'down',
    since: since === undefined ? null : iso(since),
    peers_up: state?.peers ?? 0,
  };
}

export function statusReport(i: StatusInput): StatusReport {
  const cfg = i.config;
  const r = i.registry;
  const state = new Map(i.ipsec.channels.map((c) => [c.channel, c]));
  const c = i.counters;
  const h = c.upstreamSeconds;
  const counted = h.counts.reduce((a, b) => a + b, 0);
  const buckets: LatencyBucket[] = [...UPSTREAM_BUCKETS.map((le, k) => ({ le, count: h.counts[k] ?? 0 })), { le: null, count: h.count - counted }];
  return {
    version: i.version,
    pid: i.pid,
    started_at: iso(i.startedAtMs),
    uptime_s: Math.floor(i.uptimeMs / 1000),
    mode: cfg.mode,
    config: {
      source: cfg.source,
      loaded_at: iso(i.reloads.loadedAtMs),
      modified_at: i.modifiedMs === undefined ? null : iso(i.modifiedMs),
      changed_since_load: i.modifiedMs === undefined ? null : i.modifiedMs > i.reloads.loadedAtMs,
    },
    listen: i.listen,
    rules: {
      tables: cfg.tables.length,
      rules: cfg.tables.reduce((n, t) => n + t.rules.length, 0),
      clients: cfg.clients.length,
      statics: cfg.statics.length,
    },
    ...registryFigures(r),
    datapath: { kind: i.datapath.kind, up: i.datapath.health.up, reason: i.datapath.health.reason ?? null },
    ipsec: { kind: i.ipsec.kind, vici: i.ipsec.vici },
    channels: i.channels.map((ch) => channelStatus(ch, state.get(ch.name), ch.kind === 'tunnel' && ch.protocol === 'ipsec' ? i.channelSince(ch.id) : undefined, Boolean(i.tls?.relay))),
    upstreams: cfg.upstreams.map((u) => ({ name: u.name, address: u.address, port: u.port, health: null, latency_ms: null })),
    enforce_dns: cfg.enforceDns,
    reload: {
      last_at: i.reloads.lastAtMs === undefined ? null : iso(i.reloads.lastAtMs),
      last_ok: i.reloads.lastAtMs === undefined ? null : i.reloads.lastError === undefined,
      last_error: i.reloads.lastError ?? null,
      restart_needed: i.reloads.restartNeeded.map(configKeyOf),
    },
    queries: { ...c.queries },
    servfail: { ...c.servfail },
    upstream_latency: { count: h.count, sum_s: h.sum, buckets },
    counters: {
      upstream_timeouts: c.upstreamTimeouts,
      upstream_send_failed: c.upstreamSendFailed,
      upstream_tcp_retries: c.upstreamTcpRetries,
      upstream_shared: c.upstreamShared,
      upstream_ignored: { ...c.upstreamIgnored },
      client_send_failed: c.clientSendFailed,
      tcp_connections: c.tcpConnections,
      tcp_closed: { ...c.tcpClosed },
      client_subnet: { ...c.clientSubnet },
      stray_records_removed: c.strayRecordsRemoved,
    },
    cache: null,
    tls: (i.tls as Record<string, unknown> | null | undefined) ?? null,
  };
}

/**
 * Reloads as `status` reports them: when the running configuration was loaded, the last
 * attempt and its error, and the keys the last applied reload could not change live (they stay
 * listed until a restart, or until a reload finds the file agreeing with the running values).
 */
export class ReloadRecord {
  loadedAtMs: number;
  lastAtMs?: number;
  lastError?: string;
  restartNeeded: string[] = [];

  constructor(private readonly now: () => number) {
    this.loadedAtMs = now();
  }

  /** Runs one reload and records how it went; its result or error passes through. */
  run(reload: () => ReloadResult): ReloadResult {
    this.lastAtMs = this.now();
    try {
      const r = reload();
      this.loadedAtMs = this.lastAtMs;
      this.lastError = undefined;
      this.restartNeeded = [...r.restartNeeded];
      return r;
    } catch (err) {
      this.lastError = errorMessage(err);
      throw err;
    }
  }
}
