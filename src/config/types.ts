/**
 * The validated, resolved configuration every component receives. Produced by
 * `src/config/load.ts` from YAML + flags (flags win); nothing downstream re-validates.
 *
 * The fields of value settings (mode, listen, minHoldS, …) are derived from the table in
 * settings.ts (field name, type, required when it has a default); their meaning is documented
 * there. The structured parts (upstreams, channels, tables, …) are declared here.
 */
import type { ChannelSpec, ClientEntry, StaticEntry, Table } from '../policy/types.ts';
import type { SettingValues } from './setting.ts';
import type { Settings } from './settings.ts';

export type { Mode } from './setting.ts';
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
}
