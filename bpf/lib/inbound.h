/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The inbound guard (tc ingress on every interface but lo and the LAN ones in gateway/intercept
 * mode, on every interface but lo in host mode). A packet FROM a protected address is accepted
 * only as what the channel's IPsec brings in:
 *   - ESP (XFRM decrypts it);
 *   - a packet XFRM already decrypted: it carries a secpath (a tunnel-mode inner packet re-enters
 *     tc ingress; ESP GRO decrypts before tc);
 *   - UDP to one of charon's own sockets (dnsseal_ike_socks): IKE, and ESP-in-UDP, which the
 *     kernel decapsulates on charon's NAT-T socket;
 *   - ICMPv6 neighbour discovery (an on-link peer must stay resolvable).
 * From a `protocol: tls` channel's address: only TCP from its tls_port (lib/tls_guard.h).
 * Anything else — a spoofed clear UDP or TCP packet claiming to come from a protected peer — is
 * dropped and counted (DNSSEAL_DROP_IN_*). The entry is looked up in the group of the receiving
 * client (the destination), chosen as the LAN marker chooses it for that client's own packets.
 */
#ifndef DNSSEAL_LIB_INBOUND_H
#define DNSSEAL_LIB_INBOUND_H

#include "common.h"
#include "lookup.h"
#include "parse.h"
#include "tls_guard.h"

#ifndef BPF_F_CURRENT_NETNS
#define BPF_F_CURRENT_NETNS (-1L)
#endif

/* The local socket a UDP packet is addressed to is one of charon's. */
static __always_inline int dnsseal_in_to_charon(struct __sk_buff *skb, const struct dnsseal_pkt *p)
{
	struct bpf_sock_tuple t;
	struct bpf_sock *sk;
	__u32 size;
	int ours;

	size = dnsseal_pkt_tuple(p, &t);
	/* An IPv6 packet with IPv4-mapped addresses folds to family 4 here: looked up as IPv4 it
	 * finds no socket of charon's, and is dropped (no peer sends such a thing). */
	sk = bpf_sk_lookup_udp(skb, &t, size, BPF_F_CURRENT_NETNS, 0);
	if (!sk)
		return 0;
	ours = dnsseal_sk_is_charon(sk);
	bpf_sk_release(sk);
	return ours;
}

static __always_inline int dnsseal_inbound(struct __sk_buff *skb)
{
	struct bpf_xfrm_state x;
	struct dnsseal_pkt p;
	struct dnsseal_dest_val *v;
	__u32 reason;
	int r;

	if (dnsseal_parse(skb, &p) != DNSSEAL_PARSE_OK)
		return DNSSEAL_TC_PASS; /* no source known: nothing to match (the stack drops a bad header) */
	v = dnsseal_dest_lookup(dnsseal_client_group(&p.dst), &p.src);
	if (!v)
		return DNSSEAL_TC_PASS;
	/* From a protected address: not the hot path. A tls channel's: only its peer's TLS. */
	if (dnsseal_tls_inbound(skb, &p, v, &r))
		return r;
	if (p.proto == IPPROTO_ESP) {
		dnsseal_count(DNSSEAL_CNT_GUARD_PASS, DNSSEAL_PASS_IN_ESP, skb->len);
		return DNSSEAL_TC_PASS;
	}
	if (bpf_skb_get_xfrm_state(skb, 0, &x, sizeof(x), 0) == 0) {
		dnsseal_count(DNSSEAL_CNT_GUARD_PASS, DNSSEAL_PASS_IN_DECRYPTED, skb->len);
		return DNSSEAL_TC_PASS;
	}
	if (p.exthdr_deep || p.nonfirst_frag) {
		reason = DNSSEAL_DROP_IN_FRAGMENT;
		goto drop;
	}
	if (dnsseal_pkt_is_nd(&p)) {
		dnsseal_count(DNSSEAL_CNT_GUARD_PASS, DNSSEAL_PASS_ND, skb->len);
		return DNSSEAL_TC_PASS;
	}
	if (p.proto == IPPROTO_UDP && !p.l4_short && dnsseal_in_to_charon(skb, &p)) {
		dnsseal_count(DNSSEAL_CNT_GUARD_PASS, DNSSEAL_PASS_IN_IKE, skb->len);
		return DNSSEAL_TC_PASS;
	}
	reason = DNSSEAL_DROP_IN_PLAIN;
drop:
	dnsseal_count(DNSSEAL_CNT_GUARD_DROP, reason, skb->len);
	return DNSSEAL_TC_DROP;
}

#endif
