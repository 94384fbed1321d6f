/**
 * The peer's DNS names, read from its certificate's DER (the subjectAltName extension,
 * 2.5.29.17, dNSName entries) with a small bounds-checked DER walker, and the identity check
 * the relay makes: the expected name must be one of them, exactly.
 *
 * Exact means: ASCII case-insensitive, one trailing dot of the expected name ignored, nothing
 * else. A wildcard SAN (`*.partner.test`) never matches (a certificate for a whole zone does
 * not prove one host); the subject CN and IP SANs are not looked at. Parsing the DER rather than
 * the text form (`DNS:a, DNS:b`) leaves no room for a name that smuggles a separator.
 */

interface Tlv {
  tag: number;
  /** First content byte. */
  start: number;
  /** One past the last content byte. */
  end: number;
}

/** One DER TLV at `off`, inside `[off, limit)`; null when it does not fit or is not DER. */
function tlv(buf: Uint8Array, off: number, limit: number): Tlv | null {
  if (off + 2 > limit) return null;
  const tag = buf[off]!;
  if ((tag & 0x1f) === 0x1f) return null; // high tag numbers: none in what we read
  let len = buf[off + 1]!;
  let start = off + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4 || start + n > limit) return null; // indefinite length is not DER
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[start + i]!;
    start += n;
  }
  const end = start + len;
  if (end > limit) return null;
  return { tag, start, end };
}

function children(buf: Uint8Array, parent: Tlv): Tlv[] | null {
  const out: Tlv[] = [];
  for (let off = parent.start; off < parent.end; ) {
    const t = tlv(buf, off, parent.end);
    if (!t) return null;
    out.push(t);
    off = t.end;
  }
  return out;
}

const SAN_OID = [0x55, 0x1d, 0x11];

/**
 * The dNSName entries of a DER certificate's subjectAltName, in order; [] when it has none;
 * null when the DER is malformed or the extension appears twice (callers fail closed).
 */
export function certDnsNames(der: Uint8Array): string[] | null {
  const cert = tlv(der, 0, der.length);
  if (!cert || cert.tag !== 0x30 || cert.end !== der.length) return null;
  const certParts = children(der, cert);
  const tbs = certParts?.[0];
  if (!tbs || tbs.tag !== 0x30) return null;
  const fields = children(der, tbs);
  if (!fields) return null;
  const extsWrap = fields.find((f) => f.tag === 0xa3);
  if (!extsWrap) return [];
  const extsSeq = children(der, extsWrap);
  if (!extsSeq || extsSeq.length !== 1 || extsSeq[0]!.tag !== 0x30) return null;
  const exts = children(der, extsSeq[0]!);
  if (!exts) return null;
  let names: string[] | undefined;
  for (const ext of exts) {
    if (ext.tag !== 0x30) return null;
    const parts = children(der, ext);
    if (!parts || parts.length < 2 || parts[0]!.tag !== 0x06) return null;
    const oid = parts[0]!;
    const isSan = oid.end - oid.start === SAN_OID.length && SAN_OID.every((b, i) => der[oid.start + i] === b);
    if (!isSan) continue;
    if (names) return null; // a second subjectAltName: not a valid certificate
    const value = parts[parts.length - 1]!;
    if (value.tag !== 0x04) return null;
    const seq = tlv(der, value.start, value.end);
    if (!seq || seq.tag !== 0x30 || seq.end !== value.end) return null;
    const general = children(der, seq);
    if (!general) return null;
    names = [];
    for (const g of general) {
      if (g.tag !== 0x82) continue; // dNSName [2] IA5String; others (IP, URI, email) ignored
      let s = '';
      for (let i = g.start; i < g.end; i++) {
        const b = der[i]!;
        if (b < 0x21 || b > 0x7e) {
          s = '';
          break; // not a host name: cannot match anything
        }
        s += String.fromCharCode(b);
      }
      if (s) names.push(s);
    }
  }
  return names ?? [];
}

/** Lower-case, without the root dot: how both sides of the comparison are written. */
export function canonicalIdentity(name: string): string {
  const n = name.endsWith('.') ? name.slice(0, -1) : name;
  return n.toLowerCase();
}

/** True when `expected` is, exactly, one of the certificate's DNS SANs (no wildcards). */
export function identityMatches(expected: string, dnsNames: readonly string[]): boolean {
  const want = canonicalIdentity(expected);
  if (want === '' || want.includes('*')) return false;
  return dnsNames.some((n) => !n.includes('*') && canonicalIdentity(n) === want);
}
