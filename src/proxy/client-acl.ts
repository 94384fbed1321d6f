/**
 * `allow_clients` (issue 12, access control): which senders may query. A query from any other
 * address is answered REFUSED (`dnsseal_proxy_queries_total{outcome="refused"}`) — an open
 * resolver on a public address answers the world and amplifies floods.
 *
 * The sender is the packet's source, not a client a trusted forwarder names in EDNS Client
 * Subnet (the forwarder itself must be allowed). `::ffff:a.b.c.d` counts as IPv4. Lookups are
 * memoised per address text (src/policy/client-lookup.ts, bounded). `set` swaps the whole list
 * in one assignment (a reload).
 *
 * The default (`allow_clients` unset or empty): loopback plus the LAN prefixes — the network
 * prefixes of the `lan` interfaces' addresses, read at start (and at a reload that changes the
 * setting), as tunnels' local traffic selectors are (src/ipsec/lan-prefixes.ts).
 */
import { parseCidr } from '../policy/cidr.ts';
import { ClientLookup } from '../policy/client-lookup.ts';

export const LOOPBACK = ['127.0.0.0/8', '::1/128'];

export class ClientAcl {
  private lookup: ClientLookup<true>;
  private list: string[];

  /** `cidrs`: checked already (config); an unparsable one throws. */
  constructor(cidrs: readonly string[]) {
    this.list = [...cidrs];
    this.lookup = ClientAcl.build(this.list);
  }

  private static build(cidrs: readonly string[]): ClientLookup<true> {
    const l = new ClientLookup<true>();
    for (const c of cidrs) l.add(parseCidr(c), true);
    return l;
  }

  /** Whether `address` (a sender's address text) may query. */
  allows(address: string): boolean {
    return this.lookup.lookup(address) === true;
  }

  /** The CIDRs allowed now. */
  get cidrs(): string[] {
    return [...this.list];
  }

  /** Replaces the list (throws, changing nothing, when a CIDR does not parse). */
  set(cidrs: readonly string[]): void {
    const next = ClientAcl.build(cidrs);
    this.list = [...cidrs];
    this.lookup = next;
  }
}

/** The CIDRs `allow_clients` stands for: the list itself, or (empty) loopback plus the LAN prefixes. */
export function allowedClients(configured: readonly string[], lanPrefixes: () => string[]): string[] {
  return configured.length > 0 ? [...configured] : [...LOOPBACK, ...lanPrefixes()];
}
