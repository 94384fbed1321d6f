/**
 * The registry's in-memory record of one (group, address) entry, and the small helpers
 * around it. Kept apart from the Registry so the lifetime rules read in one place.
 */
import type { DestKey, DestValue } from '../datapath/datapath.ts';
import { DEST_F_BLOCKED, DEST_F_RETIRED, DEST_F_STATIC } from '../datapath/datapath.ts';
import type { ChannelSpec } from '../policy/types.ts';
import { expiryOf, type NameHolds, namesOf } from './name-holds.ts';
import type { RegistryEntry } from './types.ts';

/** Shown in place of names for entries rebuilt from the pinned map after a restart. */
export const ADOPTED_NAME = '(adopted)';

/**
 * What the registry knows of an entry's channel. Entries adopted from the pinned map carry only
 * the id and mark until a channel table (`setChannels`) or a registration names them. One ref is
 * shared by every entry of a channel (EntryTable.channelRef), so a ref is never changed in place:
 * an entry that moves or is renumbered gets another ref.
 */
export interface ChannelRef {
  readonly id: number;
  readonly mark: number;
  readonly name: string;
  readonly spec?: ChannelSpec;
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

/**
 * One (group, address) entry. Every field is set in the constructor, so all records share one
 * shape, and the record holds no object of its own in the usual case (one name, a shared channel
 * ref, the value written kept as numbers): some 160 heap bytes.
 */
export class EntryRecord implements NameHolds {
  /** The names holding the entry, each until its hold (name-holds.ts): one in `name`/`hold`, more in `names`. */
  name: string | undefined = undefined;
  hold = 0;
  names: Map<string, number> | undefined = undefined;
  static: boolean;
  peer: PeerState | undefined = undefined;
  /** Rebuilt from the pinned map and not yet joined to a peer state in this run. */
  adopted = false;
  /**
   * Why the entry's peer channel could not be set up (its last attempt): the address stays in
   * the map, so the guard drops traffic to it, until an answer brings the SA up.
   */
  blocked: string | undefined = undefined;
  /**
   * monoMs when the entry was retired (its hold ran out and it went idle, or it was flushed or
   * withdrawn by a reload); undefined while it is live. A retired entry stays in the map with
   * DEST_F_RETIRED: a tunnel entry is still steered into its channel, a peer entry's connection
   * is let go so the guard drops its traffic. It goes after `retire` with no packet.
   */
  retiredMs: number | undefined = undefined;
  /** The last packet time the registry read for it (gc), for the eviction order. */
  seenMs: number | undefined = undefined;
  /**
   * What the map holds for this entry as far as the registry wrote (or adopted) it: a DestValue
   * kept as its four numbers (noteWritten, isWritten, writtenValue), not as an object per entry.
   */
  writtenChannelId: number;
  writtenMark: number;
  writtenFlags: number;
  writtenExpiresMs: number | undefined;
  /** A value write failed after the fact (blocked flag): gc writes `destValue(rec)` again. */
  dirty = false;

  /** `written`: the value the map holds for it (the caller wrote it, or adopted it from the map). */
  constructor(
    readonly group: number,
    readonly addr: string,
    public channel: ChannelRef,
    written: DestValue,
    isStatic = false,
  ) {
    this.static = isStatic;
    this.writtenChannelId = written.channelId;
    this.writtenMark = written.mark;
    this.writtenFlags = written.flags;
    this.writtenExpiresMs = written.expiresMs;
  }
}

/** The map now holds `value` for `rec`. */
export function noteWritten(rec: EntryRecord, value: DestValue): void {
  rec.writtenChannelId = value.channelId;
  rec.writtenMark = value.mark;
  rec.writtenFlags = value.flags;
  rec.writtenExpiresMs = value.expiresMs;
}

/** Does the map hold `value` for `rec` already? (An absent expiry is 0: none.) */
export function isWritten(rec: EntryRecord, value: DestValue): boolean {
  return (
    rec.writtenChannelId === value.channelId &&
    rec.writtenMark === value.mark &&
    rec.writtenFlags === value.flags &&
    (rec.writtenExpiresMs ?? 0) === (value.expiresMs ?? 0)
  );
}

/** The value the map holds for `rec` (a new object: to write it back after a failure). */
export function writtenValue(rec: EntryRecord): DestValue {
  return { channelId: rec.writtenChannelId, mark: rec.writtenMark, flags: rec.writtenFlags, expiresMs: rec.writtenExpiresMs };
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

/** What destValue reads of a record (callers pass a changed copy to get the value it would have). */
export type ValueFields = Pick<EntryRecord, 'channel' | 'static' | 'retiredMs' | 'blocked'> & NameHolds;

/**
 * What the map holds for an entry: its channel, the flags (static, retired, blocked) and the
 * expiry (the latest hold of any name, 0 when none; mapExpiry), so a restarted daemon adopts all of it.
 */
export function destValue(rec: ValueFields, ch: { id: number; mark: number } = rec.channel): DestValue {
  let flags = 0;
  if (rec.static) flags |= DEST_F_STATIC;
  if (rec.retiredMs !== undefined) flags |= DEST_F_RETIRED;
  else if (rec.blocked !== undefined) flags |= DEST_F_BLOCKED;
  return { channelId: ch.id, mark: ch.mark, flags, expiresMs: mapExpiry(expiryOf(rec)) };
}

export function toEntry(rec: EntryRecord, lastSeenMs: number | undefined): RegistryEntry {
  return {
    group: rec.group,
    addr: rec.addr,
    channel: rec.channel.name,
    names: namesOf(rec),
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
