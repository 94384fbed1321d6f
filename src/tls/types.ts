/**
 * The TLS channel's own vocabulary. `TlsChannel` is what the relay needs of a channel; the
 * daemon builds it from a `ChannelSpec` with `protocol: 'tls'` (src/policy/types.ts) and the
 * credentials the config loaded for it (`tlsChannel()`, channel-credentials.ts).
 */

/** The default TLS port of the accepting side (peer kind: at the destination; tunnel: at the hub). */
export { DEFAULT_TLS_PORT } from '../policy/channel.ts';
/** The identity that means "the name the address was resolved from" (as for IPsec). */
export const NAME_IDENTITY = '%name';
/** ALPN protocol id both sides insist on: a TLS server of another protocol is not mistaken for us. */
export const ALPN_ID = 'dnsseal/1';

/** PEM text of our certificate chain and key, and the CA that vouches for the other side. */
export interface TlsCredentials {
  /** Our certificate (leaf first, then intermediates), PEM. */
  certPem: string;
  /** Our private key, PEM (never logged). */
  keyPem: string;
  /** The CA certificate(s) the other side's certificate must chain to, PEM. */
  caPem: string;
  /** Our identity: the DNS SANs of our certificate (for logs and the README's `local_identity`). */
  names: string[];
}

export type TlsChannelKind = 'peer' | 'tunnel';

export interface TlsChannel {
  /** Channel name as configured (a bounded metrics label). */
  name: string;
  kind: TlsChannelKind;
  /** `tunnel` only: the hub (IP literal or host name) that connects onward. */
  gateway?: string;
  /** The accepting side's TCP port (default DEFAULT_TLS_PORT). */
  port: number;
  /** `%name` (peer only) or a fixed DNS name the peer's certificate must hold as a DNS SAN. */
  identity: string;
  /** Our certificate/key for this channel (per-channel `local_identity` or the global default). */
  credentials: TlsCredentials;
}

/** An IP literal (canonical text) and a TCP port. */
export interface Destination {
  addr: string;
  port: number;
}

/** One intercepted TCP flow, as the daemon hands it to the relay. */
export interface Flow {
  /** The destination the application connected to (before interception). */
  dst: Destination;
  /**
   * The name `dst.addr` was resolved from (registry entry names / the query name): the
   * identity for `%name`, and sent to the accepting side for its logs and name allow-lists.
   */
  name?: string;
  channel: TlsChannel;
}

/** Why a relayed flow ended (a bounded metrics label). */
export type RelayOutcome =
  | 'ok' // both directions finished cleanly
  | 'reset' // one side aborted after the tunnel was up; the other was reset
  | 'no_route' // the original destination is unknown, or no TLS channel holds it
  | 'no_identity' // %name but no name known for the address
  | 'connect_failed' // no TCP connection to the peer/hub
  | 'handshake_failed' // TLS failed (see handshake failure reason)
  | 'refused' // the accepting side answered 4xx/5xx
  | 'timeout'; // handshake or reply not in time

/** Why the accepting side ended a connection (a bounded metrics label). */
export type AcceptOutcome =
  | 'ok'
  | 'reset'
  | 'handshake_failed'
  | 'bad_request'
  | 'forbidden'
  | 'upstream_failed'
  | 'limit'
  | 'timeout';

/** Why a TLS handshake failed (a bounded metrics label). */
export type HandshakeFailure =
  | 'timeout' // not done within the handshake timeout
  | 'untrusted' // the certificate does not chain to our CA, or is expired
  | 'no_certificate' // the client sent none (accept side)
  | 'identity' // the peer's certificate does not hold the expected DNS SAN
  | 'protocol' // not TLS 1.3, wrong ALPN, garbage instead of TLS
  | 'closed'; // the other side went away during the handshake
