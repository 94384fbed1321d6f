/**
 * The validated, resolved configuration every component receives. Produced by
 * `src/config/load.ts` from YAML + flags (flags win); nothing downstream re-validates.
 */
import type { ChannelSpec, ClientEntry, StaticEntry, Table } from '../policy/types.ts';
import type { LogFormat, LogLevel } from '../util/log.ts';

export type Mode = 'host' | 'gateway' | 'intercept';
export type DatapathKind = 'ebpf' | 'none' | 'fake' | 'auto';

export interface UpstreamSpec {
  /** `default` is used when no rule names another. */
  name: string;
  /** IP literal. */
  address: string;
  port: number;
  /** Declared a policy server (#5): queries signed with this TSIG key name. */
  tsigKey?: string;
}

export interface TsigKeySpec {
  name: string;
  algorithm: 'hmac-sha256';
  /** Decoded secret. Never logged. */
  secret: Uint8Array;
}

export interface Config {
  /** Where the config came from: a path, or `<embedded default>`. */
  source: string;
  mode: Mode;
  /** `ADDR:PORT` (IPv6 as `[ADDR]:PORT`). */
  listen: string[];
  upstreams: UpstreamSpec[];
  /** Local IP address the upstream sockets bind to (UDP and TCP); unset: the kernel picks. */
  upstreamSource?: string;
  datapath: DatapathKind;
  lan: string[];
  wan: string[];
  /** Control socket path (mode 0600). */
  control: string;
  logLevel: LogLevel;
  logFormat: LogFormat;
  /** `ADDR:PORT` for Prometheus, or undefined (off). */
  metrics?: string;
  /** Minimum hold of an entry past its DNS TTL, seconds (default 60). */
  minHoldS: number;
  /** An expired entry is removed only after this much idle time, seconds (default 300). */
  idleS: number;
  /** Upstream query timeout before SERVFAIL, milliseconds (default 2000). */
  upstreamTimeoutMs: number;
  /** `use-application-dns.net`: answer NXDOMAIN (default) or pass through. */
  canary: 'nxdomain' | 'pass';
  channels: ChannelSpec[];
  tables: Table[];
  clients: ClientEntry[];
  statics: StaticEntry[];
  tsigKeys: TsigKeySpec[];
  /** Upstream name that is a policy server (#5), if any. */
  policyServer?: string;
  /** Intercept pools (#6), CIDRs. */
  interceptPools: string[];
  /** strongSwan's VICI socket; the loader always sets it (default /var/run/charon.vici). */
  viciSocket?: string;
  /** Pin root on bpffs for maps, programs and links (default /sys/fs/bpf/dnsseal). */
  pinRoot?: string;
  /** Our IKE identity (a name or address in our certificate); unset: charon's default. */
  localId?: string;
  /**
   * Explicit local traffic selectors of tunnel-mode children (CIDRs or `dynamic`); empty or
   * absent = derived (LAN prefixes, or `dynamic` in host mode; src/ipsec/lan-prefixes.ts).
   */
  localTs?: string[];
}
