/**
 * `dnsseal policy-server`: assembles the server from a loaded config and serves it on the
 * proxy's UDP and TCP listeners (one of each per `listen` address), admitting the senders
 * `allow_clients` lists (the proxy's access list and default) and sending upstream queries from
 * `upstream_source`. `reload()` re-reads the config and swaps the state (access list
 * included); a bad config is logged and the running state kept. Old upstream sockets are
 * closed only after every query that could still use them has timed out.
 */
import type { AddrReader } from '../ipsec/lan-prefixes.ts';
import { Policy } from '../policy/policy.ts';
import { allowedClients, ClientAcl, lanPrefixesForAccess } from '../proxy/client-acl.ts';
import { Forwarder, pairsOf } from '../proxy/forwarder.ts';
import type { Listener } from '../proxy/handler.ts';
import { bindPair } from '../proxy/listener-set.ts';
import { newProxyCounters, type ProxyCounters } from '../proxy/proxy-counters.ts';
import { readTlsCa } from '../proxy/proxy.ts';
import { openUpstreamSets } from '../proxy/upstream-factory.ts';
import type { Metrics } from '../ops/metrics.ts';
import type { Clock } from '../util/clock.ts';
import { errorMessage } from '../util/errors.ts';
import type { Logger } from '../util/log.ts';
import { UndoStack } from '../util/undo-stack.ts';
import type { PolicyServerConfig } from './config.ts';
import { PolicyServer, type PolicyServerState } from './server.ts';

export interface PolicyServerRunDeps {
  clock: Clock;
  log: Logger;
  metrics?: Metrics;
  /** Re-reads the config for `reload()`. */
  load: () => PolicyServerConfig;
  /** Reads a `lan` interface's addresses for `allow_clients`' default (tests; default: `ip -j addr`). */
  readAddrs?: AddrReader;
}

export interface RunningPolicyServer {
  readonly server: PolicyServer;
  readonly listeners: Listener[];
  /** Resolves true when the new config is live, false when it was refused (old one kept). */
  reload(): Promise<boolean>;
  close(): Promise<void>;
}

async function openForwarder(cfg: PolicyServerConfig, counters: ProxyCounters, deps: PolicyServerRunDeps): Promise<Forwarder | null> {
  if (cfg.base.upstreams.length === 0) return null;
  const tlsCa = readTlsCa(cfg.base.upstreamTlsCa);
  const sets = await openUpstreamSets(cfg.base.upstreams, {
    timeoutMs: cfg.base.upstreamTimeoutMs,
    clock: deps.clock,
    log: deps.log,
    counters,
    ...(cfg.base.upstreamSource !== undefined ? { source: cfg.base.upstreamSource } : {}),
    ...(tlsCa !== undefined ? { tlsCa } : {}),
  });
  return new Forwarder(pairsOf(sets), counters);
}

/** `allow_clients` as `dnsseal run` reads it (unset: loopback and the `lan` prefixes, read now). */
function accessList(cfg: PolicyServerConfig, deps: PolicyServerRunDeps): ClientAcl {
  const lan = cfg.base.lan;
  return new ClientAcl(allowedClients(cfg.base.allowClients, () => lanPrefixesForAccess(lan, deps.readAddrs, deps.log)));
}

function buildState(cfg: PolicyServerConfig, forwarder: Forwarder | null, acl: ClientAcl): PolicyServerState {
  return {
    acl,
    policy: Policy.fromConfig(cfg.base),
    keyring: cfg.keyring,
    trustedKeys: new Set(cfg.serve.trustedKeys),
    zone: cfg.serve.zone,
    resolver: forwarder,
    requireTsig: cfg.serve.requireTsig,
    annotate: cfg.serve.annotate,
    fudgeS: cfg.serve.fudgeS,
  };
}

export async function startPolicyServer(cfg: PolicyServerConfig, deps: PolicyServerRunDeps): Promise<RunningPolicyServer> {
  const counters = newProxyCounters();
  // Taken down in reverse: the listeners first (no answer from a half-closed server), then
  // upstreams retired by a reload, then the running upstreams.
  const stack = new UndoStack(deps.log, 'policy-server');
  let forwarder = await openForwarder(cfg, counters, deps);
  stack.push('upstreams', () => forwarder?.close());
  let timeoutMs = cfg.base.upstreamTimeoutMs;
  const retiring = new Map<ReturnType<typeof setTimeout>, Forwarder>();
  stack.push('retired upstreams', () => {
    for (const [t, old] of retiring) {
      clearTimeout(t);
      old.close();
    }
    retiring.clear();
  });
  const acl = accessList(cfg, deps);
  let server: PolicyServer;
  const listeners: Listener[] = [];
  try {
    server = new PolicyServer(buildState(cfg, forwarder, acl), deps);
    for (const spec of cfg.base.listen) {
      // the proxy's own binding: UDP and TCP on one port, errors that name the address and why
      const { udp, tcp } = await bindPair(spec, { handle: server.handle, counters, log: deps.log });
      for (const l of [udp, tcp]) {
        listeners.push(l);
        stack.push(`listener ${l.transport}:${l.hostname}:${l.port}`, () => l.close());
      }
    }
  } catch (err) {
    await stack.unwind();
    throw err;
  }
  deps.log.info('policy-server: serving', {
    listen: listeners.map((l) => `${l.transport}:${l.hostname}:${l.port}`).join(','),
    allow_clients: acl.cidrs.join(','),
    zone: cfg.serve.zone?.origin ?? null,
    upstreams: cfg.base.upstreams.length,
  });

  return {
    server,
    listeners,
    reload: async () => {
      let next: PolicyServerConfig;
      let nextForwarder: Forwarder | null;
      try {
        next = deps.load();
        nextForwarder = await openForwarder(next, counters, deps);
      } catch (err) {
        deps.log.error('policy-server: reload refused, keeping the running config', { err: errorMessage(err) });
        return false;
      }
      let state: PolicyServerState;
      let nextAcl: ClientAcl;
      try {
        nextAcl = accessList(next, deps);
        state = buildState(next, nextForwarder, nextAcl);
      } catch (err) {
        nextForwarder?.close();
        deps.log.error('policy-server: reload refused, keeping the running config', { err: errorMessage(err) });
        return false;
      }
      server.swap(state);
      const old = forwarder;
      // Queries that started before the swap may still wait on the old upstreams.
      if (old) {
        const t = setTimeout(() => {
          retiring.delete(t);
          old.close();
        }, timeoutMs * 2 + 100);
        retiring.set(t, old);
      }
      forwarder = nextForwarder;
      timeoutMs = next.base.upstreamTimeoutMs;
      deps.log.info('policy-server: reloaded', { source: next.base.source, allow_clients: nextAcl.cidrs.join(',') });
      return true;
    },
    close: () => stack.unwind(),
  };
}
