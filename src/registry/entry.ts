/**
 * The registry's in-memory record of one (group, address) entry, and the small helpers
 * around it. Kept apart from the Registry so the lifetime rules read in one place.
 */
import type { DestKey, DestValue } from '../datapath/datapath.ts';
import { DEST_F_BLOCKED, DEST_F_RETIRED, DEST_F_STATIC } from '../datapath/datapath.ts';
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
  /**
   * monoMs when the entry was retired (its hold ran out and it went idle, or it was flushed or
   * withdrawn by a reload); undefined while it is live. A retired entry stays in the map with
   * DEST_F_RETIRED: a tunnel entry is still steered into its channel, a peer entry's connection
   * is let go so the guard drops its traffic. It goes after `retire` with no packet.
   */
  retiredMs?: number;
  /** The last packet time the registry read for it (gc), for the eviction order. */
  seenMs?: number;
  /** What the map holds for this entry as far as the registry wrote (or adopted) it. */
  written?: DestValue;
  /** A value write failed after the fact (blocked flag): gc writes `destValue(rec)` again. */
  dirty?: boolean;
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

/** The granularity of the expiry kept in the map (below). */
export const MAP_EXPIRY_GRAIN_MS = 10_000;

/**
 * The expiry as the map keeps it: rounded UP to whole 10 s. The kernel never reads it (only a
 * restarted daemon's adoption does), so a hold refreshed again and again — every answer or cache
 * hit of a popular protected name — costs one map write per 10 s, not one per answer (a write is a
 * bpf() lookup and an update: most of what a refresh costs). Rounding up keeps an adopted hold at
 * least as long as the real one and at most 10 s longer: after a restart an address stays
 * protected a little longer, never shorter (fail closed). The hold the registry itself keeps (its
 * expiry, retirement, `list`) stays exact. 0 (none) stays 0.
 */
export function mapExpiry(ms: number): number {
  return ms > 0 ? Math.ceil(ms / MAP_EXPIRY_GRAIN_MS) * MAP_EXPIRY_GRAIN_MS : ms;
}

/**
 * What the map holds for an entry: its channel, the flags (static, retired, blocked) and the
 * expiry (the latest hold of any name, 0 when none; mapExpiry), so a restarted daemon adopts all of it.
 */
export function destValue(rec: EntryRecord, ch: { id: number; mark: number } = rec.channel): DestValue {
  let flags = 0;
  if (rec.static) flags |= DEST_F_STATIC;
  if (rec.retiredMs !== undefined) flags |= DEST_F_RETIRED;
  else if (rec.blocked !== undefined) flags |= DEST_F_BLOCKED;
  return { channelId: ch.id, mark: ch.mark, flags, expiresMs: mapExpiry(expiryOf(rec)) };
}

/** Same map value? (An absent expiry is 0: none.) */
export function sameValue(a: DestValue | undefined, b: DestValue): boolean {
  return (
    a !== undefined && a.channelId === b.channelId && a.mark === b.mark && a.flags === b.flags && (a.expiresMs ?? 0) === (b.expiresMs ?? 0)
  );
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
    ...(rec.retiredMs !== undefined ? { retired: true, retiredMs: rec.retiredMs } : {}),
  };
}

/** `xs` without repeats, in order; `xs` itself when it has none (the usual one or two). */
export function unique(xs: readonly string[]): readonly string[] {
  if (xs.length < 2) return xs;
  if (xs.length <= 16) {
    let dup = false;
    for (let i = 1; i < xs.length && !dup; i++) for (let j = 0; j < i; j++) if (xs[i] === xs[j]) dup = true;
    if (!dup) return xs;
  }
  return [...new Set(xs)];
}
