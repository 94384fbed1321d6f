/**
 * What the daemon (`dnsseal run`) takes and gives: its dependencies, what `onReady` reports,
 * what `reload` answers, its stop reasons and exit codes.
 */
import type { Config } from '../config/types.ts';
import type { Datapath } from '../datapath/datapath.ts';
import type { DnsEnforcer } from '../datapath/dns-enforce.ts';
import type { IpsecChannels } from '../ipsec/channel-manager.ts';
import type { AddrReader } from '../ipsec/lan-prefixes.ts';
import type { Metrics } from '../ops/metrics.ts';
import type { ProxyCounters } from '../proxy/proxy-counters.ts';
import type { Registry } from '../registry/registry.ts';
import type { OriginalDestination } from '../tls/relay-listener.ts';
import type { Clock } from '../util/clock.ts';
import type { Logger } from '../util/log.ts';

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
  /** Replaces the enforce_dns backend (default: nftables; the fake with `datapath: fake`). */
  enforcer?: DnsEnforcer;
  /**
   * Removes every kernel object dnsseal made (src/daemon/down.ts); run after the daemon stopped
   * because of a `down` request. Absent in tests with fake back ends.
   */
  kernelDown?: (log: Logger) => Promise<string[]>;
  /**
   * Re-reads the configuration the daemon was started from (the CLI: `loadConfig` with the
   * original flags, in a worker: config-worker.ts); throws or rejects when it is invalid.
   * Absent: `reload` and SIGHUP are refused.
   */
  reloadConfig?: () => Config | Promise<Config>;
  /**
   * Reads a LAN interface's addresses (`ip -j addr show dev IFACE`) for `allow_clients`' default;
   * tests pass their own. Default: the real `ip`.
   */
  readAddrs?: AddrReader;
  /**
   * Where connections to the TLS relay were going (tests record their own). Default: a table
   * nothing writes until the kernel interception exists, so the relay resets every connection.
   */
  tlsOriginalDst?: OriginalDestination;
  /** The version `status` reports (the CLI passes package.json's). */
  version?: string;
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
  /** Tunnel channels loaded into strongSwan, channels replaced (changed settings), tunnels unloaded. */
  channelsLoaded: number;
  channelsReplaced: number;
  channelsUnloaded: number;
  /** Listen addresses bound, and removed (they close once their last answers are out). */
  listenAdded: number;
  listenRemoved: number;
  /** Settings that changed and now run (config keys, e.g. `listen`, `log_level`, `tables`). */
  applied: string[];
  /** Settings that differ in the file but only change on a restart (config keys; the running values stay). */
  restartNeeded: string[];
  /** Work after the switch that failed (`part: message`); the new config runs regardless. */
  settleErrors?: string[];
}

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
  /** The TLS relay's and acceptor's bound addresses (`ADDR:PORT`; null / empty when not running). */
  tls: { relay: string | null; accept: string[] };
}

/** Exit codes (documented in `dnsseal --help` by the CLI). */
export const EXIT_OK = 0;
export const EXIT_START_FAILED = 1;
