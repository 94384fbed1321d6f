/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Host mode: socket hooks on the cgroup v2 root. connect()/sendmsg() to a protected destination
 * (group DNSSEAL_GROUP_DEFAULT) sets SO_MARK so the route/XFRM lookup that follows selects the
 * channel's policy, whatever the port: only charon's own sockets (dnsseal_ike_socks) are never
 * marked, or IKE itself would be sent into XFRM. A socket that carries a dnsseal mark and now talks to an unprotected address
 * gets mark 0 back, so a mark never sticks to an unconnected UDP socket.
 * A destination of a `protocol: tls` channel is never marked (no XFRM policy selects it): a TCP
 * connect goes to the relay instead (lib/tls_redirect.h), anything else leaves unmarked and the
 * guard drops it.
 * Limitation (kernel): udp_sendmsg reads sk_mark before the sendmsg hook runs, so the FIRST
 * datagram of an unconnected socket to a protected address leaves unmarked — the guard drops it.
 */
#ifndef DNSSEAL_LIB_SOCK_H
#define DNSSEAL_LIB_SOCK_H

#include "common.h"
#include "lookup.h"
#include "parse.h"
#include "guard.h"
#include "tls_redirect.h"

static __always_inline int dnsseal_sock_apply(struct bpf_sock_addr *ctx, const struct dnsseal_addr *dst, int v6)
{
	struct dnsseal_dest_val *v;
	struct bpf_sock *sk = ctx->sk;
	__u32 mark;

	v = dnsseal_dest_lookup(DNSSEAL_GROUP_DEFAULT, dst);
	/* A tls channel has no XFRM policy to mark for: its TCP goes to the relay (lib/tls_redirect.h). */
	if (v && dnsseal_tls_channel(v)) {
		dnsseal_stamp(v);
		return dnsseal_tls_connect(ctx, dst, v6);
	}
	if (v) {
		/* charon's IKE / NAT-T sockets are never marked (by socket, not by port number); one
		 * marked before it was known to be charon's gets mark 0 back. */
		if (dnsseal_sk_is_charon(sk)) {
			if (dnsseal_mark_is_ours(sk->mark)) {
				mark = 0;
				bpf_setsockopt(ctx, SOL_SOCKET, SO_MARK, &mark, sizeof(mark));
			}
			return DNSSEAL_CG_ALLOW;
		}
		mark = v->mark;
		if (!sk || sk->mark != mark) {
			bpf_setsockopt(ctx, SOL_SOCKET, SO_MARK, &mark, sizeof(mark));
			dnsseal_count(DNSSEAL_CNT_SOCK_MARKED, v->channel_id, 0);
		}
		dnsseal_stamp(v);
		return DNSSEAL_CG_ALLOW;
	}
	if (sk && dnsseal_mark_is_ours(sk->mark)) {
		mark = 0;
		bpf_setsockopt(ctx, SOL_SOCKET, SO_MARK, &mark, sizeof(mark));
	}
	return DNSSEAL_CG_ALLOW;
}

static __always_inline int dnsseal_sock4(struct bpf_sock_addr *ctx)
{
	struct dnsseal_addr dst;

	dnsseal_addr_from_v4(&dst, ctx->user_ip4);
	return dnsseal_sock_apply(ctx, &dst, 0);
}

static __always_inline int dnsseal_sock6(struct bpf_sock_addr *ctx)
{
	struct dnsseal_addr dst;
	__be32 w[4];

	w[0] = ctx->user_ip6[0];
	w[1] = ctx->user_ip6[1];
	w[2] = ctx->user_ip6[2];
	w[3] = ctx->user_ip6[3];
	dnsseal_addr_from_v6(&dst, w);
	return dnsseal_sock_apply(ctx, &dst, 1);
}

/*
 * Host egress (cgroup_skb egress on the root cgroup: every local socket, raw sockets included,
 * whatever interface the packet leaves by). It runs AFTER XFRM: a packet XFRM took arrives here
 * as ESP (transport mode: to the peer; tunnel mode: to the gateway), one XFRM did not take
 * arrives in clear. So it is the leak guard's verdict (lib/guard.h) at the socket level: a packet
 * to a protected destination (group DNSSEAL_GROUP_DEFAULT) or carrying a dnsseal mark that is not
 * ESP, ESP-in-UDP, IKE or neighbour discovery is dropped (the sender sees EPERM) and counted.
 * A packet to a protected destination also counts in DNSSEAL_CNT_HOST_SENT (and in
 * DNSSEAL_CNT_RETIRED for a retired entry) and stamps last_seen.
 * skb->data starts at the network header here.
 */
static __always_inline int dnsseal_host_egress(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	struct dnsseal_addr dst;
	struct dnsseal_dest_val *v;
	struct dnsseal_pkt p;
	int marked = dnsseal_mark_is_ours(skb->mark);

	/* The local stack builds the IP header in the linear area, so it is read in place; the
	 * helper (a call per packet) only when it is not there. */
	if (skb->protocol == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = data;
		__be32 d;

		if ((void *)(ip + 1) <= end)
			d = ip->daddr;
		else if (bpf_skb_load_bytes(skb, offsetof(struct iphdr, daddr), &d, sizeof(d)))
			goto short_hdr;
		dnsseal_addr_from_v4(&dst, d);
	} else if (skb->protocol == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = data;
		__be32 w[4];

		if ((void *)(ip6 + 1) <= end) {
			w[0] = ip6->daddr.in6_u.u6_addr32[0];
			w[1] = ip6->daddr.in6_u.u6_addr32[1];
			w[2] = ip6->daddr.in6_u.u6_addr32[2];
			w[3] = ip6->daddr.in6_u.u6_addr32[3];
		} else if (bpf_skb_load_bytes(skb, offsetof(struct ipv6hdr, daddr), w, sizeof(w))) {
			goto short_hdr;
		}
		dnsseal_addr_from_v6(&dst, w);
	} else {
		return DNSSEAL_CG_ALLOW;
	}
	v = dnsseal_dest_lookup(DNSSEAL_GROUP_DEFAULT, &dst);
	if (!v && !marked)
		return DNSSEAL_CG_ALLOW;
	/* Routed to loopback (a protected address that is local, in this or another namespace of
	 * the host): it never leaves the machine, so it cannot leave in clear. */
	if (skb->ifindex == DNSSEAL_LOOPBACK_IFINDEX)
		return DNSSEAL_CG_ALLOW;
	/* Ours (protected destination or our mark): not the hot path. */
	if (v) {
		dnsseal_count(DNSSEAL_CNT_HOST_SENT, v->channel_id, skb->len);
		if (v->flags & DNSSEAL_DEST_F_RETIRED)
			dnsseal_count(DNSSEAL_CNT_RETIRED, v->channel_id, skb->len);
	}
	if (dnsseal_parse_l3(skb, &p) == DNSSEAL_PARSE_OK) {
		int r;

		/* A tls channel's address: only TCP to its TLS port (the relay's) leaves, as on tc. */
		if (!(v && dnsseal_tls_guard(skb, &p, v, &r)))
			r = dnsseal_guard_verdict(skb, &p, v);
		else
			dnsseal_stamp(v);
		return r == DNSSEAL_TC_PASS ? DNSSEAL_CG_ALLOW : DNSSEAL_CG_DENY;
	}
	goto drop_short;

short_hdr:
	/* No readable destination: only a packet we marked is known to be ours. */
	if (!marked)
		return DNSSEAL_CG_ALLOW;
drop_short:
	dnsseal_count(DNSSEAL_CNT_GUARD_DROP, DNSSEAL_DROP_MALFORMED, skb->len);
	return DNSSEAL_CG_DENY;
}

#endif
