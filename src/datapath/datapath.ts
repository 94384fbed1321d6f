/**
 * The kernel side of the "encrypted channel setting table": where protected addresses live.
 * Backends: `none` (records only, no kernel), `fake` (in-memory, for tests; behaves like the
 * real map including a capacity limit), `ebpf` (pinned BPF maps via bpf() syscalls).
 * All operations are synchronous: the eBPF backend does in-process syscalls, no spawning.
 * A failure throws a DnssealError (`code` = 'map_full', 'kernel', …); the caller turns that
 * into SERVFAIL so an answer never leads to clear traffic.
 */

export interface DestKey {
  /** Client group (table) number. */
  group: number;
  /** Canonical IP text: dotted quad for IPv4, RFC 5952 form for IPv6. */
  addr: string;
}

export interface DestValue {
  channelId: number;
  mark: number;
  /** DEST_F_* flags (see bpf/dnsseal.h): static entry, intercept, retired, blocked, … */
  flags: number;
  /**
   * When the entry's DNS hold runs out, in Clock.monoMs() base (0 or absent: none — static
   * entries, or not known). Kept in the pinned state so a restarted daemon adopts the real hold.
   */
  expiresMs?: number;
}

export interface DestEntry {
  key: DestKey;
  value: DestValue;
  /** Last packet seen by the data path, in Clock.monoMs() base; undefined if never. */
  lastSeenMs?: number;
}

export const DEST_F_STATIC = 0x1;
/**
 * The entry's hold ran out and it went idle: still steered into its channel (tunnel) or dropped
 * by the guard (peer), until `retire` passes with no packet (issue #11 item 4). The programs
 * count packets that hit a retired entry.
 */
export const DEST_F_RETIRED = 0x4;
/** The entry's peer channel could not be set up: traffic to it is dropped (fail closed). */
export const DEST_F_BLOCKED = 0x8;

/** One row of the channel table (`setChannels`). */
export interface ChannelRowInput {
  id: number;
  mark: number;
  up: boolean;
  /**
   * What the leak guard's IKE exemption needs: the tunnel gateway (an IP literal; a host name is
   * ignored) and whether IKE goes to the protected address itself (`peer`). Given for channels
   * that appear at runtime (policy-server channels); when absent the backend keeps what it knew.
   */
  gateway?: string;
  peer?: boolean;
  /**
   * A `protocol: tls` channel: its TCP goes through the relay, and the guard lets out only TCP to
   * `tlsPort` of the protected address itself (a `peer` channel; absent for a `tunnel`, whose
   * relay connects to the hub) and drops everything else to its addresses.
   */
  tls?: { port?: number };
}

/** An address and port (IP text as the registry keeps it). */
export interface SockAddr {
  addr: string;
  port: number;
}

/**
 * The kernel side of the tls channel (issue 13): where the relay listens, and where the
 * connections it is handed were going. Host mode: the cgroup connect hook redirects TCP connects
 * to tls-channel addresses to the relay and records the original by the application's local
 * address and port. Backends without a kernel have none.
 */
export interface TlsInterception {
  /**
   * The relay's listening address and the process whose own connects are never redirected (the
   * relay's TLS to a peer or hub). null: no relay; TCP connects to tls-channel addresses are refused.
   */
  setRelay(relay: { listen: SockAddr; pid: number } | null): void;
  /** The original destination of a redirected connection, by its source as the relay sees it; null when unknown. */
  originalDst(peer: SockAddr): SockAddr | null;
  /** Kernel counters by DNSSEAL_TLS_CNT_* name (redirected, refused, own, steered, no_relay). */
  counters(): Record<string, number>;
}

export interface Datapath {
  /** `none`, `fake`, `ebpf` — logged by the factory that chose it. */
  readonly kind: string;
  /** How many entries the destination map holds (max_entries); undefined: unbounded (`none`). */
  readonly capacity?: number;
  /**
   * Insert or overwrite. Throws `map_full` when capacity is reached (never evicts). `known`: a
   * hint that the key is in the map already (a refresh); the result is the same either way.
   */
  upsert(key: DestKey, value: DestValue, known?: boolean): void;
  /** Remove; removing an absent key is not an error. */
  remove(key: DestKey): void;
  /** Every entry currently in the map (used to adopt state after a restart). */
  list(): DestEntry[];
  /** Last packet time for one key (monoMs), or undefined if never seen / absent. */
  lastSeen(key: DestKey): number | undefined;
  /** Client CIDR → group, for gateway/intercept modes (LPM map). */
  setClientGroups(entries: { cidr: string; group: number }[]): void;
  /** Channel id → mark/state (and gateway/peer kind); replaces the whole table. */
  setChannels(channels: ChannelRowInput[]): void;
  /** The tls channel's interception (eBPF backend only). */
  readonly tls?: TlsInterception;
  /**
   * Why this data path cannot protect right now (pins removed, a program detached by someone
   * else, …), or undefined when it can. While it returns a reason, no protected answer may be
   * released (the registry refuses registrations: SERVFAIL). Backends that protect nothing by
   * design (`none`, chosen explicitly) return undefined.
   */
  health(): string | undefined;
  /**
   * charon's own UDP sockets (IKE, NAT-T): process `pid`, its fds `fds`. The guard exempts exactly
   * these (never a port number); a backend without a kernel guard has nothing to do. Returns how
   * many were tagged. Called at every VICI (re)connect (a restarted charon has new sockets).
   */
  setIkeSockets?(pid: number, fds: readonly number[]): number;
  close(): void;
}

export function destKeyString(k: DestKey): string {
  return `${k.group}/${k.addr}`;
}
