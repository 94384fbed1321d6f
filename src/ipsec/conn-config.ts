/**
 * The connection bodies dnsseal loads into charon (`load-conn`), as pure functions so tests
 * can pin them byte for byte. Every name starts with `dnsseal-` so `dnsseal down` finds and
 * removes them all, and nothing else.
 *
 * Why these options:
 * - `mark_in` / `mark_out` = the channel mark (mask 0xffffffff): the XFRM policies select
 *   on the mark, so only packets the eBPF programs marked are encrypted; everything else,
 *   including IKE itself, passes the policies untouched.
 * - `set_mark_in` = the same mark: decapsulated packets carry no mark of their own, and the
 *   inbound policy (with `mark_in`) would not match them, so the kernel would drop them. The
 *   inbound SA stamps the mark on what it decrypts.
 * - `set_mark_out` = DNSSEAL_MARK_ENCRYPTED on every SA: what XFRM encrypted leaves with it, so
 *   the leak guard tells ESP-in-UDP (NAT-T) from an application's clear UDP 4500 by the mark, not
 *   by the ports (issue #11 item 7). No policy selects that mark.
 * - No `start_action`: the manager installs the trap explicitly (`install`), so a failure
 *   surfaces as an error instead of a log line, and re-installs after a charon restart.
 * - Peers fail fast (`keyingtries = 1`); a hub tunnel retries forever and re-traps on DPD or
 *   close, because its traffic keeps coming.
 */
import type { Mode } from '../config/types.ts';
import { MARK_ENCRYPTED } from '../datapath/layout.ts';
import type { ChannelSpec } from '../policy/types.ts';
import type { ViciMessage } from './vici-codec.ts';

export const CONN_PREFIX = 'dnsseal-';

export interface ConnContext {
  mode: Mode;
  /**
   * LAN prefixes (gateway / intercept modes): the local traffic selectors of tunnel-mode
   * children. CIDRs, not interface names (local-ts.ts derives them from the interfaces).
   */
  lan: string[];
  /**
   * Explicit local traffic selectors (config `local_ts`): replace `lan` / `dynamic` for every
   * tunnel-mode child. Transport mode (host-mode peers) always uses `dynamic`.
   */
  localTs?: string[];
  /** Our IKE identity; charon picks a certificate and key by it. Unset: charon's default. */
  localId?: string;
  /** IKE source addresses; default any. */
  localAddrs?: string[];
  /** IKE proposals; default charon's `default`. */
  ikeProposals?: string[];
}

export function tunnelConnName(ch: ChannelSpec): string {
  return `${CONN_PREFIX}tunnel-${ch.name}`;
}

/** IPv6 colons are fine in VICI names; the address keeps its canonical text. */
export function peerConnName(ch: ChannelSpec, addr: string): string {
  return `${CONN_PREFIX}peer-${ch.name}-${addr}`;
}

export function markText(mark: number): string {
  return `0x${(mark >>> 0).toString(16).padStart(8, '0')}/0xffffffff`;
}

/** The identity the peer must prove: `%name` stands for the name that was queried. */
export function peerIdentity(ch: ChannelSpec, queryName: string): string {
  return ch.identity === '%name' ? queryName : ch.identity;
}

function hostPrefix(addr: string): string {
  return addr.includes(':') ? `${addr}/128` : `${addr}/32`;
}

function localTs(ctx: ConnContext): string[] {
  if (ctx.localTs && ctx.localTs.length > 0) return [...ctx.localTs];
  return ctx.mode === 'host' || ctx.lan.length === 0 ? ['dynamic'] : [...ctx.lan];
}

function ikeBase(ch: ChannelSpec, ctx: ConnContext, remoteAddr: string, remoteId: string): ViciMessage {
  const local: ViciMessage = { auth: 'pubkey' };
  // The channel's own identity (config `local_identity`) picks our certificate; else `local_id`.
  const id = ch.localIdentity ?? ctx.localId;
  if (id) local.id = id;
  return {
    version: '2',
    local_addrs: ctx.localAddrs && ctx.localAddrs.length > 0 ? [...ctx.localAddrs] : ['%any'],
    remote_addrs: [remoteAddr],
    proposals: ctx.ikeProposals && ctx.ikeProposals.length > 0 ? [...ctx.ikeProposals] : ['default'],
    send_cert: 'always',
    local,
    remote: { auth: 'pubkey', id: remoteId },
  };
}

function markOptions(ch: ChannelSpec): ViciMessage {
  const m = markText(ch.mark);
  return { mark_in: m, mark_out: m, set_mark_in: m, set_mark_out: markText(MARK_ENCRYPTED) };
}

/** A `tunnel` channel: to the hub, local = LAN (gateway) or this host, remote = everything. */
export function tunnelConn(ch: ChannelSpec, ctx: ConnContext): ViciMessage {
  const name = tunnelConnName(ch);
  return {
    ...ikeBase(ch, ctx, ch.gateway ?? '%any', ch.identity),
    dpd_delay: '30s',
    children: {
      [name]: {
        mode: 'tunnel',
        local_ts: localTs(ctx),
        remote_ts: ['0.0.0.0/0', '::/0'],
        esp_proposals: [ch.esp],
        ...markOptions(ch),
        dpd_action: 'trap',
        close_action: 'trap',
      },
    },
  };
}

/**
 * A `peer` channel entry: IKE straight to the resolved address. Host mode protects this
 * host's own traffic: transport mode between the two hosts. Gateway mode protects the LAN's
 * traffic: tunnel mode with the peer as the tunnel endpoint.
 */
export function peerConn(ch: ChannelSpec, addr: string, queryName: string, ctx: ConnContext): ViciMessage {
  const name = peerConnName(ch, addr);
  const host = ctx.mode === 'host';
  return {
    ...ikeBase(ch, ctx, addr, peerIdentity(ch, queryName)),
    keyingtries: '1',
    children: {
      [name]: {
        mode: host ? 'transport' : 'tunnel',
        local_ts: host ? ['dynamic'] : localTs(ctx),
        remote_ts: host ? ['dynamic'] : [hostPrefix(addr)],
        esp_proposals: [ch.esp],
        ...markOptions(ch),
      },
    },
  };
}
