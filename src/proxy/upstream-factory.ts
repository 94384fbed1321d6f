/**
 * Builds the upstream sets from their server lists: plain servers get a UDP pool and a TCP
 * upstream for truncated answers, `tls://` ones a DoT upstream, `https://` ones a DoH
 * upstream. Logs (info) what each name got. UDP pools are opened here, before any listener
 * (BENCHMARKING.md, Bun notes).
 */
import type { Clock } from '../util/clock.ts';
import type { Logger } from '../util/log.ts';
import type { ProxyCounters } from './proxy-counters.ts';
import { formatServerSpec, type ServerSpec } from './server-spec.ts';
import { DohUpstream } from './upstream-doh.ts';
import { DotUpstream } from './upstream-dot.ts';
import { UpstreamSet, type SetServer } from './upstream-set.ts';
import { TcpUpstream } from './upstream-tcp.ts';
import { UdpUpstream } from './upstream-udp.ts';

export interface UpstreamSetSpec {
  name: string;
  servers: ServerSpec[];
}

export interface UpstreamDeps {
  timeoutMs: number;
  clock: Clock;
  log: Logger;
  counters: ProxyCounters;
  /** `upstream_source`: local address for UDP, TCP and DoT (DoH refuses it, see upstream-doh.ts). */
  source?: string;
  udpPoolSize?: number;
  batchSends?: boolean;
  /** PEM text of the CAs trusted for DoT/DoH (`upstream_tls_ca`); unset: the system store. */
  tlsCa?: string;
  /** DoH HTTP version (default 2). */
  dohHttp?: '2' | '1.1';
  /** Idle time before an encrypted connection is closed. */
  tlsIdleMs?: number;
  maxAttempts?: number;
  probeMinMs?: number;
  probeMaxMs?: number;
}

export async function openServer(upstream: string, spec: ServerSpec, deps: UpstreamDeps): Promise<SetServer> {
  const label = formatServerSpec(spec);
  const common = {
    name: upstream,
    address: spec.address,
    port: spec.port,
    timeoutMs: deps.timeoutMs,
    counters: deps.counters,
  };
  const source = deps.source !== undefined ? { source: deps.source } : {};
  const ca = deps.tlsCa !== undefined ? { ca: deps.tlsCa } : {};
  switch (spec.transport) {
    case 'dns': {
      const primary = await UdpUpstream.open({ ...common, ...source, clock: deps.clock, log: deps.log, poolSize: deps.udpPoolSize, batchSends: deps.batchSends });
      return { label, primary, stream: new TcpUpstream({ ...common, ...source }) };
    }
    case 'tls':
      return {
        label,
        primary: new DotUpstream({ ...common, ...source, ...ca, serverName: spec.serverName, clock: deps.clock, log: deps.log, ...(deps.tlsIdleMs !== undefined ? { idleMs: deps.tlsIdleMs } : {}) }),
      };
    case 'https':
      return {
        label,
        primary: new DohUpstream({
          ...common,
          ...source,
          ...ca,
          path: spec.path,
          serverName: spec.serverName,
          log: deps.log,
          ...(deps.dohHttp !== undefined ? { http: deps.dohHttp } : {}),
          ...(deps.tlsIdleMs !== undefined ? { idleMs: deps.tlsIdleMs } : {}),
        }),
      };
  }
}

export async function openUpstreamSet(spec: UpstreamSetSpec, deps: UpstreamDeps): Promise<UpstreamSet> {
  const servers: SetServer[] = [];
  try {
    for (const s of spec.servers) servers.push(await openServer(spec.name, s, deps));
  } catch (err) {
    for (const s of servers) {
      s.primary.close();
      s.stream?.close();
    }
    throw err;
  }
  const set = new UpstreamSet({
    name: spec.name,
    servers,
    clock: deps.clock,
    log: deps.log,
    ...(deps.maxAttempts !== undefined ? { maxAttempts: deps.maxAttempts } : {}),
    ...(deps.probeMinMs !== undefined ? { probeMinMs: deps.probeMinMs } : {}),
    ...(deps.probeMaxMs !== undefined ? { probeMaxMs: deps.probeMaxMs } : {}),
  });
  deps.log.info('upstream: servers', { upstream: spec.name, servers: servers.map((s) => s.label).join(' '), strategy: 'in order, failover' });
  return set;
}

/** Every name's set; on a failure the ones already open are closed. */
export async function openUpstreamSets(specs: UpstreamSetSpec[], deps: UpstreamDeps): Promise<Map<string, UpstreamSet>> {
  const sets = new Map<string, UpstreamSet>();
  try {
    for (const s of specs) sets.set(s.name, await openUpstreamSet(s, deps));
  } catch (err) {
    for (const set of sets.values()) set.close();
    throw err;
  }
  return sets;
}
