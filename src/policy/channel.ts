/**
 * Channel specs: how a rule protects. `tunnel` = through a named hub gateway (its identity
 * defaults to the gateway), `peer` = IKE straight to the resolved address (identity defaults
 * to `%name`, the queried name). ESP proposals are AEAD only (see esp.ts).
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
  kind?: unknown;
  gateway?: unknown;
  identity?: unknown;
  esp?: unknown;
  negotiate?: unknown;
  negotiate_timeout?: unknown;
}

export const DEFAULT_ESP = 'aes256gcm16';
export const NAME_IDENTITY = '%name';
export const MAX_CHANNELS = 0xffff;
/** Bounds of `negotiate_timeout` (ms); unset means the daemon-wide default of 2000 ms. */
export const NEGOTIATE_TIMEOUT_MIN_MS = 100;
export const NEGOTIATE_TIMEOUT_MAX_MS = 60_000;

function isHostName(s: string): boolean {
  try {
    canonicalLabels(s);
    return true;
  } catch {
    return false;
  }
}

/** Validates one channel; `id` is its 1-based position in config order. Throws FieldError. */
export function buildChannel(name: string, input: ChannelInput, id: number): ChannelSpec {
  const what = `channel "${name}"`;
  if (!/^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$/.test(name)) {
    throw new FieldError('', `${what}: a channel name is 1-32 letters, digits, "_" or "-"`);
  }
  if (id < 1 || id > MAX_CHANNELS) throw new FieldError('', `${what}: at most ${MAX_CHANNELS} channels`);
  const kind = input.kind;
  if (kind !== 'tunnel' && kind !== 'peer') {
    throw new FieldError('kind', `${what}: kind must be "tunnel" (via a gateway) or "peer" (straight to the resolved address), not ${JSON.stringify(kind ?? null)}`);
  }
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
    throw new FieldError('gateway', `${what}: a peer channel has no gateway (IKE goes to the resolved address); use kind: tunnel for a hub`);
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
  let esp = DEFAULT_ESP;
  if (input.esp !== undefined) {
    if (typeof input.esp !== 'string') throw new FieldError('esp', `${what}: esp must be a proposal string like ${DEFAULT_ESP}`);
    const why = checkEsp(input.esp);
    if (why) throw new FieldError('esp', `${what}: esp "${input.esp}" refused: ${why}`);
    esp = input.esp.trim().toLowerCase();
  }
  const spec: ChannelSpec = { name, id, mark: channelMark(id), protocol: 'ipsec', kind, identity, esp };
  if (gateway !== undefined) spec.gateway = gateway;
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
  return spec;
}
