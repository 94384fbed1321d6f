/**
 * EDNS(0) Padding (RFC 7830) for queries sent over an encrypted transport: the length of a
 * query says something about its name even inside TLS, so DoT and DoH queries are padded to a
 * multiple of 128 octets (RFC 8467 §4.1, the recommended block-length policy). Responses are
 * the server's business (unbound pads them to 468 over TLS by default).
 *
 * Works on the exact bytes `buildUpstreamQuery` makes: our OPT is the last record and has no
 * options yet. Anything else is returned unchanged.
 */
const OPTION_PADDING = 12;
const TYPE_OPT = 41;
export const QUERY_PAD_BLOCK = 128;

export function padQuery(wire: Uint8Array, block = QUERY_PAD_BLOCK): Uint8Array {
  // The OPT record we append: root name (1), type (2), class (2), ttl (4), rdlength (2).
  const opt = wire.length - 11;
  if (opt < 12 || wire[opt] !== 0 || ((wire[opt + 1]! << 8) | wire[opt + 2]!) !== TYPE_OPT) return wire;
  if (wire[opt + 9] !== 0 || wire[opt + 10] !== 0) return wire;
  // The option adds 4 octets of header plus its padding.
  const len = (block - ((wire.length + 4) % block)) % block;
  const out = new Uint8Array(wire.length + 4 + len);
  out.set(wire);
  const rdlen = 4 + len;
  out[opt + 9] = rdlen >>> 8;
  out[opt + 10] = rdlen & 0xff;
  out[wire.length] = 0;
  out[wire.length + 1] = OPTION_PADDING;
  out[wire.length + 2] = len >>> 8;
  out[wire.length + 3] = len & 0xff;
  return out;
}
