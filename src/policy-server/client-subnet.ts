/**
 * EDNS Client Subnet (RFC 7871) as the policy server reads it: the address a trusted
 * gateway says its query is for. Strict: family 1 or 2, source prefix within the family,
 * exactly ceil(prefix/8) address octets, no bits set past the prefix (RFC 7871 §6: FORMERR).
 */
import { formatIP } from '../util/ip.ts';
import { DnssealError } from '../util/errors.ts';

export const OPTION_ECS = 8;

export interface ClientSubnet {
  family: 4 | 6;
  sourcePrefix: number;
  /** The (network) address as text, e.g. `127.0.0.2` or `2001:db8::`. */
  address: string;
}

function bad(message: string): never {
  throw new DnssealError('policy-server', 'ecs_invalid', `client subnet option: ${message}`);
}

export function decodeClientSubnet(data: Uint8Array): ClientSubnet {
  if (data.length < 4) bad(`${data.length} octets, need at least 4`);
  const familyCode = (data[0]! << 8) | data[1]!;
  if (familyCode !== 1 && familyCode !== 2) bad(`unknown address family ${familyCode}`);
  const size = familyCode === 1 ? 4 : 16;
  const sourcePrefix = data[2]!;
  if (sourcePrefix > size * 8) bad(`source prefix /${sourcePrefix} is longer than the address`);
  const n = Math.ceil(sourcePrefix / 8);
  if (data.length !== 4 + n) bad(`${data.length - 4} address octets for a /${sourcePrefix} (want ${n})`);
  const addr = new Uint8Array(size);
  addr.set(data.subarray(4));
  if (sourcePrefix % 8 !== 0 && n > 0) {
    const mask = (0xff << (8 - (sourcePrefix % 8))) & 0xff;
    if ((addr[n - 1]! & ~mask & 0xff) !== 0) bad(`address bits set past /${sourcePrefix}`);
  }
  return { family: familyCode === 1 ? 4 : 6, sourcePrefix, address: formatIP(addr) };
}

/** Encodes an ECS option's data (used by gateways and tests). */
export function encodeClientSubnet(address: Uint8Array, sourcePrefix: number): Uint8Array {
  const family = address.length === 4 ? 1 : 2;
  if (sourcePrefix > address.length * 8) bad(`source prefix /${sourcePrefix} is longer than the address`);
  const n = Math.ceil(sourcePrefix / 8);
  const out = new Uint8Array(4 + n);
  out[1] = family;
  out[2] = sourcePrefix;
  out.set(address.subarray(0, n), 4);
  if (sourcePrefix % 8 !== 0) out[3 + n] = out[3 + n]! & ((0xff << (8 - (sourcePrefix % 8))) & 0xff);
  return out;
}

/** What a query's Client Subnet option says about who asked (see `namedClient`). */
export type NamedClient = { kind: 'client'; address: string } | { kind: 'partial' } | { kind: 'malformed' };

/**
 * The client a forwarder names in a query's ECS option (dnsmasq `--add-subnet=32,128`): only a
 * full-length source prefix (/32 for IPv4, /128 for IPv6) with scope 0 (RFC 7871 §6: a query's
 * scope is 0) names one client; a shorter prefix names a network (`partial`), anything else is
 * `malformed`. Never throws.
 */
export function namedClient(data: Uint8Array): NamedClient {
  let s: ClientSubnet;
  try {
    s = decodeClientSubnet(data);
  } catch {
    return { kind: 'malformed' };
  }
  if (data[3] !== 0) return { kind: 'malformed' };
  return s.sourcePrefix === (s.family === 4 ? 32 : 128) ? { kind: 'client', address: s.address } : { kind: 'partial' };
}
