/**
 * The daemon's channel table: the configured channels, the ones a policy server named
 * (`server:NAME`, ids from 32768, added as they are first seen), and whether each channel's SA
 * is up (told by the IPsec back end). The registry and the data path both get the whole list;
 * the data path gets it again whenever a channel's state changes.
 */
import type { Datapath } from '../datapath/datapath.ts';
import { DEFAULT_TLS_PORT } from '../policy/channel.ts';
import type { ChannelSpec } from '../policy/types.ts';
import type { ServerChannels } from '../policy-server/proxy-side.ts';

export class ChannelTable {
  private readonly up = new Map<number, boolean>();
  /** When each channel's SA last went up or down (wall-clock ms; `status` shows it). */
  private readonly changed = new Map<number, number>();
  /** Set once the policy-server link exists (only with `policy_server`). */
  server?: ServerChannels;

  constructor(
    private local: ChannelSpec[],
    private readonly dp: Pick<Datapath, 'setChannels'>,
    private readonly now: () => number = () => 0,
  ) {}

  /** `local` (default: the configured ones) plus the server's. */
  all(local: ChannelSpec[] = this.local): ChannelSpec[] {
    return this.server ? [...local, ...this.server.list()] : local;
  }

  /** A channel's SA went up or down: the data path's table follows. */
  setUp(id: number, up: boolean): void {
    if (this.up.get(id) !== up) this.changed.set(id, this.now());
    this.up.set(id, up);
    this.push();
  }

  /** When the channel's SA last went up or down; undefined: not since the start. */
  since(id: number): number | undefined {
    return this.changed.get(id);
  }

  /**
   * Hands the table to the data path; `local` replaces the configured channels (a reload).
   * Gateway and peer kind ride along: the data path learns them for server channels at runtime.
   * They are what the guard's IKE exemption needs, so a tls channel gives neither: IKE to a
   * tls-channel address (or its hub) is dropped like any other non-TCP traffic to it. A tls
   * channel gives `tls` instead (a `peer`'s TLS port: the one TCP port the guard lets out to it).
   */
  push(local: ChannelSpec[] = this.local): void {
    this.dp.setChannels(
      this.all(local).map((c) => {
        const ipsec = c.protocol === 'ipsec';
        const tls = ipsec ? {} : { tls: c.kind === 'peer' ? { port: c.tlsPort ?? DEFAULT_TLS_PORT } : {} };
        return { id: c.id, mark: c.mark, up: this.up.get(c.id) ?? false, gateway: ipsec ? c.gateway : undefined, peer: ipsec && c.kind === 'peer', ...tls };
      }),
    );
    this.local = local;
  }
}
