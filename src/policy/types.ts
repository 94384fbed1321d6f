/**
 * The policy vocabulary shared by config, matcher, registry, datapath and ipsec.
 * A rule is `condition → channel` (the patent's CUG table, figure 2); per-client tables
 * follow figure 6 (client CIDR → table id → ordered rules).
 */

/** How a rule's pattern compares with a name (all label-wise, case-insensitive). */
export type ConditionKind =
  | 'exact' //     taro.nec.co.jp
  | 'suffix' //    *.myfriends.com     (myfriends.com and every name under it)
  | 'subdomain' // **.myfriends.com    (names under myfriends.com only, not myfriends.com)
  | 'prefix' //    sato.*              (first label(s); sato itself included)
  | 'infix'; //    *.biglobe.*         (the label sequence anywhere, first and last label included)

export interface Condition {
  kind: ConditionKind;
  /** Lower-case A-label labels of the fixed part, e.g. ['myfriends','com'] for `*.myfriends.com`. */
  labels: string[];
  /** The pattern as written (for display). */
  pattern: string;
}

export type ChannelKind = 'tunnel' | 'peer';

/** How a channel carries traffic: IPsec (ESP, strongSwan) or mutual TLS 1.3 (src/tls, TCP only). */
export type ChannelProtocol = 'ipsec' | 'tls';

/** When a `peer` channel's SA is negotiated relative to releasing the DNS answer. */
export type Negotiate = 'before-answer' | 'on-traffic';

export interface ChannelSpec {
  /** Name as configured (`hub`, `partner`). */
  name: string;
  /** Stable small integer, 1..65535, assigned in config order; 0 means "no channel". */
  id: number;
  /** skb/socket mark the data path sets for this channel (see `channelMark`). */
  mark: number;
  /** Default `ipsec`. `tls`: TCP carried in mutual TLS 1.3 by the relay (src/tls); no ESP, no IKE. */
  protocol: ChannelProtocol;
  kind: ChannelKind;
  /** `tunnel` only: the hub gateway address (IP literal or host name). */
  gateway?: string;
  /** Identity the peer must prove (the patent's "certificate ID"); `%name` = the queried name. */
  identity: string;
  /** ESP proposal, AEAD only (`aes256gcm16`, `aes128gcm16`, `chacha20poly1305`, …); `''` on a tls channel. */
  esp: string;
  /**
   * Our own identity on this channel (the patent's certificate ID also picks our certificate,
   * ¶0062). IPsec: the connection's local IKE id (charon picks certificate and key by it),
   * overriding `local_id`. TLS: a DNS name our certificate must hold (checked at load),
   * default `tls_local_identity`. Unset: the global default.
   */
  localIdentity?: string;
  /** tls only: the accepting side's TCP port (peer: at the resolved address; tunnel: at the hub). */
  tlsPort?: number;
  /**
   * tls only: our certificate chain, our key, and the CA the other side's certificate must chain
   * to (PEM file paths, as configured on the channel; unset: the global `tls_cert`, `tls_key`,
   * `tls_ca`). The files are read and checked at load (Config.tlsCredentials).
   */
  cert?: string;
  key?: string;
  ca?: string;
  /** `peer` only; default `before-answer`. */
  negotiate?: Negotiate;
  /**
   * `peer` with `before-answer` only: how long the answer waits for the SA, milliseconds
   * (config `negotiate_timeout`, 100..60000). Unset: the daemon-wide wait (2000 ms); specs a
   * policy server hands out never carry it (the EDNS option has no field for it).
   */
  negotiateTimeoutMs?: number;
}

export interface Rule {
  condition: Condition;
  /** Channel name; resolved against the channel table. */
  channel: string;
  /** Optional dedicated upstream name (split DNS, the pre-query decision of ¶87). */
  upstream?: string;
  /** 0-based position in its table (table order decides: first match wins). */
  index: number;
  /** Where it was defined, `file:line` or `--protect`, for messages. */
  source?: string;
}

/** A table id as in figure 6 (`502`) or a name (`default`). */
export type TableId = string;

export interface Table {
  id: TableId;
  /** Kernel group number for this table (u32). `default` is 0; numeric ids map to themselves. */
  group: number;
  rules: Rule[];
}

export interface ClientEntry {
  cidr: string;
  table: TableId;
}

/** A static CIDR entry (patent ¶46): always protected, whatever DNS says. */
export interface StaticEntry {
  cidr: string;
  channel: string;
  table: TableId;
}

/** The outcome of matching one name for one client. */
export interface Decision {
  table: TableId;
  group: number;
  rule: Rule | null;
  channel: ChannelSpec | null;
  upstream: string | null;
  /** Which name in the CNAME chain matched (may differ from the query name). */
  matchedName?: string;
  /**
   * Set when the protection comes from a CNAME hold (cname-holds.ts, issue 11 item 9): the
   * protected name whose answer named `matchedName` as a CNAME target.
   */
  heldBy?: string;
}

/** Marks: high 16 bits identify dnsseal, low 16 bits the channel id. */
export const MARK_BASE = 0x5e510000;
export const MARK_MASK = 0xffff0000;
export function channelMark(id: number): number {
  return (MARK_BASE | (id & 0xffff)) >>> 0;
}
