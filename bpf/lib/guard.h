/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The leak guard (tc egress on every interface but lo in gateway/intercept mode, on the WAN in
 * host mode; its verdict also in host-mode cgroup_skb egress, lib/sock.h). It runs after XFRM: a packet XFRM encrypted leaves as ESP
 * (or ESP-in-UDP) with the outer destination = the tunnel gateway or, in transport mode, the peer.
 * Anything else to a protected destination, or anything carrying a dnsseal mark, that is still in
 * clear here means XFRM did not take it (no policy, no SA, charon down, route changed): drop it.
 * An entry flagged DNSSEAL_DEST_F_BLOCKED gets nothing through but IKE and neighbour discovery.
 * DNSSEAL_DEST_F_RETIRED changes nothing here (the entry is steered like a live one; its packets
 * are counted where they are marked, so none is counted twice).
 */
#ifndef DNSSEAL_LIB_GUARD_H
#define DNSSEAL_LIB_GUARD_H

#include "common.h"
#include "lookup.h"
#include "parse.h"
#include "tls_guard.h"

/*
 * The verdict on a packet that is ours (`v`: its protected destination's entry, or NULL when it
 * only carries a dnsseal mark), after XFRM: DNSSEAL_TC_PASS or DNSSEAL_TC_DROP, counted either
 * way. Shared by the tc guard and host-mode cgroup egress.
 */
static __always_inline int dnsseal_guard_verdict(struct __sk_buff *skb, const struct dnsseal_pkt *p, struct dnsseal_dest_val *v)
{
	int blocked = 0;
	__u32 reason;

	if (v) {
		dnsseal_stamp(v);
		blocked = (v->flags & DNSSEAL_DEST_F_BLOCKED) != 0;
	}

	/* ESP, also a non-first fragment of it (the protocol field is in every fragment). */
	if (p->proto == IPPROTO_ESP && !blocked) {
		dnsseal_count(DNSSEAL_CNT_GUARD_PASS, DNSSEAL_PASS_ESP, skb->len);
		return DNSSEAL_TC_PASS;
	}
	if (p->exthdr_deep) {
		reason = DNSSEAL_DROP_EXTHDR;
		goto drop;
	}
	/* No L4 header: could be anything, so it cannot be shown to be ESP-in-UDP or IKE. */
	if (p->nonfirst_frag) {
		reason = DNSSEAL_DROP_FRAGMENT;
		goto drop;
	}
	if (dnsseal_pkt_is_nd(p)) {
		dnsseal_count(DNSSEAL_CNT_GUARD_PASS, DNSSEAL_PASS_ND, skb->len);
		return DNSSEAL_TC_PASS;
	}
	if (p->proto == IPPROTO_UDP) {
		if (p->l4_short) {
			reason = DNSSEAL_DROP_MALFORMED;
			goto drop;
		}
		/* ESP-in-UDP is told by the SA's output mark, not by its ports: an application (or a LAN
		 * client) can send clear UDP 4500 → 4500 too. */
		if (skb->mark == DNSSEAL_MARK_ENCRYPTED && !blocked) {
			dnsseal_count(DNSSEAL_CNT_GUARD_PASS, DNSSEAL_PASS_ESPINUDP, skb->len);
			return DNSSEAL_TC_PASS;
		}
		/* charon's own IKE / NAT-T, by its socket (never by port number; a forwarded packet has
		 * no socket). A blocked channel must still be able to come up: IKE stays exempt. */
		if (dnsseal_skb_from_charon(skb)) {
			dnsseal_count(DNSSEAL_CNT_GUARD_PASS, DNSSEAL_PASS_IKE, skb->len);
			return DNSSEAL_TC_PASS;
		}
	}
	reason = blocked ? DNSSEAL_DROP_BLOCKED : v ? DNSSEAL_DROP_PLAIN_PROTECTED : DNSSEAL_DROP_MARKED_PLAIN;
drop:
	dnsseal_count(DNSSEAL_CNT_GUARD_DROP, reason, skb->len);
	return DNSSEAL_TC_DROP;
}

/*
 * `by_mark` (a constant at each call site): 1 on the uplinks (tc egress: a packet carrying a
 * dnsseal mark is ours even to an unprotected address), 0 on the LAN ones (dnsseal_lan_out):
 * there the packets XFRM decrypted for LAN clients carry the channel mark (set_mark_in), so only
 * the destination says whether a packet is ours.
 */
static __always_inline int dnsseal_guard_on(struct __sk_buff *skb, int by_mark)
{
	struct dnsseal_pkt p;
	struct dnsseal_dest_val *v;
	int marked = by_mark && dnsseal_mark_is_ours(skb->mark);
	int r = dnsseal_parse(skb, &p);

	if (r == DNSSEAL_PARSE_NOT_IP)
		return DNSSEAL_TC_PASS;
	if (r == DNSSEAL_PARSE_SHORT) {
		/* No readable destination: only a packet we marked is known to be ours. */
		if (!marked)
			return DNSSEAL_TC_PASS;
		dnsseal_count(DNSSEAL_CNT_GUARD_DROP, DNSSEAL_DROP_MALFORMED, skb->len);
		return DNSSEAL_TC_DROP;
	}

	v = dnsseal_dest_lookup(dnsseal_client_group(&p.src), &p.dst);
	if (!v && !marked)
		return DNSSEAL_TC_PASS;
	/* From here on the packet is ours (protected destination or our mark): not the hot path. */
	if (v && dnsseal_tls_guard(skb, &p, v, &r)) {
		dnsseal_stamp(v);
		return r;
	}
	return dnsseal_guard_verdict(skb, &p, v);
}

static __always_inline int dnsseal_guard(struct __sk_buff *skb)
{
	return dnsseal_guard_on(skb, 1);
}

/* The guard on LAN egress: a packet to a protected address routed back out of a LAN interface. */
static __always_inline int dnsseal_guard_lan(struct __sk_buff *skb)
{
	return dnsseal_guard_on(skb, 0);
}

#endif
