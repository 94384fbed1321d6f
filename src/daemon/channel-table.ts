/**
 * The daemon's channel table: the configured channels, the ones a policy server named
 * (`server:NAME`, ids from 32768, added as they are first seen), and whether each channel's SA
 * is up (told by the IPsec back end). The registry and the data path both get the whole list;
 * the data path gets it again whenever a channel's state changes.
 */
import type { Datapath } from '../datapath/datapath.ts';
import type { ChannelSpec } from '../policy/types.ts';
import type { ServerChannels } from '../policy-server/proxy-side.ts';

export class ChannelTable {
  private readonly up = new Map<number, boolean>();
  /** Set once the policy-server link exists (only with `policy_server`). */
  server?: ServerChannels;

  constructor(
    private local: ChannelSpec[],
    private readonly dp: Pick<Datapath, 'setChannels'>,
  ) {}

  /** `local` (default: the configured ones) plus the server's. */
  all(local: ChannelSpec[] = this.local): ChannelSpec[] {
    return this.server ? [...local, ...this.server.list()] : local;
  }

  /** A channel's SA went up or down: the data path's table follows. */
  setUp(id: number, up: boolean): void {
    this.up.set(id, up);
    this.push();
  }

  /**
   * Hands the table to the data path; `local` replaces the configured channels (a reload).
   * Gateway and peer kind ride along: the data path learns them for server channels at runtime.
   */
  push(local: ChannelSpec[] = this.local): void {
    this.dp.setChannels(this.all(local).map((c) => ({ id: c.id, mark: c.mark, up: this.up.get(c.id) ?? false, gateway: c.gateway, peer: c.kind === 'peer' })));
    this.local = local;
  }
}
