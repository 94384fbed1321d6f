/**
 * IP addresses as text and as bytes: the project's one parser and one formatter.
 *
 * Every address text dnsseal produces comes from `formatIP` / `formatIPv4At` / `formatIPv6At`:
 * dotted quad for IPv4, RFC 5952 for IPv6 (lower-case hex, no leading zeros, the longest run
 * of ≥ 2 zero groups as `::`, the first such run on a tie, never mixed notation — an
 * IPv4-mapped address is `::ffff:c000:201`, as the WHATWG URL serializer writes it). The
 * registry keys an entry by this text, so an address read off a DNS answer, written in the
 * config (`static:`) or given to `list`/`flush --address` must come out the same: they all
 * pass through here (test/util/ip.test.ts compares it with Node's parser and URL serializer).
 *
 * Parsing is strict: dotted quads without leading zeros, at most 4 hex digits per IPv6
 * group, an embedded IPv4 only as the last 32 bits. `parseIPv6` accepts and drops a zone id
 * (`fe80::1%eth0`, what a socket may report); `canonicalIp` does not.
 */

export function parseIPv4(text: string): Uint8Array | null {
  const v = ipv4Number(text);
  return v < 0 ? null : new Uint8Array([v >>> 24, (v >>> 16) & 255, (v >>> 8) & 255, v & 255]);
}

/**
 * A dotted quad as one number (the first octet highest: `1.2.3.4` → 0x01020304), or -1 when
 * `text` is not one: parseIPv4's rules (four decimal octets 0–255, no leading zeros), read in one
 * pass without a string or an array allocated — the map writes of the DNS path use it.
 */
export function ipv4Number(text: string): number {
  const n = text.length;
  if (n < 7 || n > 15) return -1;
  let v = 0;
  let octet = 0;
  let digits = 0;
  let dots = 0;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c === 46) {
      if (digits === 0 || dots === 3) return -1;
      v = v * 256 + octet;
      octet = 0;
      digits = 0;
      dots++;
      continue;
    }
    const d = c - 48;
    if (d < 0 || d > 9) return -1;
    if (digits === 1 && octet === 0) return -1; // a leading zero
    if (++digits > 3) return -1;
    octet = octet * 10 + d;
    if (octet > 255) return -1;
  }
  if (dots !== 3 || digits === 0) return -1;
  return v * 256 + octet;
}

/** 16 bytes, or null. A zone id (`%eth0`) is accepted and dropped. */
export function parseIPv6(text: string): Uint8Array | null {
  const t = text.replace(/%[^%]+$/, '');
  if (!/^[0-9A-Fa-f:.]+$/.test(t)) return null;
  const halves = t.split('::');
  if (halves.length > 2) return null;
  const words = (s: string, last: boolean): number[] | null => {
    if (s === '') return [];
    const out: number[] = [];
    const parts = s.split(':');
    for (let i = 0; i < parts.length; i++) {
      const p = parts[i]!;
      if (last && i === parts.length - 1 && p.includes('.')) {
        const v4 = parseIPv4(p);
        if (!v4) return null;
        out.push((v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!);
      } else {
        if (!/^[0-9A-Fa-f]{1,4}$/.test(p)) return null;
        out.push(parseInt(p, 16));
      }
    }
    return out;
  };
  const head = words(halves[0]!, halves.length === 1);
  const tail = halves.length === 2 ? words(halves[1]!, true) : [];
  if (!head || !tail) return null;
  const missing = 8 - head.length - tail.length;
  if (halves.length === 2 ? missing < 1 : missing !== 0) return null;
  const out = new Uint8Array(16);
  head.forEach((w, i) => {
    out[2 * i] = w >> 8;
    out[2 * i + 1] = w & 0xff;
  });
  const at = 8 - tail.length;
  tail.forEach((w, i) => {
    out[2 * (at + i)] = w >> 8;
    out[2 * (at + i) + 1] = w & 0xff;
  });
  return out;
}

/** True for `::ffff:a.b.c.d` (16 bytes). */
export function isMappedV4(b: Uint8Array): boolean {
  if (b.length !== 16 || b[10] !== 0xff || b[11] !== 0xff) return false;
  for (let i = 0; i < 10; i++) if (b[i] !== 0) return false;
  return true;
}

/** 4 or 16 bytes; an IPv4-mapped IPv6 address comes back as its 4 IPv4 bytes. */
export function parseIP(text: string): Uint8Array | null {
  if (text.includes(':')) {
    const b = parseIPv6(text);
    return b && isMappedV4(b) ? b.slice(12) : b;
  }
  return parseIPv4(text);
}

export function isIP(text: string): boolean {
  return parseIP(text) !== null;
}

/** The dotted quad of the 4 bytes at `off` (the caller checked the bounds). */
export function formatIPv4At(buf: Uint8Array, off: number): string {
  return `${buf[off]}.${buf[off + 1]}.${buf[off + 2]}.${buf[off + 3]}`;
}

/** RFC 5952 text of the 16 bytes at `off` (the caller checked the bounds). */
export function formatIPv6At(buf: Uint8Array, off: number): string {
  const g = new Array<number>(8);
  for (let i = 0; i < 8; i++) g[i] = (buf[off + 2 * i]! << 8) | buf[off + 2 * i + 1]!;
  let bestAt = -1;
  let bestLen = 1; // a single zero group is not compressed (RFC 5952 §4.2.2)
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) [bestAt, bestLen] = [i, j - i]; // strictly longer: the first run wins a tie
    i = j;
  }
  const hex = (from: number, to: number) => {
    let s = '';
    for (let i = from; i < to; i++) s += (i > from ? ':' : '') + g[i]!.toString(16);
    return s;
  };
  return bestAt < 0 ? hex(0, 8) : `${hex(0, bestAt)}::${hex(bestAt + bestLen, 8)}`;
}

/** Canonical text of 4 or 16 bytes. */
export function formatIP(b: Uint8Array): string {
  if (b.length === 4) return formatIPv4At(b, 0);
  if (b.length === 16) return formatIPv6At(b, 0);
  throw new RangeError(`an IP address has 4 or 16 bytes, not ${b.length}`);
}

/**
 * The canonical text of an IP literal, or undefined when it is not one (a zone id is refused).
 * IPv4-mapped IPv6 stays IPv6 (`::ffff:c000:201`): the registry keys it apart from the IPv4
 * address, as an AAAA answer carrying it is registered.
 */
export function canonicalIp(text: string): string | undefined {
  if (text.includes('%')) return undefined;
  const b = text.includes(':') ? parseIPv6(text) : parseIPv4(text);
  return b ? formatIP(b) : undefined;
}
