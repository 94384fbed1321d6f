/**
 * Assembles the proxy: the upstream sets (each name's servers, plain, DoT or DoH, with
 * failover: upstream-set.ts, built by upstream-factory.ts), the forwarder over their pair
 * views, the cache in front of it, the pipeline and one UDP and one TCP listener per listen
 * address (listener-set.ts, which a reload changes live). The daemon and the integration tests
 * build it the same way. Upstream sockets are
 * opened before the listening ones (BENCHMARKING.md, Bun notes).
 *
 * A reload replaces the upstream sets (`openUpstreams`, then `replaceUpstreams`: one
 * assignment each in the forwarder and the pipeline); queries already sent finish on the old
 * sets, which the caller closes once they are done.
 */
import { readTextFile } from '../util/text-file.ts';
import type { AnswerCache } from '../cache/answer-cache.ts';
import { CachingForwarder } from '../cache/caching-forwarder.ts';
import type { UpstreamSpec } from '../config/types.ts';
import type { Metrics } from '../ops/metrics.ts';
import { CnameHolds, DEFAULT_HOLD_FLOOR_S, exportCnameHolds } from '../policy/cname-holds.ts';
import type { RegistryApi } from '../registry/types.ts';
import type { Clock } from '../util/clock.ts';
import { DnssealError, errorMessage } from '../util/errors.ts';
import type { Logger } from '../util/log.ts';
import { Forwarder, pairsOf } from './forwarder.ts';
import type { Listener } from './handler.ts';
import { ListenerSet } from './listener-set.ts';
import { Pipeline, type InterceptApi, type PipelineDeps, type PolicyApi, type PolicyServerLink } from './pipeline.ts';
import type { ProxyCounters } from './proxy-counters.ts';
import { TrustedForwarders } from './trusted-forwarders.ts';
import { openUpstreamSets, type UpstreamDeps } from './upstream-factory.ts';
import type { UpstreamSet } from './upstream-set.ts';

/** What the upstream sets are opened from: the settings a reload may change. */
export interface UpstreamOptions {
  upstreams: UpstreamSpec[];
  /** Local address upstream sockets bind to (`upstream_source`); unset: the kernel picks. */
  upstreamSource?: string;
  upstreamTimeoutMs: number;
  /** PEM text of the CAs DoT and DoH servers must chain to (`upstream_tls_ca`); unset: the system store. */
  upstreamTlsCa?: string;
}

/** Tuning of the upstream sets and transports (tests; defaults otherwise). */
export type UpstreamTuning = Pick<UpstreamDeps, 'maxAttempts' | 'probeMinMs' | 'probeMaxMs' | 'tlsIdleMs' | 'dohHttp'>;

export interface ProxyOptions extends UpstreamOptions {
  /** `ADDR:PORT` / `[ADDR]:PORT`; port 0 picks a free one (see `listeners`). */
  listen: string[];
  upstreamTuning?: UpstreamTuning;
  canary: 'nxdomain' | 'pass';
  policy: PolicyApi;
  registry: RegistryApi;
  counters: ProxyCounters;
  clock: Clock;
  log: Logger;
  /** UDP upstream pool size (default 8). */
  upstreamPoolSize?: number;
  tcpIdleMs?: number;
  /** Batch datagram sends per event-loop turn (default true; see send-batch.ts). */
  batchSends?: boolean;
  /** A policy-server upstream (#5): see PolicyServerLink. */
  policyServer?: PolicyServerLink;
  /** Intercept mode (#6): rewrites protected answers to pool addresses; see InterceptApi. */
  interceptor?: InterceptApi;
  /**
   * CNAME holds (issue 11 item 9): `minHoldS` floors a hold (the registry's `min_hold`,
   * default 60), `maxEntries` caps the table (default 65536). Always on.
   */
  cnameHold?: { minHoldS?: number; maxEntries?: number };
  /** Where the proxy's own gauges go (the CNAME hold table); the daemon passes its registry. */
  metrics?: Metrics;
  /**
   * Forwarders (CIDRs) whose EDNS Client Subnet names the client (issue 11 item 8, dnsmasq
   * `--add-subnet=32,128`); unset or empty: every query is classified by its sender.
   */
  trustedForwarders?: string[];
  /**
   * The answer cache (src/cache): in front of the forwarder, so every hit goes through
   * decide → register → respond like an upstream answer. Absent: every query goes upstream; given,
   * it can be turned on and off live (`setLimits`).
   */
  cache?: AnswerCache;
  /** `allow_clients` (client-acl.ts); absent: every sender may ask. */
  acl?: PipelineDeps['acl'];
  /** The query log (query-log.ts); absent: never. */
  queryLog?: PipelineDeps['queryLog'];
  /** Local records (local-records.ts, `hosts:`); absent: none. */
  local?: PipelineDeps['local'];
}

export interface Proxy {
  /** The bound listeners now (a reload may change them: see `listenerSet`). */
  readonly listeners: Listener[];
  /** The listen addresses, for a reload's `listen` part. */
  readonly listenerSet: ListenerSet;
  readonly pipeline: Pipeline;
  /** The CNAME holds the pipeline keeps (for `explain`, and a reload's reconcile/retain). */
  readonly holds: CnameHolds;
  /** The upstream sets queries go to now, by name (health for `status` and metrics). */
  readonly upstreams: ReadonlyMap<string, UpstreamSet>;
  /** Opens sets for `o` with the proxy's counters, clock and log; nothing uses them until `replaceUpstreams`. */
  openUpstreams(o: UpstreamOptions): Promise<Map<string, UpstreamSet>>;
  /**
   * From the next query on, `sets` answer (they must include `default`); returns the sets they
   * replace, still open: queries already sent finish on them, the caller closes them after.
   */
  replaceUpstreams(sets: Map<string, UpstreamSet>): Map<string, UpstreamSet>;
  close(): Promise<void>;
}

/** The PEM text of `upstream_tls_ca` (unset: undefined, the system store); throws naming the file. */
export function readTlsCa(path: string | undefined): string | undefined {
  if (path === undefined) return undefined;
  let pem: string;
  try {
    pem = readTextFile(path);
  } catch (err) {
    throw new DnssealError('proxy', 'upstream_tls_ca', `upstream_tls_ca ${path}: cannot read it: ${errorMessage(err)}`, { cause: err });
  }
  if (!pem.includes('-----BEGIN CERTIFICATE-----')) {
    throw new DnssealError('proxy', 'upstream_tls_ca', `upstream_tls_ca ${path}: no PEM certificate in it (-----BEGIN CERTIFICATE-----)`);
  }
  return pem;
}

export async function startProxy(opts: ProxyOptions): Promise<Proxy> {
  const forwarders = opts.trustedForwarders?.length ? new TrustedForwarders(opts.trustedForwarders, opts.counters.clientSubnet) : undefined;
  const openUpstreams = (o: UpstreamOptions) =>
    openUpstreamSets(o.upstreams, {
      timeoutMs: o.upstreamTimeoutMs,
      clock: opts.clock,
      log: opts.log,
      counters: opts.counters,
      ...(o.upstreamSource !== undefined ? { source: o.upstreamSource } : {}),
      ...(o.upstreamTlsCa !== undefined ? { tlsCa: o.upstreamTlsCa } : {}),
      ...(opts.upstreamPoolSize !== undefined ? { udpPoolSize: opts.upstreamPoolSize } : {}),
      ...(opts.batchSends !== undefined ? { batchSends: opts.batchSends } : {}),
      ...opts.upstreamTuning,
    });
  let sets = await openUpstreams(opts);
  const forwarder = new Forwarder(pairsOf(sets), opts.counters);
  const holds = new CnameHolds({
    clock: opts.clock,
    policy: opts.policy, // the live policy: a hold follows a reload
    minHoldS: opts.cnameHold?.minHoldS ?? DEFAULT_HOLD_FLOOR_S,
    ...(opts.cnameHold?.maxEntries !== undefined ? { maxEntries: opts.cnameHold.maxEntries } : {}),
  });
  if (opts.metrics) exportCnameHolds(holds, opts.metrics);
  const pipeline = new Pipeline({
    policy: opts.policy,
    registry: opts.registry,
    forwarder: opts.cache ? new CachingForwarder(forwarder, opts.cache) : forwarder,
    upstreamNames: forwarder.names(),
    counters: opts.counters,
    log: opts.log,
    canary: opts.canary,
    ...(opts.policyServer ? { policyServer: opts.policyServer } : {}),
    ...(opts.interceptor ? { interceptor: opts.interceptor } : {}),
    holds,
    ...(forwarders ? { forwarders } : {}),
    ...(opts.acl ? { acl: opts.acl } : {}),
    ...(opts.queryLog ? { queryLog: opts.queryLog } : {}),
    ...(opts.local ? { local: opts.local } : {}),
  });
  let listenerSet: ListenerSet;
  try {
    listenerSet = await ListenerSet.open(opts.listen, {
      handle: pipeline.handle,
      counters: opts.counters,
      log: opts.log,
      ...(opts.batchSends !== undefined ? { batchSends: opts.batchSends } : {}),
      ...(opts.tcpIdleMs !== undefined ? { tcpIdleMs: opts.tcpIdleMs } : {}),
    });
  } catch (err) {
    forwarder.close();
    throw err;
  }
  return {
    get listeners() {
      return listenerSet.listeners;
    },
    listenerSet,
    pipeline,
    holds,
    get upstreams() {
      return sets;
    },
    openUpstreams,
    replaceUpstreams: (next) => {
      const old = sets;
      forwarder.setUpstreams(pairsOf(next));
      pipeline.setUpstreamNames([...next.keys()]);
      sets = next;
      return old;
    },
    close: async () => {
      await listenerSet.close();
      forwarder.close();
    },
  };
}
