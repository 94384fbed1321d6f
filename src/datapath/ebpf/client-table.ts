/**
 * The client table as the programs read it from dnsseal_config when it is small (bpf/dnsseal.h
 * struct dnsseal_config): per source family, the CIDRs that can match it, longest prefix first,
 * so the first match is what the dnsseal_clients LPM trie would answer.
 *
 * The trie holds IPv4 CIDRs IPv4-mapped (::ffff:a.b.c.d, prefix + 96) next to the IPv6 ones, so
 * an IPv6 CIDR of prefix < 96 that covers ::ffff:0:0/96 (::/0, ::/64, …) matches IPv4 clients
 * too: it goes into the IPv4 list as 0.0.0.0/0, ranked by its own prefix. IPv4 CIDRs never match
 * an IPv6 client (the programs fold IPv4-mapped sources into IPv4 before they classify).
 */
import { parseCidr } from '../../policy/cidr.ts';
import { DnssealError } from '../../util/errors.ts';
import { CFG_CLIENTS, GROUP_DEFAULT } from '../layout.ts';

export interface InlineClient {
  /** Network order, host bits zero: 4 bytes (IPv4 list) or 16 (IPv6 list). */
  net: Uint8Array;
  mask: Uint8Array;
  group: number;
  /** Prefix length as the trie ranks it (IPv4: 96 + prefix). */
  rank: number;
}

export interface InlineClientTable {
  v4: InlineClient[];
  v6: InlineClient[];
}

const MAPPED_PREFIX = new Uint8Array([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff]);

function mask(bytes: number, prefix: number): Uint8Array {
  const m = new Uint8Array(bytes);
  for (let i = 0; i < bytes; i++) {
    const bits = Math.max(0, Math.min(8, prefix - i * 8));
    m[i] = bits === 0 ? 0 : (0xff << (8 - bits)) & 0xff;
  }
  return m;
}

/** True when the IPv6 CIDR (net, prefix < 96) contains every IPv4-mapped address. */
function coversMapped(net: Uint8Array, prefix: number): boolean {
  const m = mask(12, prefix);
  return MAPPED_PREFIX.every((b, i) => (b & m[i]!) === net[i]);
}

/**
 * Compiles `entries` (as given to setClientGroups) into the per-family lists, or returns
 * undefined when a family would need more than DNSSEAL_CFG_CLIENTS entries (the programs then
 * use the LPM trie). Every client in the default group: two empty lists. A CIDR given twice
 * keeps its last group, as the trie does.
 */
export function compileClientTable(entries: { cidr: string; group: number }[]): InlineClientTable | undefined {
  const byKey = new Map<string, { bytes: Uint8Array; prefix: number; group: number }>();
  for (const e of entries) {
    let c;
    try {
      c = parseCidr(e.cidr);
    } catch (err) {
      throw new DnssealError('datapath', 'bad_cidr', `client CIDR ${e.cidr}: ${(err as Error).message}`);
    }
    byKey.set(c.text, { bytes: c.bytes, prefix: c.prefix, group: e.group });
  }
  const table: InlineClientTable = { v4: [], v6: [] };
  if ([...byKey.values()].every((e) => e.group === GROUP_DEFAULT)) return table;
  for (const e of byKey.values()) {
    if (e.bytes.length === 4) {
      table.v4.push({ net: e.bytes, mask: mask(4, e.prefix), group: e.group, rank: 96 + e.prefix });
      continue;
    }
    table.v6.push({ net: e.bytes, mask: mask(16, e.prefix), group: e.group, rank: e.prefix });
    if (e.prefix < 96 && coversMapped(e.bytes, e.prefix)) {
      table.v4.push({ net: new Uint8Array(4), mask: new Uint8Array(4), group: e.group, rank: e.prefix });
    }
  }
  // Stable sort: equal ranks are disjoint CIDRs (or the one 0.0.0.0/0 above), so order among them does not matter.
  table.v4.sort((a, b) => b.rank - a.rank);
  table.v6.sort((a, b) => b.rank - a.rank);
  if (table.v4.length > CFG_CLIENTS || table.v6.length > CFG_CLIENTS) return undefined;
  return table;
}
