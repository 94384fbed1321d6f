/**
 * Channel specs: how a rule protects. `tunnel` = through a named hub gateway (its identity
 * defaults to the gateway), `peer` = straight to the resolved address (identity defaults to
 * `%name`, the queried name). Protocol `ipsec` (default): IKE/ESP, ESP proposals AEAD only
 * (see esp.ts). Protocol `tls`: TCP in mutual TLS 1.3 through the relay (src/tls) to the
 * accepting side's `tls_port`; ESP and negotiation settings do not apply and are refused.
 */
import { channelMark, type ChannelSpec, type Negotiate } from './types.ts';
import { checkEsp } from './esp.ts';
import { isIP } from '../util/ip.ts';
import { canonicalLabels } from './name.ts';

/** A validation failure tied to one field of the input, so the caller can point at its line. */
export class FieldError extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(message);
    this.name = 'FieldError';
  }
}

export interface ChannelInput {
  protocol?: unknown;
  kind?: unknown;
  gateway?: unknown;
  identity?: unknown;
  esp?: unknown;
  negotiate?: unknown;
  negotiate_timeout?: unknown;
  local_identity?: unknown;
  tls_port?: unknown;
  cert?: unknown;
  key?: unknown;
  ca?: unknown;
}

export const DEFAULT_ESP = 'aes256gcm16';
export const NAME_IDENTITY = '%name';
export const MAX_CHANNELS = 0xffff;
/** Bounds of `negotiate_timeout` (ms); unset means the daemon-wide default of 2000 ms. */
export const NEGOTIATE_TIMEOUT_MIN_MS = 100;
export const NEGOTIATE_TIMEOUT_MAX_MS = 60_000;
/**
 * The accepting side's default TLS port (src/tls): not a well-known service port, and it reads
 * as "DNS-sealed". A tls peer channel connects to the resolved address at this port.
 */
export const DEFAULT_TLS_PORT = 9853;
/** Settings that only an IPsec channel has, and only a TLS channel has (each refused on the other). */
const IPSEC_ONLY = ['esp', 'negotiate', 'negotiate_timeout'] as const;
const TLS_ONLY = ['tls_port', 'cert', 'key', 'ca'] as const;

function isHostName(s: string): boolean {
  try {
    canonicalLabels(s);
    return true;
  } catch {
    return false;
  }
}

/** A name a certificate can hold as a DNS subjectAltName (no wildcard, not an address). */
function isDnsIdentity(s: string): boolean {
  return !isIP(s) && !s.includes('*') && isHostName(s.endsWith('.') ? s.slice(0, -1) : s);
}

/** Validates one channel; `id` is its 1-based position in config order. Throws FieldError. */
export function buildChannel(name: string, input: ChannelInput, id: number): ChannelSpec {
  const what = `channel "${name}"`;
  if (!/^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$/.test(name)) {
    throw new FieldError('', `${what}: a channel name is 1-32 letters, digits, "_" or "-"`);
  }
  if (id < 1 || id > MAX_CHANNELS) throw new FieldError('', `${what}: at most ${MAX_CHANNELS} channels`);
  const protocol = input.protocol ?? 'ipsec';
  if (protocol !== 'ipsec' && protocol !== 'tls') {
    throw new FieldError('protocol', `${what}: protocol must be "ipsec" (IKE and ESP, the default) or "tls" (TCP in mutual TLS 1.3), not ${JSON.stringify(protocol)}`);
  }
  const kind = input.kind;
  if (kind !== 'tunnel' && kind !== 'peer') {
    throw new FieldError('kind', `${what}: kind must be "tunnel" (via a gateway) or "peer" (straight to the resolved address), not ${JSON.stringify(kind ?? null)}`);
  }
  const tls = protocol === 'tls';
  refuseForeign(what, input, tls);
  let gateway: string | undefined;
  if (kind === 'tunnel') {
    if (typeof input.gateway !== 'string' || input.gateway === '') {
      throw new FieldError('gateway', `${what}: a tunnel channel needs "gateway: ADDRESS-OR-NAME" (the hub it runs through)`);
    }
    if (!isIP(input.gateway) && !isHostName(input.gateway)) {
      throw new FieldError('gateway', `${what}: gateway "${input.gateway}" is neither an IP address nor a host name`);
    }
    gateway = input.gateway;
  } else if (input.gateway !== undefined) {
    throw new FieldError('gateway', `${what}: a peer channel has no gateway (${tls ? 'TLS' : 'IKE'} goes to the resolved address); use kind: tunnel for a hub`);
  }
  let identity = kind === 'tunnel' ? gateway! : NAME_IDENTITY;
  if (input.identity !== undefined) {
    if (typeof input.identity !== 'string' || input.identity.trim() === '') {
      throw new FieldError('identity', `${what}: identity must be a non-empty string (a certificate identity${kind === 'peer' ? ' or %name' : ''})`);
    }
    if (kind === 'tunnel' && input.identity === NAME_IDENTITY) {
      throw new FieldError('identity', `${what}: %name (the queried name) only makes sense for a peer channel; a tunnel's peer is its gateway`);
    }
    identity = input.identity.trim();
  }
  if (tls && identity !== NAME_IDENTITY && !isDnsIdentity(identity)) {
    // The relay compares the identity with the DNS subjectAltNames of the peer's certificate.
    const fix = input.identity === undefined ? `give "identity: NAME" (the DNS name in the hub's certificate); the gateway ${gateway} is not one` : 'use the DNS name its certificate holds';
    throw new FieldError(input.identity === undefined ? 'gateway' : 'identity', `${what}: a tls channel's identity is a DNS name the peer's certificate holds as subjectAltName, and "${identity}" is not one: ${fix}`);
  }
  const spec: ChannelSpec = { name, id, mark: channelMark(id), protocol, kind, identity, esp: tls ? '' : DEFAULT_ESP };
  if (gateway !== undefined) spec.gateway = gateway;
  if (input.local_identity !== undefined) spec.localIdentity = localIdentity(what, input.local_identity, tls);
  if (tls) tlsFields(what, input, spec);
  else ipsecFields(what, input, kind, spec);
  return spec;
}

/** An IPsec setting on a tls channel, or a tls one on an IPsec channel: refused, saying why. */
function refuseForeign(what: string, input: ChannelInput, tls: boolean): void {
  const given = (k: string) => (input as Record<string, unknown>)[k] !== undefined;
  if (tls) {
    for (const k of IPSEC_ONLY) {
      if (!given(k)) continue;
      const why = k === 'esp' ? 'a tls channel always uses TLS 1.3, whose suites are all AEAD' : 'a tls channel negotiates per TCP connection; nothing waits before the DNS answer';
      throw new FieldError(k, `${what}: ${k} applies to protocol ipsec only (${why}); remove it`);
    }
  } else {
    for (const k of TLS_ONLY) {
      if (!given(k)) continue;
      const why =
        k === 'tls_port'
          ? 'it is the TLS port of a protocol tls channel'
          : "an IPsec channel's certificate and key are charon's (load them with swanctl); local_identity picks which one";
      throw new FieldError(k, `${what}: ${k} applies to protocol tls only (${why}); make it a tls channel (protocol: tls in the file, the tls-peer or tls-tunnel kind in --channel) or remove it`);
    }
  }
}

function localIdentity(what: string, v: unknown, tls: boolean): string {
  if (typeof v !== 'string' || v.trim() === '') {
    throw new FieldError('local_identity', `${what}: local_identity must be a non-empty string (${tls ? 'a DNS name our certificate holds' : 'our IKE identity: a name or address in our certificate'})`);
  }
  const id = v.trim();
  if (tls && !isDnsIdentity(id)) {
    throw new FieldError('local_identity', `${what}: local_identity "${id}" of a tls channel must be a DNS name (the other side checks our certificate's DNS subjectAltNames)`);
  }
  return id;
}

function tlsFields(what: string, input: ChannelInput, spec: ChannelSpec): void {
  let port = DEFAULT_TLS_PORT;
  if (input.tls_port !== undefined) {
    const p = input.tls_port;
    if (typeof p !== 'number' || !Number.isInteger(p) || p < 1 || p > 65535) {
      throw new FieldError('tls_port', `${what}: tls_port must be a TCP port (1-65535), not ${JSON.stringify(p)}`);
    }
    port = p;
  }
  spec.tlsPort = port;
  for (const k of ['cert', 'key', 'ca'] as const) {
    const v = input[k];
    if (v === undefined) continue;
    if (typeof v !== 'string' || v.trim() === '') throw new FieldError(k, `${what}: ${k} must be the path of a PEM file`);
    spec[k] = v.trim();
  }
}

function ipsecFields(what: string, input: ChannelInput, kind: ChannelSpec['kind'], spec: ChannelSpec): void {
  if (input.esp !== undefined) {
    if (typeof input.esp !== 'string') throw new FieldError('esp', `${what}: esp must be a proposal string like ${DEFAULT_ESP}`);
    const why = checkEsp(input.esp);
    if (why) throw new FieldError('esp', `${what}: esp "${input.esp}" refused: ${why}`);
    spec.esp = input.esp.trim().toLowerCase();
  }
  if (input.negotiate !== undefined) {
    if (kind !== 'peer') throw new FieldError('negotiate', `${what}: negotiate applies to peer channels only`);
    if (input.negotiate !== 'before-answer' && input.negotiate !== 'on-traffic') {
      throw new FieldError('negotiate', `${what}: negotiate must be "before-answer" or "on-traffic"`);
    }
    spec.negotiate = input.negotiate as Negotiate;
  } else if (kind === 'peer') {
    spec.negotiate = 'before-answer';
  }
  if (input.negotiate_timeout !== undefined) {
    const t = input.negotiate_timeout;
    if (kind !== 'peer') {
      throw new FieldError('negotiate_timeout', `${what}: negotiate_timeout applies to peer channels only (nothing waits for a tunnel's SA before the answer)`);
    }
    if (spec.negotiate === 'on-traffic') {
      throw new FieldError('negotiate_timeout', `${what}: negotiate_timeout is the wait of negotiate: before-answer, and this channel negotiates on-traffic (nothing waits); remove one of the two`);
    }
    if (typeof t !== 'number' || !Number.isInteger(t) || t < NEGOTIATE_TIMEOUT_MIN_MS || t > NEGOTIATE_TIMEOUT_MAX_MS) {
      throw new FieldError(
        'negotiate_timeout',
        `${what}: negotiate_timeout must be a whole number of milliseconds between ${NEGOTIATE_TIMEOUT_MIN_MS} and ${NEGOTIATE_TIMEOUT_MAX_MS}, not ${JSON.stringify(t)}`,
      );
    }
    spec.negotiateTimeoutMs = t;
  }
}
