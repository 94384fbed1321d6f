/**
 * The validated, resolved configuration every component receives. Produced by
 * `src/config/load.ts` from YAML + flags (flags win); nothing downstream re-validates.
 *
 * The fields of value settings (mode, listen, minHoldS, …) are derived from the table in
 * settings.ts (field name, type, required when it has a default); their meaning is documented
 * there. The structured parts (upstreams, channels, tables, …) are declared here.
 */
import type { ChannelSpec, ClientEntry, StaticEntry, Table } from '../policy/types.ts';
import type { AcceptLimits } from '../tls/acceptor.ts';
import type { ClientInput } from '../tls/accept-policy.ts';
import type { TlsCredentials } from '../tls/types.ts';
import type { SettingValues } from './setting.ts';
import type { Settings } from './settings.ts';
import type { TsigKeySpec } from '../dns/tsig-key.ts';
import type { ServerSpec } from '../proxy/server-spec.ts';

export type { Mode } from './setting.ts';
export type DatapathKind = 'ebpf' | 'none' | 'fake' | 'auto';

export interface UpstreamSpec {
  /** `default` is used when no rule names another. */
  name: string;
  /**
   * The servers, in the order queries try them (first that is up; failover to the next):
   * plain DNS, DNS over TLS or DNS over HTTPS (src/proxy/server-spec.ts). 1 to 31.
   */
  servers: ServerSpec[];
  /** Declared a policy server (#5): queries signed with this TSIG key name. */
  tsigKey?: string;
}

export type { ServerSpec } from '../proxy/server-spec.ts';

/** A TSIG key as the config holds it: defined by the DNS layer (src/dns/tsig-key.ts). */
export type { TsigKeySpec } from '../dns/tsig-key.ts';

/** The accepting side of TLS channels (`tls_accept:`), checked: certificate loaded, allow-lists compiled once. */
export interface TlsAcceptSpec {
  /** `ADDR:PORT` / `[ADDR]:PORT`. */
  listen: string[];
  credentials: TlsCredentials;
  clients: ClientInput[];
  limits: AcceptLimits;
}

/** Every value setting's Config field (see settings.ts). */
export type SettingsConfig = SettingValues<Settings>;

export interface Config extends SettingsConfig {
  /** Where the config came from: a path, or `<embedded default>`. */
  source: string;
  upstreams: UpstreamSpec[];
  channels: ChannelSpec[];
  tables: Table[];
  clients: ClientEntry[];
  statics: StaticEntry[];
  tsigKeys: TsigKeySpec[];
  /**
   * Our certificate, key and CA per `protocol: tls` channel, by channel name: read and checked
   * at load (valid now, key matches, holds the channel's local identity). Never logged.
   * Absent when no channel is a tls one.
   */
  tlsCredentials?: Record<string, TlsCredentials>;
  /** `tls_accept:`: this node accepts TLS channels (absent: it does not). */
  tlsAccept?: TlsAcceptSpec;
}
