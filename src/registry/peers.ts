/**
 * Per-peer connections for `peer` channels. One (channel, address) connection serves every
 * client group's entry for that address: `peerAdded` runs when the first entry joins, and
 * `peerRemoved` when the last one leaves. Registrations that join while the connection is
 * still being set up wait on the same promise (negotiate-before-answer holds for all of them).
 */
import type { ChannelSpec } from '../policy/types.ts';
import { errorMessage } from '../util/errors.ts';
import type { Logger } from '../util/log.ts';
import type { EntryRecord, PeerState } from './entry.ts';
import type { ChannelHooks } from './types.ts';

/** Keyed by channel name: ids may be renumbered by a reload, names are what the config says. */
function peerKey(channel: string, addr: string): string {
  return `${channel}|${addr}`;
}

export class PeerTable {
  private readonly peers = new Map<string, PeerState>();

  constructor(
    private readonly hooks: ChannelHooks,
    private readonly log: Logger,
  ) {}

  /** Joins `rec` to its peer's state, calling peerAdded the first time; await `.done`. */
  attach(rec: EntryRecord, ch: ChannelSpec, name: string): PeerState {
    if (rec.peer) return rec.peer;
    const key = peerKey(ch.name, rec.addr);
    let peer = this.peers.get(key);
    if (!peer) {
      const p: PeerState = { key, channel: ch, addr: rec.addr, holders: new Set(), done: Promise.resolve(), ready: false };
      p.done = this.hooks.peerAdded(ch, rec.addr, name).then(
        () => void (p.ready = true),
        (err: unknown) => {
          // Forget the failed peer so the next answer tries again; its holders are detached.
          if (this.peers.get(key) === p) this.peers.delete(key);
          for (const h of p.holders) if (h.peer === p) h.peer = undefined;
          throw err;
        },
      );
      this.peers.set(key, (peer = p));
    }
    peer.holders.add(rec);
    rec.peer = peer;
    rec.adopted = false;
    return peer;
  }

  /** Leaves the peer state; the last holder to go calls peerRemoved. */
  detach(rec: EntryRecord): void {
    const peer = rec.peer;
    rec.peer = undefined;
    if (peer) {
      peer.holders.delete(rec);
      if (peer.holders.size > 0 || this.peers.get(peer.key) !== peer) return;
      this.peers.delete(peer.key);
      // Also while peerAdded is still in flight: the hooks take the connection down once the
      // set-up settles (src/ipsec/channel-manager.ts does). A failed set-up never gets here:
      // its holders were detached when it failed.
      this.removed(peer.channel, peer.addr);
      return;
    }
    // Adopted from a previous run and never re-attached: that run's connection may still exist.
    const spec = rec.channel.spec;
    if (rec.adopted && spec?.kind === 'peer' && !this.peers.has(peerKey(spec.name, rec.addr))) this.removed(spec, rec.addr);
  }

  private removed(ch: ChannelSpec, addr: string): void {
    try {
      this.hooks.peerRemoved(ch, addr);
    } catch (err) {
      this.log.warn('peerRemoved hook failed', { channel: ch.name, addr, error: errorMessage(err) });
    }
  }
}
