/**
 * The configuration while it is being assembled from the file and the flags: values plus
 * where each came from (`file:line` or `--flag`), so the final checks (finalize.ts) can
 * point at the right place. Only load.ts and its helpers see this.
 */
import type { DatapathKind, Mode, UpstreamSpec } from './types.ts';
import type { Condition } from '../policy/types.ts';
import type { ChannelInput } from '../policy/channel.ts';
import type { LogFormat, LogLevel } from '../util/log.ts';

export interface DraftChannel {
  input: ChannelInput;
  /** Where a field was set (`''` = the channel as a whole). */
  where: (field: string) => string;
}

export interface DraftRule {
  condition: Condition;
  channel: string;
  upstream?: string;
  where: { match: string; channel: string; upstream: string };
}

export interface DraftTable {
  where: string;
  rules: DraftRule[];
}

export interface DraftUpstream {
  spec: UpstreamSpec;
  where: string;
  whereTsig: string;
}

export interface Draft {
  source: string;
  mode: Mode;
  listen: string[];
  upstreams: Map<string, DraftUpstream>;
  /** `upstream_source` (normalised IP literal) and where it was set. */
  upstreamSource?: { address: string; where: string };
  datapath: DatapathKind;
  lan: string[];
  wan: string[];
  control: string;
  logLevel: LogLevel;
  logFormat: LogFormat;
  metrics?: string;
  minHoldS: number;
  idleS: number;
  upstreamTimeoutMs: number;
  canary: 'nxdomain' | 'pass';
  channels: Map<string, DraftChannel>;
  tables: Map<string, DraftTable>;
  clients: { cidr: string; table: string; where: string; whereTable: string }[];
  statics: { cidr: string; channel: string; table: string; where: string; whereChannel: string; whereTable: string }[];
  tsigKeys: Map<string, { secret: Uint8Array; where: string }>;
  policyServer?: { name: string; where: string };
  interceptPools: string[];
  viciSocket: string;
  pinRoot: string;
  localId?: string;
  localTs: string[];
  /** Where mode/lan/intercept_pools were set, for cross-checks. */
  whereOf: Map<string, string>;
}

export const DEFAULTS = {
  mode: 'host' as Mode,
  listen: ['127.0.0.53:53'],
  datapath: 'auto' as DatapathKind,
  control: '/run/dnsseal/control.sock',
  logLevel: 'info' as LogLevel,
  logFormat: 'logfmt' as LogFormat,
  minHoldS: 60,
  idleS: 300,
  upstreamTimeoutMs: 2000,
  canary: 'nxdomain' as const,
  viciSocket: '/var/run/charon.vici',
  pinRoot: '/sys/fs/bpf/dnsseal',
};

export function emptyDraft(source: string): Draft {
  return {
    source,
    ...DEFAULTS,
    listen: [...DEFAULTS.listen],
    upstreams: new Map(),
    lan: [],
    wan: [],
    channels: new Map(),
    tables: new Map(),
    clients: [],
    statics: [],
    tsigKeys: new Map(),
    interceptPools: [],
    localTs: [],
    whereOf: new Map(),
  };
}
