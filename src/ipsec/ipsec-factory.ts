/**
 * Chooses the IPsec backend for a configuration and logs the choice: `none` when the data
 * path is `none` (nothing is marked, so there is nothing for XFRM to select), strongSwan over
 * VICI otherwise. Everything is passed in; nothing is global.
 *
 * For strongSwan in gateway/intercept mode without an explicit `local_ts`, the LAN prefixes
 * (the tunnels' local traffic selectors) are read here from the `lan` interfaces' addresses,
 * once; an interface without an address makes this throw (the daemon does not start).
 */
import type { Config } from '../config/types.ts';
import type { Metrics } from '../ops/metrics.ts';
import type { Clock } from '../util/clock.ts';
import type { Logger } from '../util/log.ts';
import { ChannelManager, NoIpsec, type IpsecChannels } from './channel-manager.ts';
import type { ViciApi } from './vici-api.ts';
import { DEFAULT_VICI_SOCKET, ViciClient } from './vici-client.ts';
import { ipAddrReader, lanPrefixes, type AddrReader } from './lan-prefixes.ts';

export interface IpsecDeps {
  log: Logger;
  metrics: Metrics;
  clock: Clock;
  /** VICI socket path, default /var/run/charon.vici. */
  viciSocket?: string;
  /** A ready client (tests); otherwise one is made for `viciSocket`. */
  vici?: ViciApi;
  /** Our IKE identity (a name or address in our certificate). */
  localId?: string;
  negotiateTimeoutMs?: number;
  /** Reads an interface's addresses (`ip -j addr show dev IFACE`); tests pass their own. */
  readAddrs?: AddrReader;
  onChannelState?: ConstructorParameters<typeof ChannelManager>[0]['onChannelState'];
  onCharonUp?: ConstructorParameters<typeof ChannelManager>[0]['onCharonUp'];
}

export function createIpsecChannels(cfg: Config, deps: IpsecDeps): IpsecChannels {
  if (cfg.datapath === 'none') {
    deps.log.info('ipsec backend chosen', { backend: 'none', reason: 'datapath none' });
    return new NoIpsec(cfg.channels);
  }
  const localTs = cfg.localTs ?? [];
  const lan = cfg.mode === 'host' || localTs.length > 0 ? [] : lanPrefixes(cfg.lan, deps.readAddrs ?? ipAddrReader);
  const vici = deps.vici ?? new ViciClient({ socketPath: deps.viciSocket ?? DEFAULT_VICI_SOCKET, log: deps.log });
  deps.log.info('ipsec backend chosen', {
    backend: 'strongswan',
    socket: vici.socketPath,
    local_ts: (localTs.length ? localTs : lan.length ? lan : ['dynamic']).join(','),
  });
  return new ChannelManager({
    vici,
    mode: cfg.mode,
    lan,
    localTs: localTs.length ? localTs : undefined,
    channels: cfg.channels,
    log: deps.log,
    metrics: deps.metrics,
    clock: deps.clock,
    localId: deps.localId,
    negotiateTimeoutMs: deps.negotiateTimeoutMs,
    onChannelState: deps.onChannelState,
    onCharonUp: deps.onCharonUp,
    ownsVici: deps.vici === undefined,
  });
}
