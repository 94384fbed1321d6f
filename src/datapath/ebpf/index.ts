/**
 * The `ebpf` Datapath backend: pinned maps under /sys/fs/bpf/dnsseal, programs attached per mode
 * (host: cgroup socket hooks and the cgroup egress guard, the tc guard on WAN egress;
 * gateway/intercept: tc ingress marker on LAN interfaces, the tc egress guard on every interface
 * but lo). Synchronous like the interface: map operations are
 * in-process bpf() calls; bpftool/tc/libbpf run only here, at start-up, and in the interface poll
 * (which, when `wan` was derived from the default routes, also puts the guard where they move).
 *
 * close() leaves everything pinned and attached (restart continuity); `teardown()` removes it.
 */
import { existsSync } from 'node:fs';
import type { Config } from '../../config/types.ts';
import type { Metrics } from '../../ops/metrics.ts';
import { isIP } from '../../util/ip.ts';
import type { Clock } from '../../util/clock.ts';
import { DnssealError, errorMessage } from '../../util/errors.ts';
import type { Logger } from '../../util/log.ts';
import type { ChannelRowInput, Datapath, DestEntry, DestKey, DestValue, TlsInterception } from '../datapath.ts';
import { CNT_GUARD_DROP, CNT_GUARD_PASS, CNT_HOST_SENT, CNT_MARKED, CNT_RETIRED, CNT_SOCK_MARKED, DROP_REASONS, PASS_REASONS } from '../layout.ts';
import { attachCgroup, InterfaceWatcher, type TcMode, type WatchedInterface } from './attach.ts';
import { Bpf } from './bpf-syscall.ts';
import { loadAndPin, lockPinRoot } from './loader.ts';
import { tagIkeSockets } from './ike-sockets.ts';
import { EbpfMaps, type ChannelRow } from './maps.ts';
import { EbpfTlsMaps } from './tls-maps.ts';
import { installTlsRoute } from './tls-route.ts';
import { libbpfUnavailableReason } from './lib/libbpf.ts';
import { embeddedObjectPath } from './object.ts';
import { DEFAULT_PIN_ROOT, PinPaths, defaultCgroupPath, preparePinDirs } from './pins.ts';

export interface EbpfDatapathDeps {
  cfg: Pick<Config, 'mode' | 'lan' | 'wan' | 'channels'>;
  log: Logger;
  clock: Clock;
  metrics: Metrics;
  /** Tests: another pin root (default /sys/fs/bpf/dnsseal). */
  pinRoot?: string;
  /** cgroup v2 directory for the host-mode hooks (default: the cgroup2 mount). */
  cgroupPath?: string;
  /** max_entries of a newly created destination map (default 1,048,576). */
  capacity?: number;
  /** Interface poll interval (default 3000 ms; 0 = no poll). */
  pollMs?: number;
  /** Tests: load and adopt maps but attach nothing. */
  attach?: boolean;
  /** Force the tc attach mechanism (default: tcx when the kernel has it, else clsact). */
  tcMode?: TcMode;
  /**
   * Set when `wan` was derived from the default routes, not configured: the interface poll calls
   * it and attaches the guard to every interface it returns that is not guarded yet (and never
   * detaches one). Unset with a configured `wan`: the operator chose.
   */
  defaultRoutes?: () => string[];
  /** Tests of the marker or the intercept NAT alone: attach no guard (default: the guards go on). */
  noGuard?: boolean;
}

export class EbpfDatapath implements Datapath {
  readonly kind = 'ebpf';

  get capacity(): number {
    return this.maps.capacity;
  }
  private closed = false;
  /** The gateway/peer a setChannels row last gave per channel id. */
  private readonly given = new Map<number, string>();

  constructor(
    private readonly bpf: Bpf,
    readonly maps: EbpfMaps,
    private readonly lockFd: number,
    private readonly watcher: InterfaceWatcher | undefined,
    private readonly gateways: Map<number, { gateway?: string; peer: boolean }>,
    private readonly onMapFull: () => void,
    /** Clock.monoMs() − CLOCK_MONOTONIC ms: converts bpf_ktime_get_ns() stamps to the Clock's base. */
    private readonly clockOffsetMs: number,
    private readonly log: Logger,
    readonly tls: EbpfTlsMaps,
    /** Gateway/intercept with programs attached: the tls relay's policy route, installed with the first tls channel. */
    private readonly tlsRouteWanted = false,
  ) {}
  private tlsRouted = false;

  private toMonoMs(ns: bigint): number {
    return Number(ns / 1_000_000n) + this.clockOffsetMs;
  }

  upsert(key: DestKey, value: DestValue, known = false): void {
    try {
      this.maps.upsertDest(key, this.toKernel(value), known);
    } catch (err) {
      if (err instanceof DnssealError && err.code === 'map_full') this.onMapFull();
      throw err;
    }
  }

  remove(key: DestKey): void {
    this.maps.removeDest(key);
  }

  list(): DestEntry[] {
    const rows = this.maps.listDests();
    for (const r of rows) {
      if (r.lastSeenMs !== undefined) r.lastSeenMs += this.clockOffsetMs;
      if (r.value.expiresMs !== undefined) r.value.expiresMs += this.clockOffsetMs;
    }
    return rows;
  }

  /**
   * The value with its expiry in CLOCK_MONOTONIC ms (what the map keeps: system-wide, so a restarted
   * daemon, whose Clock has another zero, reads the same instant back). An expiry at or before
   * CLOCK_MONOTONIC's zero is kept as 1 ms (0 means "none").
   */
  private toKernel(value: DestValue): DestValue {
    if (!value.expiresMs) return value;
    return { ...value, expiresMs: Math.max(1, value.expiresMs - this.clockOffsetMs) };
  }

  lastSeen(key: DestKey): number | undefined {
    const ns = this.maps.lastSeenNs(key);
    return ns ? this.toMonoMs(ns) : undefined;
  }

  setClientGroups(entries: { cidr: string; group: number }[]): void {
    this.maps.setClients(entries);
  }

  /**
   * A row that names its gateway/peer kind (a channel first seen at runtime, e.g. from a policy
   * server) updates what the guard's IKE exemption uses for that id; a row without them keeps
   * what was known (the configured channels, or an earlier row).
   */
  setChannels(channels: ChannelRowInput[]): void {
    for (const c of channels) {
      if (c.gateway === undefined && c.peer === undefined) continue;
      // Rows are pushed again on every SA up/down: only a change is taken (and warned about).
      const given = `${c.gateway ?? ''}|${c.peer ?? ''}`;
      if (this.given.get(c.id) === given) continue;
      this.given.set(c.id, given);
      const known = this.gateways.get(c.id);
      this.gateways.set(c.id, {
        gateway: c.gateway !== undefined ? gatewayLiteral(c.gateway, c.id, this.log) : known?.gateway,
        peer: c.peer ?? known?.peer ?? false,
      });
    }
    const rows: ChannelRow[] = channels.map((c) => ({ id: c.id, mark: c.mark, up: c.up, ...(this.gateways.get(c.id) ?? { peer: false }), ...(c.tls ? { tls: c.tls } : {}) }));
    if (this.tlsRouteWanted && !this.tlsRouted && rows.some((r) => r.tls)) {
      // Before the rows that start the steering. Without the route the steered packets are
      // routed on to the tls address, where the guard drops them (tls_bypass): closed, not clear.
      try {
        installTlsRoute();
        this.tlsRouted = true;
      } catch (err) {
        this.log.error('datapath: the tls relay\'s policy route could not be installed; LAN connections to tls channels are dropped', { err: (err as Error).message });
      }
    }
    this.maps.setChannels(rows);
  }

  health(): string | undefined {
    return undefined;
  }

  setIkeSockets(pid: number, fds: readonly number[]): number {
    const r = tagIkeSockets(this.bpf, this.maps.fds.ikeSocks, pid, fds);
    if (r.failed.length) this.log.warn('datapath: some of charon\'s sockets could not be tagged; their IKE to protected addresses is dropped', { pid, failed: r.failed.map((f) => `${f.fd}: ${f.err}`).join('; ') });
    this.log.info('datapath: charon\'s IKE sockets exempt from the guard', { pid, sockets: r.tagged });
    return r.tagged;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.watcher?.stop();
    this.maps.close();
    this.tls.close();
    this.bpf.close(this.lockFd);
  }
}

/** Why the eBPF backend cannot run here, or undefined when it can. */
export function ebpfUnavailableReason(): string | undefined {
  if (process.platform !== 'linux') return 'not Linux';
  let bpf: Bpf;
  try {
    bpf = new Bpf();
  } catch (err) {
    return errorMessage(err);
  }
  try {
    bpf.objGet('/sys/fs/bpf/dnsseal-probe-absent');
  } catch (err) {
    const code = (err as DnssealError).code;
    if (code === 'permission') return 'bpf() not permitted (run as root or with CAP_BPF + CAP_NET_ADMIN)';
    if (code !== 'not_found' && code !== 'kernel') return errorMessage(err);
  }
  if (!existsSync(embeddedObjectPath)) return `eBPF object ${embeddedObjectPath} missing (run make bpf)`;
  return libbpfUnavailableReason();
}

export function ebpfAvailable(): boolean {
  return ebpfUnavailableReason() === undefined;
}

export function createEbpfDatapath(deps: EbpfDatapathDeps): EbpfDatapath {
  const { cfg, log, metrics } = deps;
  const paths = new PinPaths(deps.pinRoot ?? DEFAULT_PIN_ROOT);
  const bpf = new Bpf();
  preparePinDirs(paths, log);
  const lockFd = lockPinRoot(bpf, paths);
  let maps: EbpfMaps | undefined;
  let tls: EbpfTlsMaps | undefined;
  try {
    const loaded = loadAndPin(bpf, { paths, log, destsCapacity: deps.capacity });
    maps = new EbpfMaps(bpf, paths);
    tls = new EbpfTlsMaps(bpf, paths, cfg.mode !== 'host');
    let watcher: InterfaceWatcher | undefined;
    if (deps.attach !== false) {
      if (cfg.mode === 'host') {
        const cg = deps.cgroupPath ?? defaultCgroupPath();
        if (!cg) throw new DnssealError('datapath', 'no_cgroup', 'no cgroup v2 mount found for the host-mode socket hooks');
        attachCgroup(bpf, paths, cg, log);
      }
      const ifaces: WatchedInterface[] = [
        ...(cfg.mode === 'host' ? [] : cfg.lan.map((name) => ({ name, hook: 'lan' as const }))),
        ...cfg.wan.map((name) => ({ name, hook: 'wan' as const })),
      ];
      // Gateway/intercept: the guard on every interface but lo and the LAN (a forwarded packet may
      // leave by any uplink); host mode: the WAN ones (cgroup egress guards every local socket already).
      const scope = deps.noGuard ? 'off' : cfg.mode === 'host' ? 'wan' : 'everywhere';
      if (scope === 'wan' && cfg.wan.length === 0 && !deps.defaultRoutes) log.warn('datapath: no WAN interface configured; the tc leak guard is not attached anywhere (the cgroup egress guard still is)');
      watcher = new InterfaceWatcher(bpf, paths, ifaces, log, deps.tcMode, deps.defaultRoutes, scope);
      const absent = watcher.sync();
      if (absent.length) log.warn('datapath: interfaces not present yet; attaching when they appear', { devs: absent.join(',') });
      const pollMs = deps.pollMs ?? 3000;
      // Always polled: the inbound guard goes on every interface but lo and the LAN ones.
      if (pollMs > 0) watcher.start(pollMs);
    }
    const gateways = new Map<number, { gateway?: string; peer: boolean }>();
    for (const ch of cfg.channels) gateways.set(ch.id, { gateway: ch.gateway ? gatewayLiteral(ch.gateway, ch.id, log, ch.name) : undefined, peer: ch.kind === 'peer' });
    const mapFull = metrics.counter('dnsseal_datapath_map_full_total', 'Inserts refused because the destination map was full');
    registerCollectors(metrics, maps, tls);
    log.info('datapath: eBPF backend ready', { pins: paths.root, adopted: loaded.adopted, capacity: loaded.capacity, mode: cfg.mode });
    // Bun's hrtime (behind realClock.monoMs) is not CLOCK_MONOTONIC itself, so measure the offset.
    const clockOffsetMs = deps.clock.monoMs() - Number(bpf.lib.monotonicNs() / 1_000_000n);
    // tls channels: the LAN program's marked packets are delivered locally, to the relay (the route comes with the first tls channel, see setChannels)
    return new EbpfDatapath(bpf, maps, lockFd, watcher, gateways, () => mapFull.inc(), clockOffsetMs, log, tls, cfg.mode !== 'host' && deps.attach !== false);
  } catch (err) {
    maps?.close();
    tls?.close();
    bpf.close(lockFd);
    throw err;
  }
}

/** The gateway as the guard can use it (an IP literal), or undefined with a warning. */
function gatewayLiteral(gateway: string, id: number, log: Logger, name?: string): string | undefined {
  if (isIP(gateway)) return gateway;
  log.warn('datapath: channel gateway is a host name; the guard exempts IKE only to IP literals', { channel: name ?? `#${id}` });
  return undefined;
}

function registerCollectors(metrics: Metrics, maps: EbpfMaps, tls: TlsInterception): void {
  const marked = metrics.gauge('dnsseal_datapath_marked_packets_total', 'Packets marked for a channel by the LAN marker (kernel counter)');
  const markedBytes = metrics.gauge('dnsseal_datapath_marked_bytes_total', 'Bytes marked for a channel by the LAN marker (kernel counter)');
  const sock = metrics.gauge('dnsseal_datapath_sockets_marked_total', 'Sockets given SO_MARK by the host hooks (kernel counter)');
  const host = metrics.gauge('dnsseal_datapath_host_packets_total', 'Host packets sent to protected addresses (kernel counter)');
  const drops = metrics.gauge('dnsseal_datapath_guard_drops_total', 'Packets the leak guard dropped, by reason (kernel counter)');
  const passes = metrics.gauge('dnsseal_datapath_guard_pass_total', 'Packets to protected addresses the guard let through, by reason (kernel counter)');
  const retired = metrics.gauge('dnsseal_datapath_retired_packets_total', 'Packets to retired entries (hold over, idle), steered like live ones (kernel counter)');
  const tlsConns = metrics.gauge('dnsseal_datapath_tls_connections_total', 'TCP connections to tls-channel addresses: redirected to the relay, refused (no relay), the relay\'s own, steered from the LAN, dropped (no relay socket) (kernel counter)');
  metrics.onCollect(() => {
    for (const [what, n] of Object.entries(tls.counters())) tlsConns.set(n, { what });
    for (const c of maps.counters()) {
      const n = Number(c.packets);
      if (c.kind === CNT_MARKED) {
        marked.set(n, { channel: String(c.id) });
        markedBytes.set(Number(c.bytes), { channel: String(c.id) });
      } else if (c.kind === CNT_SOCK_MARKED) sock.set(n, { channel: String(c.id) });
      else if (c.kind === CNT_HOST_SENT) host.set(n, { channel: String(c.id) });
      else if (c.kind === CNT_GUARD_DROP) drops.set(n, { reason: DROP_REASONS[c.id] ?? String(c.id) });
      else if (c.kind === CNT_GUARD_PASS) passes.set(n, { reason: PASS_REASONS[c.id] ?? String(c.id) });
      else if (c.kind === CNT_RETIRED) retired.set(n, { channel: String(c.id) });
    }
  });
}
