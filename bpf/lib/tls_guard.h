/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The leak guard's rule for tls channels (issue 13), called by lib/guard.h for a packet to a
 * protected address: nothing but the relay's TLS may leave for a tls-channel address. Lets
 * through TCP to the channel's tls_port (a `peer` channel: the relay connects to the address
 * itself) and ICMPv6 neighbour discovery; drops everything else, counted by reason: not TCP
 * (UDP, ICMP, ESP, …: DNSSEAL_DROP_TLS_NOT_TCP), TCP to another port (it bypassed the relay:
 * DNSSEAL_DROP_TLS_BYPASS), a non-first fragment (no port to check: DNSSEAL_DROP_FRAGMENT).
 * Returns 0 when the address is not a tls channel's (the IPsec rules go on), else 1 with the
 * tc verdict in *verdict.
 */
#ifndef DNSSEAL_LIB_TLS_GUARD_H
#define DNSSEAL_LIB_TLS_GUARD_H

#include "common.h"
#include "lookup.h"
#include "parse.h"
#include "tls_maps.h"

static __always_inline int dnsseal_tls_guard(struct __sk_buff *skb, const struct dnsseal_pkt *p, const struct dnsseal_dest_val *v, int *verdict)
{
	struct dnsseal_channel_val *ch = dnsseal_tls_channel(v);
	__u32 reason;

	if (!ch)
		return 0;
	*verdict = DNSSEAL_TC_PASS;
	if (dnsseal_pkt_is_nd(p)) {
		dnsseal_count(DNSSEAL_CNT_GUARD_PASS, DNSSEAL_PASS_ND, skb->len);
		return 1;
	}
	if (p->nonfirst_frag) {
		reason = DNSSEAL_DROP_FRAGMENT;
	} else if (p->proto != IPPROTO_TCP) {
		reason = DNSSEAL_DROP_TLS_NOT_TCP;
	} else if (p->l4_short || p->exthdr_deep) {
		reason = DNSSEAL_DROP_MALFORMED;
	} else if (ch->tls_port && p->dport == bpf_ntohs(ch->tls_port) && !(v->flags & DNSSEAL_DEST_F_BLOCKED)) {
		dnsseal_count(DNSSEAL_CNT_GUARD_PASS, DNSSEAL_PASS_TLS, skb->len);
		return 1;
	} else {
		reason = DNSSEAL_DROP_TLS_BYPASS;
	}
	dnsseal_count(DNSSEAL_CNT_GUARD_DROP, reason, skb->len);
	*verdict = DNSSEAL_TC_DROP;
	return 1;
}

/*
 * The inbound half for tls channels (lib/inbound.h): from a tls-channel address only TCP from its
 * tls_port (the peer's TLS, answering the relay) and ICMPv6 neighbour discovery are accepted;
 * anything else is a clear packet from a protected address (DNSSEAL_DROP_IN_PLAIN, fragments
 * DNSSEAL_DROP_IN_FRAGMENT). Returns 0 when the address is not a tls channel's.
 */
static __always_inline int dnsseal_tls_inbound(struct __sk_buff *skb, const struct dnsseal_pkt *p, const struct dnsseal_dest_val *v, int *verdict)
{
	struct dnsseal_channel_val *ch = dnsseal_tls_channel(v);
	__u32 reason;

	if (!ch)
		return 0;
	*verdict = DNSSEAL_TC_PASS;
	if (dnsseal_pkt_is_nd(p)) {
		dnsseal_count(DNSSEAL_CNT_GUARD_PASS, DNSSEAL_PASS_ND, skb->len);
		return 1;
	}
	if (p->nonfirst_frag || p->exthdr_deep) {
		reason = DNSSEAL_DROP_IN_FRAGMENT;
	} else if (p->proto == IPPROTO_TCP && !p->l4_short && ch->tls_port && p->sport == bpf_ntohs(ch->tls_port) &&
		   !(v->flags & DNSSEAL_DEST_F_BLOCKED)) {
		dnsseal_count(DNSSEAL_CNT_GUARD_PASS, DNSSEAL_PASS_TLS, skb->len);
		return 1;
	} else {
		reason = DNSSEAL_DROP_IN_PLAIN;
	}
	dnsseal_count(DNSSEAL_CNT_GUARD_DROP, reason, skb->len);
	*verdict = DNSSEAL_TC_DROP;
	return 1;
}

#endif
