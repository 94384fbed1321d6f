/**
 * Channel ids (and the marks made from them) stay what they are across reloads. The loader
 * numbers channels 1, 2, … in file order, so removing the first channel would renumber every
 * other one — and a renumbered channel has another mark, another XFRM policy, and its live
 * entries would have to be rewritten: a reload would disturb channels it did not change. So a
 * reload keeps each channel's running id by name, and a new channel gets an id this daemon
 * never used (a removed channel's retired entries keep its old mark: a new channel must not
 * inherit their traffic). Ids from SERVER_CHANNEL_BASE up are the policy server's.
 */
import { channelMark, type ChannelSpec } from '../policy/types.ts';
import { SERVER_CHANNEL_BASE } from '../policy-server/proxy-side.ts';
import { DnssealError } from '../util/errors.ts';

export class ChannelIds {
  private highest: number;

  constructor(initial: readonly ChannelSpec[]) {
    this.highest = initial.reduce((m, c) => Math.max(m, c.id), 0);
  }

  /** `next` with each channel's running id kept by name, new ones numbered after every id used so far. */
  stable(running: readonly ChannelSpec[], next: readonly ChannelSpec[]): ChannelSpec[] {
    const ids = new Map(running.map((c) => [c.name, c.id]));
    return next.map((c) => {
      let id = ids.get(c.name);
      if (id === undefined) {
        if (this.highest + 1 >= SERVER_CHANNEL_BASE) {
          throw new DnssealError('daemon', 'reload_invalid', `channel ${c.name}: no channel id left (ids are not reused while the daemon runs); restart dnsseal`);
        }
        id = ++this.highest;
      }
      return id === c.id ? c : { ...c, id, mark: channelMark(id) };
    });
  }
}
