/**
 * What a reload does to the configured channels, by name (ids are kept stable by the daemon,
 * src/daemon/channel-ids.ts, so a channel whose settings did not change compares equal):
 * added, removed, changed (same name, other settings), and the rest unchanged — which a reload
 * must not touch (their SAs stay up).
 */
import type { ChannelSpec } from '../policy/types.ts';

export interface ChannelDiff {
  added: ChannelSpec[];
  removed: ChannelSpec[];
  changed: Array<{ before: ChannelSpec; after: ChannelSpec }>;
  unchanged: ChannelSpec[];
}

export function diffChannels(before: readonly ChannelSpec[], after: readonly ChannelSpec[]): ChannelDiff {
  const old = new Map(before.map((c) => [c.name, c]));
  const now = new Set(after.map((c) => c.name));
  const d: ChannelDiff = { added: [], removed: before.filter((c) => !now.has(c.name)), changed: [], unchanged: [] };
  for (const c of after) {
    const was = old.get(c.name);
    if (!was) d.added.push(c);
    else if (Bun.deepEquals(was, c)) d.unchanged.push(c);
    else d.changed.push({ before: was, after: c });
  }
  return d;
}

/** A reload of the channels as the IPsec back end prepared it (see IpsecChannels.prepareChannels). */
export interface ChannelChange {
  readonly before: readonly ChannelSpec[];
  readonly after: readonly ChannelSpec[];
  readonly diff: ChannelDiff;
  /** Tunnel connections prepare loaded (new names only): abort unloads them. */
  readonly loaded: readonly ChannelSpec[];
}

/** What settling a channel change did in strongSwan. */
export interface ChannelSettle {
  /** New tunnels loaded now (charon came back meanwhile, or was away at prepare). */
  loaded: number;
  /** Changed channels whose connections were replaced. */
  replaced: number;
  /** Removed tunnel channels unloaded. */
  unloaded: number;
}
