/**
 * The registry's in-memory record of one (group, address) entry, and the small helpers
 * around it. Kept apart from the Registry so the lifetime rules read in one place.
 */
import type { DestKey } from '../datapath/datapath.ts';
import type { ChannelSpec } from '../policy/types.ts';
import type { RegistryEntry } from './types.ts';

/** Shown in place of names for entries rebuilt from the pinned map after a restart. */
export const ADOPTED_NAME = '(adopted)';

/**
 * What the registry knows of an entry's channel. Entries adopted from the pinned map carry only
 * the id and mark until a channel table (`setChannels`) or a registration names them.
 */
export interface ChannelRef {
  id: number;
  mark: number;
  name: string;
  spec?: ChannelSpec;
}

/** A per-peer connection (channel, address) shared by every group's entry that uses it. */
export interface PeerState {
  key: string;
  channel: ChannelSpec;
  addr: string;
  holders: Set<EntryRecord>;
  /** Settles when hooks.peerAdded settled; `ready` turns true when it resolved. */
  done: Promise<void>;
  ready: boolean;
}

export interface EntryRecord {
  group: number;
  addr: string;
  channel: ChannelRef;
  /** name → monoMs its hold runs out. An entry lives while any of these runs (or traffic flows). */
  names: Map<string, number>;
  static: boolean;
  peer?: PeerState;
  /** Rebuilt from the pinned map and not yet joined to a peer state in this run. */
  adopted?: boolean;
  /**
   * Why the entry's peer channel could not be set up (its last attempt): the address stays in
   * the map, so the guard drops traffic to it, until an answer brings the SA up.
   */
  blocked?: string;
}

export function recordKey(group: number, addr: string): string {
  return `${group}/${addr}`;
}

export function destKey(rec: { group: number; addr: string }): DestKey {
  return { group: rec.group, addr: rec.addr };
}

export function channelRef(spec: ChannelSpec): ChannelRef {
  return { id: spec.id, mark: spec.mark, name: spec.name, spec };
}

/**
 * Is `ref` the channel `spec`? By name when the entry knows its channel's name (ids may be
 * renumbered by a reload); by id for an entry adopted under an unknown channel (`#id`).
 */
export function sameChannel(ref: ChannelRef, spec: ChannelSpec): boolean {
  return ref.spec ? ref.name === spec.name : ref.id === spec.id;
}

/** The latest hold of any name, or 0 when no name holds the entry. */
export function expiryOf(rec: EntryRecord): number {
  let max = 0;
  for (const t of rec.names.values()) if (t > max) max = t;
  return max;
}

/**
 * Drops names whose hold ran out — unless that would leave none: an entry kept alive only by
 * traffic still shows the names that brought it in.
 */
export function pruneNames(rec: EntryRecord, nowMs: number): void {
  let live = 0;
  for (const t of rec.names.values()) if (t > nowMs) live++;
  if (live === 0 || live === rec.names.size) return;
  for (const [n, t] of rec.names) if (t <= nowMs) rec.names.delete(n);
}

export function toEntry(rec: EntryRecord, lastSeenMs: number | undefined): RegistryEntry {
  return {
    group: rec.group,
    addr: rec.addr,
    channel: rec.channel.name,
    names: [...rec.names.keys()],
    expiresMs: expiryOf(rec),
    lastSeenMs,
    static: rec.static,
    ...(rec.blocked !== undefined ? { blocked: rec.blocked } : {}),
  };
}

export function unique(xs: string[]): string[] {
  return [...new Set(xs)];
}
