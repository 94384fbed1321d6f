/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Header parsing for the tc programs (Ethernet devices: skb->data starts at the MAC header) and
 * for cgroup_skb (skb->data starts at the network header, the family is skb->protocol).
 * Every header is bounds-checked before it is read. Headers outside the linear area (GSO,
 * paged skbs) are pulled in once and parsing restarts.
 */
#ifndef DNSSEAL_LIB_PARSE_H
#define DNSSEAL_LIB_PARSE_H

#include "common.h"
#include "lookup.h"

/* IPv6 extension headers followed before giving up (hop-by-hop, routing, fragment, dstopts, AH). */
#define DNSSEAL_MAX_EXTHDR 4
/* Bytes pulled into the linear area when headers are paged: Ethernet + IPv6 + ext headers + UDP. */
#define DNSSEAL_PULL_LEN 192

enum {
	DNSSEAL_PARSE_OK = 0,
	DNSSEAL_PARSE_NOT_IP = 1, /* not IPv4/IPv6: never ours */
	DNSSEAL_PARSE_SHORT = 2,  /* IP header itself truncated: no destination known */
};

struct dnsseal_pkt {
	struct dnsseal_addr src;
	struct dnsseal_addr dst;
	__u8 proto;         /* L4 protocol (after IPv6 extension headers) */
	__u8 nonfirst_frag; /* fragment with offset > 0: there is no L4 header */
	__u8 l4_short;      /* UDP/TCP ports or ICMPv6 type expected but truncated */
	__u8 exthdr_deep;   /* IPv6 extension chain longer than DNSSEAL_MAX_EXTHDR */
	__u16 sport;        /* host order, UDP and TCP */
	__u16 dport;        /* host order, UDP and TCP */
	__u8 icmp6_type;    /* ICMPv6 only, 0 otherwise */
};

struct dnsseal_frag_hdr {
	__u8 nexthdr;
	__u8 reserved;
	__be16 frag_off; /* offset in 8-byte units << 3 | flags */
	__be32 identification;
};

/*
 * Returns DNSSEAL_PARSE_SHORT also when the UDP header is cut (p->l4_short); the caller may pull.
 * `l2` (a constant at every call site): 1 = an Ethernet header first, 0 = the IP header first.
 */
static __always_inline int dnsseal_parse_once(struct __sk_buff *skb, struct dnsseal_pkt *p, int *want_pull, int l2)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	__be16 l3proto;
	void *l3;
	void *l4;

	*want_pull = 0;
	p->nonfirst_frag = 0;
	p->l4_short = 0;
	p->exthdr_deep = 0;
	p->sport = 0;
	p->dport = 0;
	p->icmp6_type = 0;

	if (l2) {
		struct ethhdr *eth = data;

		if ((void *)(eth + 1) > end) {
			*want_pull = 1;
			return DNSSEAL_PARSE_SHORT;
		}
		l3proto = eth->h_proto;
		l3 = eth + 1;
	} else {
		l3proto = skb->protocol;
		l3 = data;
	}
	if (l3proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = l3;

		if ((void *)(ip + 1) > end) {
			*want_pull = 1;
			return DNSSEAL_PARSE_SHORT;
		}
		if (ip->ihl < 5)
			return DNSSEAL_PARSE_SHORT;
		dnsseal_addr_from_v4(&p->src, ip->saddr);
		dnsseal_addr_from_v4(&p->dst, ip->daddr);
		p->proto = ip->protocol;
		if (ip->frag_off & bpf_htons(DNSSEAL_IP_OFFSET))
			p->nonfirst_frag = 1;
		l4 = (void *)ip + ip->ihl * 4;
	} else if (l3proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = l3;
		__u8 nh;

		if ((void *)(ip6 + 1) > end) {
			*want_pull = 1;
			return DNSSEAL_PARSE_SHORT;
		}
		dnsseal_addr_from_v6(&p->src, ip6->saddr.in6_u.u6_addr32);
		dnsseal_addr_from_v6(&p->dst, ip6->daddr.in6_u.u6_addr32);
		nh = ip6->nexthdr;
		l4 = ip6 + 1;
#pragma unroll
		for (int i = 0; i < DNSSEAL_MAX_EXTHDR; i++) {
			if (nh == IPPROTO_HOPOPTS || nh == IPPROTO_ROUTING || nh == IPPROTO_DSTOPTS || nh == IPPROTO_AH) {
				struct ipv6_opt_hdr *h = l4;

				if ((void *)(h + 1) > end) {
					*want_pull = 1;
					p->proto = nh;
					p->l4_short = 1;
					return DNSSEAL_PARSE_OK;
				}
				nh = h->nexthdr;
				l4 += nh == IPPROTO_AH ? (h->hdrlen + 2) * 4 : (h->hdrlen + 1) * 8;
			} else if (nh == IPPROTO_FRAGMENT) {
				struct dnsseal_frag_hdr *f = l4;

				if ((void *)(f + 1) > end) {
					*want_pull = 1;
					p->proto = nh;
					p->l4_short = 1;
					return DNSSEAL_PARSE_OK;
				}
				if (f->frag_off & bpf_htons(0xfff8))
					p->nonfirst_frag = 1;
				nh = f->nexthdr;
				l4 += sizeof(*f);
			} else {
				break;
			}
		}
		if (nh == IPPROTO_HOPOPTS || nh == IPPROTO_ROUTING || nh == IPPROTO_DSTOPTS || nh == IPPROTO_AH ||
		    nh == IPPROTO_FRAGMENT)
			p->exthdr_deep = 1;
		p->proto = nh;
	} else {
		return DNSSEAL_PARSE_NOT_IP;
	}

	/* TCP's ports sit where UDP's do (tls channels: the guard checks the relay's TLS port). */
	if ((p->proto == IPPROTO_UDP || p->proto == IPPROTO_TCP) && !p->nonfirst_frag) {
		struct udphdr *udp = l4;

		if ((void *)(udp + 1) > end) {
			*want_pull = 1;
			p->l4_short = 1;
			return DNSSEAL_PARSE_OK;
		}
		p->sport = bpf_ntohs(udp->source);
		p->dport = bpf_ntohs(udp->dest);
	} else if (p->proto == IPPROTO_ICMPV6 && !p->nonfirst_frag) {
		__u8 *type = l4;

		if ((void *)(type + 1) > end) {
			*want_pull = 1;
			p->l4_short = 1;
			return DNSSEAL_PARSE_OK;
		}
		p->icmp6_type = *type;
	}
	return DNSSEAL_PARSE_OK;
}

/* ICMPv6 neighbour discovery (types 133-137): no payload, and an on-link peer must stay resolvable. */
static __always_inline int dnsseal_pkt_is_nd(const struct dnsseal_pkt *p)
{
	return p->proto == IPPROTO_ICMPV6 && !p->l4_short && p->icmp6_type >= 133 && p->icmp6_type <= 137;
}

/* The packet's 4-tuple as bpf_sk_lookup_* / bpf_skc_lookup_tcp take it; returns its size. */
static __always_inline __u32 dnsseal_pkt_tuple(const struct dnsseal_pkt *p, struct bpf_sock_tuple *t)
{
	if (p->src.family == DNSSEAL_FAMILY_V4) {
		t->ipv4.saddr = p->src.w[0];
		t->ipv4.daddr = p->dst.w[0];
		t->ipv4.sport = bpf_htons(p->sport);
		t->ipv4.dport = bpf_htons(p->dport);
		return sizeof(t->ipv4);
	}
	__builtin_memcpy(t->ipv6.saddr, p->src.w, sizeof(t->ipv6.saddr));
	__builtin_memcpy(t->ipv6.daddr, p->dst.w, sizeof(t->ipv6.daddr));
	t->ipv6.sport = bpf_htons(p->sport);
	t->ipv6.dport = bpf_htons(p->dport);
	return sizeof(t->ipv6);
}

/* Parses; if a header lies beyond the linear area of a longer skb, pulls and parses again. */
static __always_inline int dnsseal_parse_at(struct __sk_buff *skb, struct dnsseal_pkt *p, int l2)
{
	int want_pull;
	int r = dnsseal_parse_once(skb, p, &want_pull, l2);
	__u32 linear;

	/* cgroup_skb has no bpf_skb_pull_data; the local stack builds its headers linear anyway. */
	if (!want_pull || !l2)
		return r;
	linear = skb->data_end - skb->data;
	if (skb->len <= linear)
		return r;
	if (bpf_skb_pull_data(skb, skb->len < DNSSEAL_PULL_LEN ? skb->len : DNSSEAL_PULL_LEN))
		return r;
	return dnsseal_parse_once(skb, p, &want_pull, l2);
}

/* tc on an Ethernet device: the MAC header first. */
static __always_inline int dnsseal_parse(struct __sk_buff *skb, struct dnsseal_pkt *p)
{
	return dnsseal_parse_at(skb, p, 1);
}

/* cgroup_skb: the network header first. */
static __always_inline int dnsseal_parse_l3(struct __sk_buff *skb, struct dnsseal_pkt *p)
{
	return dnsseal_parse_at(skb, p, 0);
}

#endif
