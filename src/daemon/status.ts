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
 * Upstreams are one row per server (name, its place in the list, health, latency, answers,
 * failures), from the running upstream sets; `cache` is the answer cache's settings and
 * figures; `tls` is the TLS relay's and acceptor's (tls-step.ts; null when neither runs).
 */
import type { CacheLimits } from '../cache/cache-limits.ts';
import type { CacheCounters } from '../cache/cache-metrics.ts';
import type { Config, ServerSpec } from '../config/types.ts';
import { registryFigures } from '../control/handlers.ts';
import { SETTINGS } from '../config/settings.ts';
import type { Datapath } from '../datapath/datapath.ts';
import type { ChannelState, IpsecChannels } from '../ipsec/channel-manager.ts';
import type { Metrics } from '../ops/metrics.ts';
import type { ChannelSpec } from '../policy/types.ts';
import { UPSTREAM_BUCKETS, type ProxyCounters } from '../proxy/proxy-counters.ts';
import type { ServerHealth } from '../proxy/upstream-health.ts';
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

/** One server of one upstream name. */
export interface UpstreamStatus {
  name: string;
  /** Its place in the name's list (queries try the servers in this order; the `server` metric label). */
  index: number;
  /** As configured, canonical: `192.0.2.1:53`, `tls://9.9.9.9:853#dns.quad9.net`, `https://…`. */
  server: string;
  transport: ServerSpec['transport'];
  address: string;
  port: number;
  /** `up`, or `down`: skipped by queries until a background probe gets an answer. */
  health: 'up' | 'down';
  /** When it last went up or down (the start for a server never down). */
  since: string;
  /** Answer latency, exponentially weighted, ms; null before the first measured answer. */
  latency_ms: number | null;
  answers: number;
  /** Failed exchanges by reason (timeout, refused, tls, …). */
  failures: Record<string, number>;
  last_error: string | null;
  errno: string | null;
}

/** The answer cache's settings and figures. */
export interface CacheStatus {
  /** False with `cache_size: 0`: every query goes upstream. */
  enabled: boolean;
  entries: number;
  bytes: number;
  max_entries: number;
  max_bytes: number;
  max_ttl_s: number;
  max_negative_ttl_s: number;
  stale_s: number;
  prefetch: boolean;
  hits: number;
  misses: number;
  /** hits / (hits + misses); null before the first lookup. */
  hit_ratio: number | null;
  stale_answers: number;
  inserts: number;
  prefetches: number;
  evictions: CacheCounters['evictions'];
  not_cached: CacheCounters['notCached'];
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
  /** The answer cache; null when the daemon has none. */
  cache: CacheStatus | null;
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
  /** The running upstream sets' health (`UpstreamSet.healthOf()`), by name. */
  upstreams: ReadonlyMap<string, ServerHealth[]>;
  cache: { settings: Readonly<CacheLimits>; size: number; bytes: number; counters: CacheCounters } | null;
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
    upstreams: upstreamRows(cfg, i.upstreams),
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
    cache: i.cache ? cacheStatus(i.cache) : null,
    tls: (i.tls as Record<string, unknown> | null | undefined) ?? null,
  };
}

/** A row per server of each running set, with its configured transport, address and port. */
function upstreamRows(cfg: Config, health: StatusInput['upstreams']): UpstreamStatus[] {
  const rows: UpstreamStatus[] = [];
  for (const u of cfg.upstreams) {
    (health.get(u.name) ?? []).forEach((h, index) => {
      const spec = u.servers[index];
      if (!spec) return;
      rows.push({
        name: u.name,
        index,
        server: h.server,
        transport: spec.transport,
        address: spec.address,
        port: spec.port,
        health: h.state,
        since: iso(h.sinceMs),
        latency_ms: h.latencyMs,
        answers: h.answers,
        failures: Object.fromEntries(Object.entries(h.failures).map(([k, v]) => [k, v ?? 0])),
        last_error: h.lastError,
        errno: h.errno,
      });
    });
  }
  return rows;
}

function cacheStatus(c: NonNullable<StatusInput['cache']>): CacheStatus {
  const k = c.counters;
  const lookups = k.hits + k.misses;
  return {
    enabled: c.settings.maxEntries > 0,
    entries: c.size,
    bytes: c.bytes,
    max_entries: c.settings.maxEntries,
    max_bytes: c.settings.maxBytes,
    max_ttl_s: c.settings.maxTtlS,
    max_negative_ttl_s: c.settings.maxNegTtlS,
    stale_s: c.settings.staleMaxS,
    prefetch: c.settings.prefetch,
    hits: k.hits,
    misses: k.misses,
    hit_ratio: lookups === 0 ? null : Math.round((k.hits / lookups) * 10000) / 10000,
    stale_answers: k.stale,
    inserts: k.inserts,
    prefetches: k.prefetches,
    evictions: { ...k.evictions },
    not_cached: { ...k.notCached },
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

  /** Runs one reload (asynchronous: it reads the config off the event loop) and records how it went; its result or error passes through. */
  async run(reload: () => Promise<ReloadResult>): Promise<ReloadResult> {
    const at = this.now();
    this.lastAtMs = at;
    try {
      const r = await reload();
      this.loadedAtMs = at;
      this.lastError = undefined;
      this.restartNeeded = [...r.restartNeeded];
      return r;
    } catch (err) {
      this.lastError = errorMessage(err);
      throw err;
    }
  }
}
