/**
 * The TLS channel's part of the daemon (start-up step 4b, right after the registry, before DNS
 * is served): the relay for `protocol: tls` channels and the accepting side (`tls_accept:`).
 *
 * - The relay listens on `tls_relay` when a tls channel is configured, and the data path is told
 *   where (`TlsInterception.setRelay`, with our pid: the relay's own connects are not
 *   redirected). Each connection's original destination comes from the kernel
 *   (`kernelDestinations`: the map the host-mode sockops program writes, or the accepted
 *   socket's own address when the LAN program handed the connection to the relay), its channel
 *   and name from the registry (`RegistryRouter`: the client's group, the address's entry, its
 *   channel if that is a tls one). A data path without interception (`none`, `fake`): nothing
 *   is redirected, every connection is reset (`RecordedDestinations`, which nothing writes), and
 *   the start says so at warn.
 * - The acceptor listens on `tls_accept.listen` with the certificate and allow-lists the config
 *   loaded and compiled.
 * - IPsec never sees a tls channel: strongSwan gets the IPsec channels only (`ipsecOnly`), and
 *   the registry's per-peer hooks skip tls channels (`ipsecHooks`): a tls flow negotiates per
 *   connection, nothing waits before the DNS answer.
 * - A reload swaps the tls channels and their credentials (`part()`: renewed certificates are
 *   used by the next flow; the relay starts if the first tls channel appears). `tls_accept`
 *   changes need a restart.
 */
import type { Config } from '../config/types.ts';
import type { TlsInterception } from '../datapath/datapath.ts';
import { parseHostPort } from '../config/address.ts';
import type { Metrics } from '../ops/metrics.ts';
import type { ChannelHooks } from '../registry/types.ts';
import { AcceptPolicy } from '../tls/accept-policy.ts';
import { TlsAcceptor } from '../tls/acceptor.ts';
import { RecordedDestinations } from '../tls/recorded-destinations.ts';
import { RegistryRouter, TlsChannels, type EntryLookup } from '../tls/registry-router.ts';
import type { OriginalDestination } from '../tls/relay-listener.ts';
import { RelayListener } from '../tls/relay-listener.ts';
import { TlsRelay } from '../tls/relay.ts';
import { TlsMetrics } from '../tls/tls-metrics.ts';
import type { Logger } from '../util/log.ts';
import type { UndoStack } from '../util/undo-stack.ts';
import type { LivePart } from './live-config.ts';

export interface TlsStepDeps {
  log: Logger;
  metrics: Metrics;
  /** Registry.get: (group, address) → entry. */
  registry: EntryLookup;
  /** The client group of a client address, as the running policy classifies it. */
  groupOf: (clientAddr: string) => number;
  /** Where intercepted connections were going (default: the kernel's, see kernelDestinations). */
  originalDst?: OriginalDestination;
  /** The data path's tls interception (eBPF backend); absent: nothing is redirected to the relay. */
  interception?: TlsInterception;
}

/** The `tls` part of `status` (snake_case keys, like the rest of the document). */
export interface TlsStatus {
  /** Whether the data path sends applications' connections to the relay. */
  intercepting: boolean;
  relay: { listen: string | null; channels: Array<{ name: string; kind: string; port: number; identity: string; gateway?: string; local_identity: string[] }> } | null;
  accept: { listen: string[]; identity: string[]; clients: number } | null;
  /** Open relay flows, accepted flows, accepted connections still in handshake or preamble. */
  open: { relay: number; accept: number; pending: number };
  bytes: TlsMetrics['bytes'];
}

/** The config strongSwan gets: the IPsec channels only. */
export function ipsecOnly(cfg: Config): Config {
  return cfg.channels.some((c) => c.protocol === 'tls') ? { ...cfg, channels: cfg.channels.filter((c) => c.protocol !== 'tls') } : cfg;
}

/** The registry's per-peer hooks with tls channels left out (no per-peer state for TLS). */
export function ipsecHooks(hooks: ChannelHooks): ChannelHooks {
  return {
    peerAdded: (ch, addr, name) => (ch.protocol === 'tls' ? Promise.resolve() : hooks.peerAdded(ch, addr, name)),
    peerRemoved: (ch, addr) => {
      if (ch.protocol !== 'tls') hooks.peerRemoved(ch, addr);
    },
  };
}

/**
 * The original destination of a connection the kernel handed to the relay listening at port
 * `relayPort`: the map entry the host-mode sockops program wrote under the application's
 * address and port; failing that, the accepted socket's own address when it is not the relay's
 * port (the LAN program assigned the SYN to the relay's socket: the connection keeps the
 * address the client sent it to). Neither: null, the connection is reset.
 */
export function kernelDestinations(tls: Pick<TlsInterception, 'originalDst'>, relayPort: () => number): OriginalDestination {
  return {
    lookup: (c) => tls.originalDst(c.peer) ?? (c.local.port !== relayPort() ? c.local : null),
  };
}

function listenOf(text: string): { host: string; port: number } {
  // The loader checked the text; port 0 (tests) picks a free port.
  const m = /^\[?(.*?)\]?:(\d+)$/.exec(text);
  if (m && m[2] === '0') return { host: m[1]!, port: 0 };
  const hp = parseHostPort(text, null);
  return { host: hp.address, port: hp.port };
}

export class TlsRuntime {
  private tmOnce: TlsMetrics | undefined;
  private channels: TlsChannels;
  private relay: RelayListener | null = null;
  private acceptor: TlsAcceptor | null = null;
  readonly originalDst: OriginalDestination;

  /** The two settings it reads after start (not the config: a reload must be able to free that). */
  private readonly cfg: Pick<Config, 'tlsRelay' | 'tlsAccept'>;

  private constructor(
    cfg: Config,
    private readonly deps: TlsStepDeps,
  ) {
    this.cfg = { tlsRelay: cfg.tlsRelay, tlsAccept: cfg.tlsAccept };
    this.channels = TlsChannels.build(cfg.channels, cfg.tlsCredentials);
    this.originalDst = deps.originalDst ?? (deps.interception ? kernelDestinations(deps.interception, () => this.relay?.port ?? 0) : new RecordedDestinations());
  }

  /** Starts what the config asks for; each started part is undone by `stack`. */
  static start(cfg: Config, deps: TlsStepDeps, stack: UndoStack): TlsRuntime {
    const rt = new TlsRuntime(cfg, deps);
    stack.push('tls', () => rt.stop());
    if (rt.channels.size > 0) rt.startRelay();
    if (cfg.tlsAccept) rt.startAcceptor(cfg.tlsAccept);
    return rt;
  }

  private get tm(): TlsMetrics {
    this.tmOnce ??= new TlsMetrics(this.deps.metrics);
    return this.tmOnce;
  }

  private startRelay(): void {
    const { log } = this.deps;
    const relay = new RelayListener({
      listen: listenOf(this.cfg.tlsRelay),
      relay: new TlsRelay({ log, metrics: this.tm }),
      originalDst: this.originalDst,
      router: new RegistryRouter(this.deps.registry, this.deps.groupOf, () => this.channels),
      log,
      metrics: this.tm,
    });
    relay.start();
    this.relay = relay;
    const icpt = this.deps.interception;
    if (icpt) {
      icpt.setRelay({ listen: { addr: listenOf(this.cfg.tlsRelay).host, port: relay.port }, pid: process.pid });
      log.info('tls channels intercepted: TCP to their addresses goes to the relay', { channels: [...this.channels.byName.keys()].join(','), relay: relay.address ?? undefined });
      return;
    }
    log.warn('tls channels are not intercepted: this data path sends no application connection to the relay (datapath ebpf does); the relay resets every connection', {
      channels: [...this.channels.byName.keys()].join(','),
      relay: relay.address ?? undefined,
    });
  }

  private startAcceptor(spec: NonNullable<Config['tlsAccept']>): void {
    const acceptor = new TlsAcceptor({
      listen: spec.listen.map(listenOf),
      credentials: spec.credentials,
      policy: AcceptPolicy.compile(spec.clients),
      limits: spec.limits,
      log: this.deps.log,
      metrics: this.tm,
    });
    acceptor.start();
    this.acceptor = acceptor;
  }

  /** Bound addresses (tests read the ports from here). */
  info(): { relay: string | null; accept: string[] } {
    return { relay: this.relay?.address ?? null, accept: this.acceptor?.addresses ?? [] };
  }

  status(): TlsStatus | null {
    if (!this.relay && !this.acceptor) return null;
    const tm = this.tm;
    return {
      intercepting: Boolean(this.relay && this.deps.interception),
      relay: this.relay && {
        listen: this.relay.address,
        channels: [...this.channels.byName.values()].map((c) => ({
          name: c.name,
          kind: c.kind,
          port: c.port,
          identity: c.identity,
          ...(c.gateway !== undefined ? { gateway: c.gateway } : {}),
          local_identity: c.credentials.names,
        })),
      },
      accept: this.acceptor && { listen: this.acceptor.addresses, identity: this.cfg.tlsAccept!.credentials.names, clients: this.cfg.tlsAccept!.clients.length },
      open: { ...tm.active },
      bytes: { relay: { ...tm.bytes.relay }, accept: { ...tm.bytes.accept } },
    };
  }

  /** Reload: the tls channels and their credentials (new flows use the new ones). */
  part(): LivePart<{ before: TlsChannels; after: TlsChannels }> {
    let started = false;
    return {
      name: 'tls',
      owns: ['tlsCredentials'],
      reads: ['channels'],
      prepare: (_running, next) => ({ before: this.channels, after: TlsChannels.build(next.channels, next.tlsCredentials) }),
      apply: (p) => {
        if (p.after.size > 0 && !this.relay) {
          this.channels = p.after;
          try {
            this.startRelay();
          } catch (err) {
            this.channels = p.before;
            throw err;
          }
          started = true;
        }
        this.channels = p.after;
      },
      rollback: (p) => {
        this.channels = p.before;
        if (started) {
          this.deps.interception?.setRelay(null);
          this.relay?.stop(true);
          this.relay = null;
          started = false;
        }
      },
    };
  }

  /** Stops listening and resets every open flow (the application sees a reset, never a clean end). */
  stop(): void {
    if (this.relay) this.deps.interception?.setRelay(null); // connects to tls addresses are refused, not sent to a dead port
    this.relay?.stop(true);
    this.acceptor?.stop(true);
    this.relay = null;
    this.acceptor = null;
  }
}
