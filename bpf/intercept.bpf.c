// SPDX-License-Identifier: Apache-2.0
/*
 * dnsseal intercept object (#6): the intercept-address NAT, a second object next to
 * dnsseal.bpf.o. It shares dnsseal_dests / dnsseal_clients / dnsseal_counters with it by pin
 * path (src/intercept/ebpf-loader.ts) and owns dnsseal_icpt_fwd / dnsseal_icpt_rev.
 * Both programs return TC_ACT_UNSPEC (= TCX_NEXT) for everything they do not drop, so they
 * chain with the LAN marker in either order (tcx multi-attach, or clsact with distinct prefs).
 */
#include "lib/common.h"
#include "lib/maps.h"
#include "lib/lookup.h"
#include "lib/intercept_maps.h"
#include "lib/intercept_nat.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Hook: tc ingress (tcx or clsact) on LAN interfaces, intercept mode. Direction: client → node,
 * before routing: intercept destination → real address, channel mark set; last_seen stamped. */
SEC("tc")
int dnsseal_nat_in(struct __sk_buff *skb)
{
	return dnsseal_icpt_ingress(skb);
}

/* Hook: tc egress (tcx or clsact) on LAN interfaces, intercept mode. Direction: node → client:
 * real source → intercept address; ICMP errors quoting a packet to the real address fixed too. */
SEC("tc")
int dnsseal_nat_out(struct __sk_buff *skb)
{
	return dnsseal_icpt_egress(skb);
}
