/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Gateway mode, tls channels (issue 13), called by the LAN marker (lib/marker.h) for a packet to
 * a protected address: a LAN client's TCP to a tls channel's address goes to the relay, which
 * sees the original destination as its accepted socket's own address.
 *
 * Every TCP packet of such a flow gets DNSSEAL_TLS_LOCAL_MARK, which a policy route delivers
 * locally (`ip rule fwmark … lookup DNSSEAL_TLS_TABLE` + `local default dev lo` there; userspace
 * installs them). A packet of a connection the relay already has (established, or a request
 * socket during the handshake) is then found by the stack's own lookup; any other (a SYN) is
 * assigned to the relay's listening socket (bpf_sk_assign), found by its address in
 * dnsseal_tls_config. The relay's listener is transparent (IP_TRANSPARENT, set by userspace) so
 * it answers from the original address. Fail closed: no relay socket: the packet is dropped
 * (DNSSEAL_TLS_CNT_NO_RELAY); a packet forwarded with a socket assigned is dropped by the
 * kernel (ip_forward), and without the policy route the mark makes the guard drop it.
 * Not TCP: left unmarked, forwarded, and dropped by the guard (DNSSEAL_DROP_TLS_NOT_TCP).
 * A local listener of the original port (the router's own service on 0.0.0.0) is not taken for
 * the relay: only a non-listening socket of the exact connection counts as "already there".
 */
#ifndef DNSSEAL_LIB_TLS_STEER_H
#define DNSSEAL_LIB_TLS_STEER_H

#include "common.h"
#include "lookup.h"
#include "parse.h"
#include "tls_maps.h"

#ifndef BPF_F_CURRENT_NETNS
#define BPF_F_CURRENT_NETNS (-1L)
#endif

/* Returns 0 when the address is not a tls channel's, else 1 with the tc verdict in *verdict. */
static __always_inline int dnsseal_tls_steer(struct __sk_buff *skb, const struct dnsseal_pkt *p, const struct dnsseal_dest_val *v, int *verdict)
{
	struct bpf_sock_tuple t = {};
	struct dnsseal_tls_config *cfg;
	struct bpf_sock *sk;
	__u32 zero = 0, size;
	long err;

	if (!dnsseal_tls_channel(v))
		return 0;
	*verdict = DNSSEAL_TC_PASS;
	if (p->proto != IPPROTO_TCP || p->nonfirst_frag || p->l4_short || p->exthdr_deep)
		return 1;
	skb->mark = DNSSEAL_TLS_LOCAL_MARK;
	size = dnsseal_pkt_tuple(p, &t);
	sk = bpf_skc_lookup_tcp(skb, &t, size, BPF_F_CURRENT_NETNS, 0);
	if (sk) {
		int listening = sk->state == BPF_TCP_LISTEN;

		bpf_sk_release(sk);
		if (!listening)
			return 1;
	}
	cfg = DNSSEAL_LOOKUP(dnsseal_tls_config, &zero);
	if (!cfg)
		goto drop;
	if (p->src.family == DNSSEAL_FAMILY_V4) {
		if (!(cfg->flags & DNSSEAL_TLS_F_RELAY4))
			goto drop;
		t.ipv4.daddr = cfg->addr4;
		t.ipv4.dport = cfg->port4;
	} else {
		if (!(cfg->flags & DNSSEAL_TLS_F_RELAY6))
			goto drop;
		__builtin_memcpy(t.ipv6.daddr, cfg->addr6, 16);
		t.ipv6.dport = cfg->port6;
	}
	sk = bpf_sk_lookup_tcp(skb, &t, size, BPF_F_CURRENT_NETNS, 0);
	if (!sk)
		goto drop;
	if (sk->state != BPF_TCP_LISTEN) {
		bpf_sk_release(sk);
		goto drop;
	}
	err = bpf_sk_assign(skb, sk, 0);
	bpf_sk_release(sk);
	if (err)
		goto drop;
	dnsseal_tls_count(DNSSEAL_TLS_CNT_STEERED, skb->len);
	return 1;
drop:
	dnsseal_tls_count(DNSSEAL_TLS_CNT_NO_RELAY, skb->len);
	*verdict = DNSSEAL_TC_DROP;
	return 1;
}

#endif
