/**
 * Addresses read off the wire as text: the bounds checks of the DNS codecs (a truncated
 * record is a WireError) around the one formatter, src/util/ip.ts (dotted quad, RFC 5952).
 * This is the form `DestKey.addr` requires.
 */
import { formatIPv4At, formatIPv6At } from '../util/ip.ts';
import { WireError } from './wire.ts';

export function ipv4Text(buf: Uint8Array, off: number): string {
  if (off + 4 > buf.length) throw new WireError(`IPv4 address truncated at ${off}`);
  return formatIPv4At(buf, off);
}

export function ipv6Text(buf: Uint8Array, off: number): string {
  if (off + 16 > buf.length) throw new WireError(`IPv6 address truncated at ${off}`);
  return formatIPv6At(buf, off);
}
