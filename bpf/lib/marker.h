/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The LAN marker (tc ingress, gateway mode): (client group, destination) found in dnsseal_dests
 * → skb->mark = the channel's mark, before the route lookup, so the forwarded packet meets the
 * channel's XFRM policy (which selects on the mark). Never drops (the guard decides on egress),
 * but for a tls channel's TCP without a relay socket to hand it to (lib/tls_steer.h).
 * A retired entry is marked like a live one; its packets are also counted in DNSSEAL_CNT_RETIRED.
 */
#ifndef DNSSEAL_LIB_MARKER_H
#define DNSSEAL_LIB_MARKER_H

#include "common.h"
#include "lookup.h"
#include "parse.h"
#include "tls_steer.h"

static __always_inline int dnsseal_mark_lan(struct __sk_buff *skb)
{
	struct dnsseal_pkt p;
	struct dnsseal_dest_val *v;
	int verdict;

	if (dnsseal_parse(skb, &p) != DNSSEAL_PARSE_OK)
		return DNSSEAL_TC_PASS;
	v = dnsseal_dest_lookup(dnsseal_client_group(&p.src), &p.dst);
	if (!v)
		return DNSSEAL_TC_PASS;
	if (dnsseal_tls_steer(skb, &p, v, &verdict)) {
		dnsseal_stamp(v);
		return verdict;
	}
	/* Counted once per packet: the intercept NAT (clsact: before this program) counts its own and
	 * leaves the mark set already. */
	if ((v->flags & DNSSEAL_DEST_F_RETIRED) && skb->mark != v->mark)
		dnsseal_count(DNSSEAL_CNT_RETIRED, v->channel_id, skb->len);
	skb->mark = v->mark;
	dnsseal_stamp(v);
	dnsseal_count(DNSSEAL_CNT_MARKED, v->channel_id, skb->len);
	return DNSSEAL_TC_PASS;
}

#endif
