/**
 * The configuration while it is being assembled from the file and the flags: values plus
 * where each came from (`file:line` or `--flag`), so the final checks (finalize.ts) can
 * point at the right place. Only load.ts and its helpers see this.
 *
 * Value settings are kept by key (`values`), whatever they are: the table (settings.ts) says
 * how to read them and which Config field they become. Sections keep their own shapes.
 */
import type { UpstreamSpec } from './types.ts';
import type { Condition } from '../policy/types.ts';
import type { PackedRules } from '../policy/packed-rules.ts';
import type { ChannelInput } from '../policy/channel.ts';
import type { DraftTlsAccept } from './sections/tls-accept.ts';

export interface DraftChannel {
  input: ChannelInput;
  /** Where a field was set (`''` = the channel as a whole). */
  where: (field: string) => string;
}

export interface DraftRule {
  condition: Condition;
  /** Absent: a forwarding rule (then `upstream` is set). */
  channel?: string;
  upstream?: string;
  where: { match: string; channel: string; upstream: string };
}

export interface DraftTable {
  where: string;
  /** In table order: rules from the YAML or a flag, and rules files (packed, inserted whole). */
  rules: Array<DraftRule | PackedRules>;
}

export interface DraftUpstream {
  spec: UpstreamSpec;
  where: string;
  /** Where each server was given (`file:line` or `--upstream`), in `spec.servers` order. */
  whereServers: string[];
  whereTsig: string;
}

/** A local record (`hosts:`, `--host`, a hosts file line's name): canonical name and addresses. */
export interface DraftHost {
  name: string;
  addrs: string[];
  where: string;
}

export interface DraftValue {
  /** `undefined`: unset on purpose (`metrics: off`, `local_id: null`). */
  value: unknown;
  where: string;
}

export interface Draft {
  source: string;
  /** What the file describes: a node (`run`, `check`, `explain`) or a policy server's tables. */
  role: 'node' | 'policy-server';
  /** Value settings given in the file or by a flag, by YAML key (absent: the default). */
  values: Map<string, DraftValue>;
  upstreams: Map<string, DraftUpstream>;
  channels: Map<string, DraftChannel>;
  tables: Map<string, DraftTable>;
  clients: { cidr: string; table: string; where: string; whereTable: string }[];
  statics: { cidr: string; channel: string; table: string; where: string; whereChannel: string; whereTable: string }[];
  tsigKeys: Map<string, { secret: Uint8Array; where: string }>;
  /** The `tls_accept:` section, when given. */
  tlsAccept?: DraftTlsAccept;
  /** `hosts:` and `--host`, in order. */
  hosts: DraftHost[];
  /** `hosts_file:` / `--hosts-file`, read: its path and records. */
  hostsFile?: { path: string; where: string; entries: DraftHost[] };
  /**
   * The embedded default's example channels, when rule flags without --config left them out
   * (with its rules): an unknown channel of that name is explained, not just "none defined".
   */
  exampleChannels?: string[];
}

export function emptyDraft(source: string): Draft {
  return {
    source,
    role: 'node',
    values: new Map(),
    upstreams: new Map(),
    channels: new Map(),
    tables: new Map(),
    clients: [],
    statics: [],
    tsigKeys: new Map(),
    hosts: [],
  };
}
