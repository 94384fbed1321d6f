/**
 * Client groups behind a resolver (issue 11 item 8). With a forwarder in front of dnsseal
 * (dnsmasq on OpenWrt forwarding to it) every query comes from the forwarder's address, so
 * every client would be classified into the forwarder's group while the LAN marker classifies
 * packets by the client's own address: nothing would match. A forwarder configured as trusted
 * names the client in EDNS Client Subnet (dnsmasq `--add-subnet=32,128`); its full-length
 * source prefix (/32, /128) is the address the query is classified by.
 *
 * Anything else is ignored for classification — the sender's own address counts: a shorter
 * prefix (a network, not a client), a malformed option, no option, and an ECS option from a
 * sender that is not a trusted forwarder (it never changes its group). Every case is counted.
 * The option itself never goes upstream (the upstream query carries our own OPT only).
 */
import type { ParsedQuery } from '../dns/query.ts';
import { ClientLookup } from '../policy/client-lookup.ts';
import { parseCidr } from '../policy/cidr.ts';
import { namedClient } from '../policy-server/client-subnet.ts';
import { DnssealError } from '../util/errors.ts';

/** How a query's classification address was found (`dnsseal_proxy_client_subnet_total{result}`). */
export type ClientSubnetResult = 'used' | 'absent' | 'partial' | 'malformed' | 'untrusted';

export class TrustedForwarders {
  private readonly trusted = new ClientLookup<true>();

  /** `cidrs`: the forwarders' addresses (CIDR or bare address); throws on a malformed one. */
  constructor(
    cidrs: readonly string[],
    private readonly counts: Record<ClientSubnetResult, number>,
  ) {
    for (const c of cidrs) {
      try {
        this.trusted.add(parseCidr(c), true);
      } catch (err) {
        throw new DnssealError('proxy', 'trusted_forwarder_invalid', `trusted forwarder "${c}" is not a CIDR or an address`, { cause: err });
      }
    }
  }

  /** The address `query`, received from `sender`, is classified by. */
  clientOf(query: ParsedQuery, sender: string): string {
    const ecs = query.edns?.clientSubnet ?? null;
    if (this.trusted.lookup(sender) === undefined) {
      if (ecs !== null) this.counts.untrusted++;
      return sender;
    }
    if (ecs === null) {
      this.counts.absent++;
      return sender;
    }
    const named = ecs === 'malformed' ? ({ kind: 'malformed' } as const) : namedClient(ecs);
    if (named.kind !== 'client') {
      this.counts[named.kind]++;
      return sender;
    }
    this.counts.used++;
    return named.address;
  }
}
