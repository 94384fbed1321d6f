/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Intercept-address NAT on the LAN side (#6).
 *   ingress: client → intercept address I  ⇒ destination := real address R, skb->mark := the
 *            channel's mark (from dnsseal_dests for (group, R)), so routing and XFRM see R.
 *   egress:  R → client  ⇒ source := I; an ICMP error to the client that quotes a packet to R
 *            gets the quoted destination (and its checksums) set back to I, IPv4 and IPv6;
 *            likewise an ICMP error from the client quoting a reply from I gets I → R inside.
 * Only native families are translated (v4 ↔ v4, v6 ↔ v6). The outer headers are read in place
 * when they are in the linear area (nearly always: no helper call for a packet that is not
 * intercepted), else with bpf_skb_load_bytes at computed offsets, like everything the rewrite
 * reads, so paged/GSO skbs and IP options need no special case. A non-first fragment gets only its L3 address changed: the
 * L4 checksum lives in the first fragment, whose update already covers the pseudo-header.
 */
#ifndef DNSSEAL_LIB_INTERCEPT_NAT_H
#define DNSSEAL_LIB_INTERCEPT_NAT_H

#include <linux/icmp.h>
#include <linux/icmpv6.h>
#include "common.h"
#include "lookup.h"
#include "intercept_maps.h"
#include "intercept_csum.h"

#define DNSSEAL_ICPT_ETH_LEN   14
#define DNSSEAL_ICPT_MAX_EXT   4
#define DNSSEAL_ICPT_IP4_CSUM  (DNSSEAL_ICPT_ETH_LEN + 10)
#define DNSSEAL_ICPT_IP4_SRC   (DNSSEAL_ICPT_ETH_LEN + 12)
#define DNSSEAL_ICPT_IP4_DST   (DNSSEAL_ICPT_ETH_LEN + 16)
#define DNSSEAL_ICPT_IP6_SRC   (DNSSEAL_ICPT_ETH_LEN + 8)
#define DNSSEAL_ICPT_IP6_DST   (DNSSEAL_ICPT_ETH_LEN + 24)

#ifndef IPPROTO_ICMPV6
#define IPPROTO_ICMPV6 58
#endif

struct dnsseal_icpt_pkt {
	__u8 family;        /* DNSSEAL_FAMILY_V4 / _V6 */
	__u8 proto;         /* L4 protocol after IPv6 extension headers */
	__u8 nonfirst_frag; /* no L4 header in this packet */
	__u8 pad;
	__u32 l4_off;       /* offset of the L4 header from skb->data */
	__be32 src[4];      /* raw packet addresses (IPv4 in [0]), not folded */
	__be32 dst[4];
};

/* 0 = parsed; <0 = not IPv4/IPv6 or unreadable (never ours). */
static __always_inline int dnsseal_icpt_parse(struct __sk_buff *skb, struct dnsseal_icpt_pkt *p)
{
	__be16 proto;

	if (bpf_skb_load_bytes(skb, 12, &proto, sizeof(proto)))
		return -1;
	__builtin_memset(p, 0, sizeof(*p));
	if (proto == bpf_htons(ETH_P_IP)) {
		struct iphdr ip;

		if (bpf_skb_load_bytes(skb, DNSSEAL_ICPT_ETH_LEN, &ip, sizeof(ip)) || ip.ihl < 5)
			return -1;
		p->family = DNSSEAL_FAMILY_V4;
		p->proto = ip.protocol;
		p->nonfirst_frag = (ip.frag_off & bpf_htons(DNSSEAL_IP_OFFSET)) != 0;
		p->l4_off = DNSSEAL_ICPT_ETH_LEN + ip.ihl * 4;
		p->src[0] = ip.saddr;
		p->dst[0] = ip.daddr;
		return 0;
	}
	if (proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr ip6;
		__u32 off = DNSSEAL_ICPT_ETH_LEN + sizeof(ip6);
		__u8 nh;

		if (bpf_skb_load_bytes(skb, DNSSEAL_ICPT_ETH_LEN, &ip6, sizeof(ip6)))
			return -1;
		p->family = DNSSEAL_FAMILY_V6;
		__builtin_memcpy(p->src, ip6.saddr.in6_u.u6_addr32, 16);
		__builtin_memcpy(p->dst, ip6.daddr.in6_u.u6_addr32, 16);
		nh = ip6.nexthdr;
#pragma unroll
		for (int i = 0; i < DNSSEAL_ICPT_MAX_EXT; i++) {
			__u8 h[8];

			if (nh != IPPROTO_HOPOPTS && nh != IPPROTO_ROUTING && nh != IPPROTO_DSTOPTS && nh != IPPROTO_FRAGMENT &&
			    nh != IPPROTO_AH)
				break;
			if (bpf_skb_load_bytes(skb, off, h, sizeof(h)))
				return -1;
			if (nh == IPPROTO_FRAGMENT) {
				if (((h[2] << 8) | h[3]) & 0xfff8)
					p->nonfirst_frag = 1;
				off += 8;
			} else if (nh == IPPROTO_AH) {
				off += (h[1] + 2) * 4;
			} else {
				off += (h[1] + 1) * 8;
			}
			nh = h[0];
		}
		p->proto = nh;
		p->l4_off = off;
		return 0;
	}
	return -1;
}

/*
 * dnsseal_icpt_parse from the linear area, without a helper call: most packets on a LAN interface
 * are not intercepted, and are told apart with this and one map lookup. 0 = parsed; 1 = not
 * IPv4/IPv6 or unreadable (never ours); -1 = a header lies outside the linear area (the caller
 * falls back to dnsseal_icpt_parse, which reads any skb).
 */
static __always_inline int dnsseal_icpt_parse_direct(struct __sk_buff *skb, struct dnsseal_icpt_pkt *p)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;

	if ((void *)(eth + 1) > end)
		return -1;
	__builtin_memset(p, 0, sizeof(*p));
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);

		if ((void *)(ip + 1) > end)
			return -1;
		if (ip->ihl < 5)
			return 1;
		p->family = DNSSEAL_FAMILY_V4;
		p->proto = ip->protocol;
		p->nonfirst_frag = (ip->frag_off & bpf_htons(DNSSEAL_IP_OFFSET)) != 0;
		p->l4_off = DNSSEAL_ICPT_ETH_LEN + ip->ihl * 4;
		p->src[0] = ip->saddr;
		p->dst[0] = ip->daddr;
		return 0;
	}
	if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);
		__u32 off = DNSSEAL_ICPT_ETH_LEN + sizeof(*ip6);
		__u8 nh;

		if ((void *)(ip6 + 1) > end)
			return -1;
		p->family = DNSSEAL_FAMILY_V6;
		p->src[0] = ip6->saddr.in6_u.u6_addr32[0];
		p->src[1] = ip6->saddr.in6_u.u6_addr32[1];
		p->src[2] = ip6->saddr.in6_u.u6_addr32[2];
		p->src[3] = ip6->saddr.in6_u.u6_addr32[3];
		p->dst[0] = ip6->daddr.in6_u.u6_addr32[0];
		p->dst[1] = ip6->daddr.in6_u.u6_addr32[1];
		p->dst[2] = ip6->daddr.in6_u.u6_addr32[2];
		p->dst[3] = ip6->daddr.in6_u.u6_addr32[3];
		nh = ip6->nexthdr;
#pragma unroll
		for (int i = 0; i < DNSSEAL_ICPT_MAX_EXT; i++) {
			__u8 *h;

			if (nh != IPPROTO_HOPOPTS && nh != IPPROTO_ROUTING && nh != IPPROTO_DSTOPTS && nh != IPPROTO_FRAGMENT &&
			    nh != IPPROTO_AH)
				break;
			h = data + off;
			if ((void *)(h + 8) > end)
				return -1;
			if (nh == IPPROTO_FRAGMENT) {
				if (((h[2] << 8) | h[3]) & 0xfff8)
					p->nonfirst_frag = 1;
				off += 8;
			} else if (nh == IPPROTO_AH) {
				off += (h[1] + 2) * 4;
			} else {
				off += (h[1] + 1) * 8;
			}
			nh = h[0];
		}
		p->proto = nh;
		p->l4_off = off;
		return 0;
	}
	return 1;
}

/* Either parser: in place when the headers are linear, else with bpf_skb_load_bytes. 0 = parsed. */
static __always_inline int dnsseal_icpt_parse_any(struct __sk_buff *skb, struct dnsseal_icpt_pkt *p)
{
	int r = dnsseal_icpt_parse_direct(skb, p);

	if (r < 0)
		return dnsseal_icpt_parse(skb, p);
	return r;
}

static __always_inline void dnsseal_icpt_key(struct dnsseal_dest_key *k, __u32 group, __u8 family, const __be32 *a)
{
	k->group = group;
	k->family = family;
	k->pad[0] = 0;
	k->pad[1] = 0;
	k->pad[2] = 0;
	k->addr[0] = a[0];
	k->addr[1] = family == DNSSEAL_FAMILY_V4 ? 0 : a[1];
	k->addr[2] = family == DNSSEAL_FAMILY_V4 ? 0 : a[2];
	k->addr[3] = family == DNSSEAL_FAMILY_V4 ? 0 : a[3];
}

/* Client group of an address as the marker/guard compute it (IPv4-mapped folded). */
static __always_inline __u32 dnsseal_icpt_group(__u8 family, const __be32 *a)
{
	struct dnsseal_addr x;

	if (family == DNSSEAL_FAMILY_V4)
		dnsseal_addr_from_v4(&x, a[0]);
	else
		dnsseal_addr_from_v6(&x, a);
	return dnsseal_client_group(&x);
}

/*
 * Replaces the outer source (is_dst = 0) or destination (is_dst = 1) address with the kernel's
 * checksum helpers: IPv4 header checksum, and the TCP/UDP/ICMPv6 checksum over the pseudo-header.
 * IPv4 ICMP has no pseudo-header. UDP over IPv4 with checksum 0 stays 0 (BPF_F_MARK_MANGLED_0).
 */
static __always_inline int dnsseal_icpt_set_addr(struct __sk_buff *skb, const struct dnsseal_icpt_pkt *p, int is_dst,
						 const __be32 *old, const __be32 *new)
{
	__u64 l4flags = BPF_F_PSEUDO_HDR | 4;
	__u32 csum_off = 0;
	__u32 addr_off;
	int words = p->family == DNSSEAL_FAMILY_V4 ? 1 : 4;

	if (!p->nonfirst_frag) {
		if (p->proto == IPPROTO_TCP) {
			csum_off = p->l4_off + 16;
		} else if (p->proto == IPPROTO_UDP) {
			csum_off = p->l4_off + 6;
			if (p->family == DNSSEAL_FAMILY_V4)
				l4flags |= BPF_F_MARK_MANGLED_0;
		} else if (p->proto == IPPROTO_ICMPV6 && p->family == DNSSEAL_FAMILY_V6) {
			csum_off = p->l4_off + 2;
		}
	}
	if (csum_off) {
		int err = 0;

#pragma unroll
		for (int i = 0; i < 4; i++)
			if (i < words)
				err |= bpf_l4_csum_replace(skb, csum_off, old[i], new[i], l4flags) != 0;
		if (err)
			return -1;
	}
	if (p->family == DNSSEAL_FAMILY_V4) {
		if (bpf_l3_csum_replace(skb, DNSSEAL_ICPT_IP4_CSUM, old[0], new[0], 4))
			return -1;
		addr_off = is_dst ? DNSSEAL_ICPT_IP4_DST : DNSSEAL_ICPT_IP4_SRC;
		return bpf_skb_store_bytes(skb, addr_off, new, 4, 0) ? -1 : 0;
	}
	addr_off = is_dst ? DNSSEAL_ICPT_IP6_DST : DNSSEAL_ICPT_IP6_SRC;
	return bpf_skb_store_bytes(skb, addr_off, new, 16, 0) ? -1 : 0;
}

/* Same rule and clock as dnsseal_stamp() (lookup.h): > 100 ms old, never backwards, coarse clock. */
static __always_inline void dnsseal_icpt_stamp(struct dnsseal_icpt_val *v)
{
	__u64 now = dnsseal_now_coarse();

	if ((__s64)(now - v->last_seen_ns) > (__s64)DNSSEAL_STAMP_GRANULARITY_NS)
		v->last_seen_ns = now;
}

static __always_inline int dnsseal_icpt_is_error(const struct dnsseal_icpt_pkt *p, __u8 type)
{
	if (p->family == DNSSEAL_FAMILY_V4)
		return p->proto == IPPROTO_ICMP &&
		       (type == ICMP_DEST_UNREACH || type == ICMP_SOURCE_QUENCH || type == ICMP_REDIRECT ||
			type == ICMP_TIME_EXCEEDED || type == ICMP_PARAMETERPROB);
	return p->proto == IPPROTO_ICMPV6 && type >= ICMPV6_DEST_UNREACH && type <= ICMPV6_PARAMPROB;
}

/*
 * ICMP errors quoting a translated packet, both ways (IPv4 and IPv6):
 * - egress (to_client = 1): an error to the client quoting the client's packet to R — the quoted
 *   destination R goes back to I (dnsseal_icpt_rev);
 * - ingress (to_client = 0): an error from the client quoting a reply it got from I — the quoted
 *   source I becomes R (dnsseal_icpt_fwd), so the real host recognises its own packet.
 * Then the quoted IPv4 header checksum, the quoted TCP/UDP/ICMPv6 checksum when the quote holds
 * it, and the outer ICMP checksum are fixed. Returns 1 when rewritten, 0 when not ours, -1 on a
 * helper failure.
 */
static __always_inline int dnsseal_icpt_error_inner(struct __sk_buff *skb, const struct dnsseal_icpt_pkt *p, __u32 group,
						    int to_client)
{
	struct dnsseal_dest_key k;
	struct dnsseal_icpt_val *m;
	__u32 inner = p->l4_off + 8;
	__u32 inner_l4, addr_off, csum_off = 0;
	__u32 addr_acc = 0, outer_acc = 0;
	__be32 old[4] = {}, new[4];
	__u8 type, inner_proto;
	int udp = 0, words;

	/* Only ICMP / ICMPv6 can be an error: no helper call to read a type byte of anything else. */
	if (p->nonfirst_frag || p->proto != (p->family == DNSSEAL_FAMILY_V4 ? IPPROTO_ICMP : IPPROTO_ICMPV6))
		return 0;
	if (bpf_skb_load_bytes(skb, p->l4_off, &type, 1) || !dnsseal_icpt_is_error(p, type))
		return 0;
	if (p->family == DNSSEAL_FAMILY_V4) {
		__u8 vihl;

		if (bpf_skb_load_bytes(skb, inner, &vihl, 1) || (vihl >> 4) != 4 || (vihl & 0xf) < 5)
			return 0;
		if (bpf_skb_load_bytes(skb, inner + 9, &inner_proto, 1))
			return 0;
		addr_off = inner + (to_client ? 16 : 12);
		inner_l4 = inner + (vihl & 0xf) * 4;
		words = 1;
	} else {
		if (bpf_skb_load_bytes(skb, inner + 6, &inner_proto, 1))
			return 0;
		addr_off = inner + (to_client ? 24 : 8);
		inner_l4 = inner + 40;
		words = 4;
	}
	if (bpf_skb_load_bytes(skb, addr_off, old, words * 4))
		return 0;
	dnsseal_icpt_key(&k, group, p->family, old);
	if (to_client)
		m = DNSSEAL_LOOKUP(dnsseal_icpt_rev, &k);
	else
		m = DNSSEAL_LOOKUP(dnsseal_icpt_fwd, &k);
	if (!m || m->family != p->family)
		return 0;
	new[0] = m->addr[0];
	new[1] = m->addr[1];
	new[2] = m->addr[2];
	new[3] = m->addr[3];
	addr_acc = dnsseal_icpt_acc_addr(0, old, new, words);
	if (bpf_skb_store_bytes(skb, addr_off, new, words * 4, 0))
		return -1;
	outer_acc = addr_acc;
	/* The quoted IPv4 header checksum covers the address itself. */
	if (p->family == DNSSEAL_FAMILY_V4 && dnsseal_icpt_fix_csum(skb, inner + 10, addr_acc, 0, &outer_acc))
		return -1;
	/* The quoted L4 checksum covers the pseudo-header (not IPv4 ICMP); only when quoted. */
	if (inner_proto == IPPROTO_TCP) {
		csum_off = inner_l4 + 16;
	} else if (inner_proto == IPPROTO_UDP) {
		csum_off = inner_l4 + 6;
		udp = p->family == DNSSEAL_FAMILY_V4;
	} else if (inner_proto == IPPROTO_ICMPV6 && p->family == DNSSEAL_FAMILY_V6) {
		csum_off = inner_l4 + 2;
	}
	if (csum_off && csum_off + 2 <= skb->len && dnsseal_icpt_fix_csum(skb, csum_off, addr_acc, udp, &outer_acc))
		return -1;
	/* The ICMP checksum covers the whole quote (the outer pseudo-header is unchanged here). */
	if (dnsseal_icpt_fix_csum(skb, p->l4_off + 2, outer_acc, 0, &addr_acc))
		return -1;
	return 1;
}

/* tc ingress, LAN side: client → intercept address. */
static __always_inline int dnsseal_icpt_ingress(struct __sk_buff *skb)
{
	struct dnsseal_icpt_pkt p;
	struct dnsseal_dest_key k;
	struct dnsseal_icpt_val *m;
	struct dnsseal_dest_val *d;
	struct dnsseal_addr real;
	__be32 r[4];
	__u32 group;

	if (dnsseal_icpt_parse_any(skb, &p))
		return DNSSEAL_TC_PASS;
	group = dnsseal_icpt_group(p.family, p.src);
	dnsseal_icpt_key(&k, group, p.family, p.dst);
	m = DNSSEAL_LOOKUP(dnsseal_icpt_fwd, &k);
	if (!m)
		return DNSSEAL_TC_PASS; /* not an intercept address (of this client's group) */
	if (m->family != p.family) {
		dnsseal_icpt_count(DNSSEAL_ICPT_CNT_DROP, DNSSEAL_ICPT_DROP_FAMILY, skb->len);
		return DNSSEAL_TC_DROP;
	}
	r[0] = m->addr[0];
	r[1] = m->addr[1];
	r[2] = m->addr[2];
	r[3] = m->addr[3];
	/* Fail closed: the real address must be protected, or the packet would leave in clear. */
	real.family = p.family;
	real.w[0] = r[0];
	real.w[1] = r[1];
	real.w[2] = r[2];
	real.w[3] = r[3];
	d = dnsseal_dest_lookup(group, &real);
	if (!d) {
		dnsseal_icpt_count(DNSSEAL_ICPT_CNT_DROP, DNSSEAL_ICPT_DROP_UNPROTECTED, skb->len);
		return DNSSEAL_TC_DROP;
	}
	if (dnsseal_icpt_set_addr(skb, &p, 1, p.dst, r)) {
		dnsseal_icpt_count(DNSSEAL_ICPT_CNT_DROP, DNSSEAL_ICPT_DROP_REWRITE, skb->len);
		return DNSSEAL_TC_DROP;
	}
	if (dnsseal_icpt_error_inner(skb, &p, group, 0) < 0) {
		dnsseal_icpt_count(DNSSEAL_ICPT_CNT_DROP, DNSSEAL_ICPT_DROP_REWRITE, skb->len);
		return DNSSEAL_TC_DROP;
	}
	skb->mark = d->mark;
	dnsseal_stamp(d);
	if (d->flags & DNSSEAL_DEST_F_RETIRED)
		dnsseal_count(DNSSEAL_CNT_RETIRED, d->channel_id, skb->len);
	dnsseal_icpt_stamp(m);
	dnsseal_icpt_count(DNSSEAL_ICPT_CNT_IN, d->channel_id, skb->len);
	return DNSSEAL_TC_PASS;
}

/* tc egress, LAN side: node → client. */
static __always_inline int dnsseal_icpt_egress(struct __sk_buff *skb)
{
	struct dnsseal_icpt_pkt p;
	struct dnsseal_dest_key k;
	struct dnsseal_icpt_val *m;
	__be32 i[4];
	__u32 group;
	int r;

	if (dnsseal_icpt_parse_any(skb, &p))
		return DNSSEAL_TC_PASS;
	group = dnsseal_icpt_group(p.family, p.dst);
	dnsseal_icpt_key(&k, group, p.family, p.src);
	m = DNSSEAL_LOOKUP(dnsseal_icpt_rev, &k);
	if (m && m->family == p.family) {
		i[0] = m->addr[0];
		i[1] = m->addr[1];
		i[2] = m->addr[2];
		i[3] = m->addr[3];
		if (dnsseal_icpt_set_addr(skb, &p, 0, p.src, i)) {
			dnsseal_icpt_count(DNSSEAL_ICPT_CNT_DROP, DNSSEAL_ICPT_DROP_REWRITE, skb->len);
			return DNSSEAL_TC_DROP;
		}
		dnsseal_icpt_stamp(m);
		dnsseal_icpt_count(DNSSEAL_ICPT_CNT_OUT, 0, skb->len);
	}
	r = dnsseal_icpt_error_inner(skb, &p, group, 1);
	if (r < 0) {
		dnsseal_icpt_count(DNSSEAL_ICPT_CNT_DROP, DNSSEAL_ICPT_DROP_REWRITE, skb->len);
		return DNSSEAL_TC_DROP;
	}
	if (r > 0)
		dnsseal_icpt_count(DNSSEAL_ICPT_CNT_OUT, 1, skb->len);
	return DNSSEAL_TC_PASS;
}

#endif
