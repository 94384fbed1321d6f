/**
 * What the proxy asks of the registry (patent step S105), and what the registry asks of
 * the IPsec side. The registry owns entry lifetimes; the Datapath owns the kernel map.
 */
import type { ChannelSpec } from '../policy/types.ts';

export interface Registration {
  /** Client group (table) number. */
  group: number;
  channel: ChannelSpec;
  /** The query name and every name of its CNAME chain (lower-case, no trailing dot). */
  names: string[];
  /** Canonical IP texts from A/AAAA and HTTPS/SVCB hints. */
  addrs: string[];
  /** Smallest TTL of the records that gave the addresses, seconds. */
  ttlS: number;
  /** The name the client asked for (a `%name` identity resolves to it). */
  queryName: string;
}

export interface RegistryEntry {
  group: number;
  addr: string;
  channel: string;
  names: string[];
  /** monoMs when TTL/min-hold runs out. */
  expiresMs: number;
  /** monoMs of the last packet the data path saw, if any. */
  lastSeenMs?: number;
  static: boolean;
  /** Set when the entry's peer channel failed: why. Traffic to it is dropped (fail closed). */
  blocked?: string;
  /**
   * Set when the entry is retired: its hold ran out and it went idle (or it was flushed, or a
   * reload withdrew it). Still in the map: a tunnel entry is still steered into its channel, a
   * peer entry's traffic is dropped (its connection is let go). A new answer brings it back.
   */
  retired?: true;
  /** monoMs when it was retired. */
  retiredMs?: number;
}

export interface RegistryApi {
  /**
   * Resolves once every address is in the kernel map (and, for a `peer` channel with
   * `negotiate: before-answer`, the SA is up or the bounded wait ended in error).
   * Rejects with a DnssealError when anything could not be done: the caller answers SERVFAIL.
   * A failed peer channel leaves its addresses in the map, `blocked` (dropped, never clear).
   */
  register(reg: Registration): Promise<void>;
  /**
   * `register` for a caller that can go on at once when nothing needs waiting for: undefined
   * when every address is in the map already (returned synchronously), a promise as `register`'s
   * when a peer channel must come up first; throws (synchronously) what `register` would reject
   * with. Optional: the proxy uses `register` when it is absent.
   */
  registerNow?(reg: Registration): Promise<void> | undefined;
  list(): RegistryEntry[];
}

/** Hooks the IPsec side (#4) plugs into: per-peer connections follow entry lifetimes. */
export interface ChannelHooks {
  /** Called for every newly added (group, addr) of a `peer` channel; may await SA setup. */
  peerAdded(channel: ChannelSpec, addr: string, name: string): Promise<void>;
  /**
   * Called when the last entry using the connection lets go of it: retired (hold ran out and
   * idle, flushed, withdrawn by a reload) or removed. A retired entry's traffic is dropped.
   */
  peerRemoved(channel: ChannelSpec, addr: string): void;
}
