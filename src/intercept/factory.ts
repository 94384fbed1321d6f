/**
 * Builds the intercept side for `--mode intercept` (one call from the daemon, after the datapath
 * and before the proxy takes queries): the store (pinned eBPF maps when the datapath is `ebpf`,
 * memory otherwise — logged), the NAT loaded and attached to the LAN interfaces (re-attached when
 * an interface appears), the pool rebuilt from the store, the pipeline's Interceptor, metrics.
 * With the eBPF datapath it also installs unreachable routes for the pool prefixes (routes.ts).
 * close() leaves maps, programs, links and routes in place (restart continuity); `dnsseal down`
 * removes them (teardown, detachInterceptClsact for the clsact filters, removePoolRoutes).
 */
import type { Config } from '../config/types.ts';
import { Bpf } from '../datapath/ebpf/bpf-syscall.ts';
import { tcKernel } from '../datapath/ebpf/lib/tc-attach.ts';
import type { TcWatcher } from '../datapath/ebpf/lib/tc-watcher.ts';
import { DEFAULT_PIN_ROOT, PinPaths } from '../datapath/ebpf/pins.ts';
import { ICPT_CNT_DROP, ICPT_CNT_IN, ICPT_CNT_OUT, ICPT_DROP_REASONS } from '../datapath/layout.ts';
import type { Metrics } from '../ops/metrics.ts';
import type { Clock } from '../util/clock.ts';
import { DnssealError } from '../util/errors.ts';
import type { Logger } from '../util/log.ts';
import { interceptWatcher, type IcptTcMode } from './attach.ts';
import { loadIntercept } from './ebpf-loader.ts';
import { EbpfInterceptStore, clockOffset } from './ebpf-store.ts';
import { Interceptor } from './interceptor.ts';
import { InterceptPool, type InterceptRow } from './pool.ts';
import { installPoolRoutes } from './routes.ts';
import { MemoryInterceptStore, type InterceptStore } from './store.ts';

export interface InterceptDeps {
  cfg: Pick<Config, 'mode' | 'lan' | 'interceptPools' | 'minHoldS' | 'idleS'>;
  /** `Datapath.kind` of the running datapath: the NAT needs the `ebpf` one (its maps). */
  datapathKind: string;
  log: Logger;
  clock: Clock;
  metrics: Metrics;
  pinRoot?: string;
  /** The intercept object (default build/intercept.bpf.o; the daemon passes the embedded path). */
  objectPath?: string;
  ttlCapS?: number;
  /** LAN interface poll, ms (default 3000; 0 = none). */
  pollMs?: number;
  /** Tests: load but attach nothing (and install no routes). */
  attach?: boolean;
  /** Unreachable routes for the pool prefixes on this node (default true; see routes.ts). */
  poolRoutes?: boolean;
  /** Interval of the background pool gc, ms (default 5000; 0 = only when called). */
  gcIntervalMs?: number;
  tcMode?: IcptTcMode;
}

export interface InterceptRuntime {
  readonly kind: 'ebpf' | 'memory';
  readonly pool: InterceptPool;
  readonly interceptor: Interceptor;
  /** Frees expired, idle mappings (also run every gcIntervalMs in the background). */
  gc(): number;
  /** `dnsseal list`: intercept ↔ real ↔ names ↔ group. */
  list(): InterceptRow[];
  close(): void;
}

/** undefined unless mode is `intercept`. */
export function createIntercept(deps: InterceptDeps): InterceptRuntime | undefined {
  const { cfg, log } = deps;
  if (cfg.mode !== 'intercept') return undefined;
  if (cfg.interceptPools.length === 0) {
    throw new DnssealError('intercept', 'no_pool', 'mode intercept needs at least one address pool (--intercept-pool 100.64.0.0/16, config intercept_pools)');
  }
  let store: InterceptStore;
  let attacher: TcWatcher | undefined;
  let ebpf: EbpfInterceptStore | undefined;
  if (deps.datapathKind === 'ebpf') {
    const bpf = new Bpf();
    const paths = new PinPaths(deps.pinRoot ?? DEFAULT_PIN_ROOT);
    loadIntercept(bpf, { paths, log, objectPath: deps.objectPath });
    ebpf = new EbpfInterceptStore(bpf, paths, clockOffset(bpf, deps.clock));
    store = ebpf;
    if (deps.attach !== false) {
      attacher = interceptWatcher(tcKernel(bpf), paths, cfg.lan, log, deps.tcMode);
      const absent = attacher.sync();
      if (absent.length) log.warn('intercept: LAN interfaces not present yet; attaching the NAT when they appear', { devs: absent.join(',') });
      if ((deps.pollMs ?? 3000) > 0) attacher.start(deps.pollMs ?? 3000);
      if (deps.poolRoutes !== false) installPoolRoutes(cfg.interceptPools, log);
    }
    log.info('intercept: using store ebpf (pinned NAT maps)', { pools: cfg.interceptPools.join(',') });
  } else {
    store = new MemoryInterceptStore();
    log.warn('intercept: using store memory: no kernel NAT with this datapath, intercept addresses lead nowhere', { datapath: deps.datapathKind });
  }
  const pool = InterceptPool.open({ pools: cfg.interceptPools, store, clock: deps.clock, minHoldMs: cfg.minHoldS * 1000, idleMs: cfg.idleS * 1000, log });
  const exhausted = deps.metrics.counter('dnsseal_intercept_pool_exhausted_total', 'Answers refused (SERVFAIL) because the intercept pool had no free address');
  const interceptor = new Interceptor({ pool, ttlCapS: deps.ttlCapS, log, onExhausted: () => exhausted.inc() });
  registerMetrics(deps.metrics, pool, ebpf);
  const gcMs = deps.gcIntervalMs ?? 5000;
  const gcTimer = gcMs > 0 ? setInterval(() => {
    try {
      pool.gc();
    } catch (err) {
      log.error('intercept: pool gc failed', { err: (err as Error).message });
    }
  }, gcMs) : undefined;
  (gcTimer as { unref?: () => void } | undefined)?.unref?.();
  let closed = false;
  return {
    kind: ebpf ? 'ebpf' : 'memory',
    pool,
    interceptor,
    gc: () => pool.gc(),
    list: () => pool.list(),
    close: () => {
      if (closed) return;
      closed = true;
      if (gcTimer) clearInterval(gcTimer);
      attacher?.stop();
      store.close();
    },
  };
}

function registerMetrics(metrics: Metrics, pool: InterceptPool, store: EbpfInterceptStore | undefined): void {
  const addrs = metrics.gauge('dnsseal_intercept_pool_addresses', 'Intercept pool addresses by family and state (used, size)');
  const translated = metrics.gauge('dnsseal_intercept_translated_packets_total', 'Packets to intercept addresses translated and marked, by channel (kernel counter)');
  const replies = metrics.gauge('dnsseal_intercept_replies_packets_total', 'Packets to clients set back to the intercept address, by kind (kernel counter)');
  const drops = metrics.gauge('dnsseal_intercept_drops_total', 'Packets the NAT dropped, by reason (kernel counter)');
  metrics.onCollect(() => {
    const used = { v4: 0, v6: 0 };
    for (const r of pool.list()) used[r.intercept.includes(':') ? 'v6' : 'v4']++;
    const size = pool.stats().size;
    for (const f of ['v4', 'v6'] as const) {
      addrs.set(used[f], { family: f, state: 'used' });
      addrs.set(Number(size[f]), { family: f, state: 'size' });
    }
    if (!store) return;
    for (const c of store.counters()) {
      if (c.kind === ICPT_CNT_IN) translated.set(Number(c.packets), { channel: String(c.id) });
      else if (c.kind === ICPT_CNT_OUT) replies.set(Number(c.packets), { kind: c.id === 1 ? 'icmp_error' : 'reply' });
      else if (c.kind === ICPT_CNT_DROP) drops.set(Number(c.packets), { reason: ICPT_DROP_REASONS[c.id] ?? String(c.id) });
    }
  });
}
