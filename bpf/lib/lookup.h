/* SPDX-License-Identifier: Apache-2.0 */
/* Map lookups shared by the marker, the guard and the socket hooks; counters; last_seen stamps. */
#ifndef DNSSEAL_LIB_LOOKUP_H
#define DNSSEAL_LIB_LOOKUP_H

#include "common.h"
#include "maps.h"

/*
 * bpf_map_lookup_elem on `map` at a call instruction of its own. The verifier inlines a lookup
 * (ARRAY, PERCPU_ARRAY, HASH) or calls the map's own lookup directly (LPM) only when every path to
 * the call instruction carries the same map. Clang merges two branches that end in a helper call
 * on different maps (dnsseal_dests4 / _dests6) into one call with the map in a register; that call
 * then goes through the generic helper and an indirect call, on every packet (+5..10 ns). The
 * empty asm, named after the map, differs per map, so lookups of two maps never share a call.
 * test/bpf/inline-lookups.test.ts checks the loaded programs.
 */
#define DNSSEAL_LOOKUP(map, key)                                             \
	({                                                                   \
		void *__dnsseal_v = bpf_map_lookup_elem(&(map), (key));      \
		asm volatile("/* " #map " */" : "+r"(__dnsseal_v));          \
		__dnsseal_v;                                                 \
	})

/* An address as it appears in the dests keys (family 4 or 6, network order words). */
struct dnsseal_addr {
	__u8 family;
	__be32 w[4];
};

/* Fills `a` from an IPv6 address, folding IPv4-mapped ::ffff:a.b.c.d into family 4. */
static __always_inline void dnsseal_addr_from_v6(struct dnsseal_addr *a, const __be32 *w)
{
	if (w[0] == 0 && w[1] == 0 && w[2] == bpf_htonl(0x0000ffff)) {
		a->family = DNSSEAL_FAMILY_V4;
		a->w[0] = w[3];
		a->w[1] = 0;
		a->w[2] = 0;
		a->w[3] = 0;
		return;
	}
	a->family = DNSSEAL_FAMILY_V6;
	a->w[0] = w[0];
	a->w[1] = w[1];
	a->w[2] = w[2];
	a->w[3] = w[3];
}

static __always_inline void dnsseal_addr_from_v4(struct dnsseal_addr *a, __be32 v4)
{
	a->family = DNSSEAL_FAMILY_V4;
	a->w[0] = v4;
	a->w[1] = 0;
	a->w[2] = 0;
	a->w[3] = 0;
}

/* The entry for (group, address): dnsseal_dests4 (8-byte key) or dnsseal_dests6 (20-byte key). */
static __always_inline struct dnsseal_dest_val *dnsseal_dest_lookup(__u32 group, const struct dnsseal_addr *a)
{
	if (a->family == DNSSEAL_FAMILY_V4) {
		struct dnsseal_dest4_key k4;

		k4.group = group;
		k4.addr = a->w[0];
		return DNSSEAL_LOOKUP(dnsseal_dests4, &k4);
	}
	struct dnsseal_dest6_key k6;

	k6.group = group;
	k6.addr[0] = a->w[0];
	k6.addr[1] = a->w[1];
	k6.addr[2] = a->w[2];
	k6.addr[3] = a->w[3];
	return DNSSEAL_LOOKUP(dnsseal_dests6, &k6);
}

/* First match in the inline client table (longest prefix first), else the default group. */
static __always_inline __u32 dnsseal_client_group_inline(const struct dnsseal_config *cfg, const struct dnsseal_addr *src)
{
	if (src->family == DNSSEAL_FAMILY_V4) {
		__u32 n = cfg->n4;

#pragma unroll
		for (int i = 0; i < DNSSEAL_CFG_CLIENTS; i++) {
			if (i >= n)
				break;
			if ((src->w[0] & cfg->clients4[i].mask) == cfg->clients4[i].net)
				return cfg->clients4[i].group;
		}
		return DNSSEAL_GROUP_DEFAULT;
	}
	__u32 n = cfg->n6;

#pragma unroll
	for (int i = 0; i < DNSSEAL_CFG_CLIENTS; i++) {
		const struct dnsseal_cfg_client6 *c = &cfg->clients6[i];

		if (i >= n)
			break;
		if ((src->w[0] & c->mask[0]) == c->net[0] && (src->w[1] & c->mask[1]) == c->net[1] &&
		    (src->w[2] & c->mask[2]) == c->net[2] && (src->w[3] & c->mask[3]) == c->net[3])
			return c->group;
	}
	return DNSSEAL_GROUP_DEFAULT;
}

/*
 * Client group by longest-prefix match on the source; DNSSEAL_GROUP_DEFAULT when none matches.
 * A small table is read from dnsseal_config (an inlined array read and a few masked compares;
 * nothing at all when every client is in the default group), a larger one from the LPM trie.
 */
static __always_inline __u32 dnsseal_client_group(const struct dnsseal_addr *src)
{
	struct dnsseal_client_key k;
	struct dnsseal_client_val *v;
	struct dnsseal_config *cfg;
	__u32 zero = 0;

	cfg = DNSSEAL_LOOKUP(dnsseal_config, &zero);
	if (cfg && (cfg->flags & DNSSEAL_CFG_F_INLINE))
		return dnsseal_client_group_inline(cfg, src);

	/* Field by field (no initializer): keeps clang from emitting a .rodata template. */
	k.prefixlen = 128;
	if (src->family == DNSSEAL_FAMILY_V4) {
		k.addr[0] = 0;
		k.addr[1] = 0;
		k.addr[2] = bpf_htonl(0x0000ffff);
		k.addr[3] = src->w[0];
	} else {
		k.addr[0] = src->w[0];
		k.addr[1] = src->w[1];
		k.addr[2] = src->w[2];
		k.addr[3] = src->w[3];
	}
	v = DNSSEAL_LOOKUP(dnsseal_clients, &k);
	return v ? v->group : DNSSEAL_GROUP_DEFAULT;
}

static __always_inline void dnsseal_count(__u32 kind, __u32 id, __u64 bytes)
{
	__u32 slot = kind * DNSSEAL_CNT_IDS + (id < DNSSEAL_CNT_IDS ? id : 0);
	struct dnsseal_counter_val *v = DNSSEAL_LOOKUP(dnsseal_counters, &slot);

	if (v) {
		v->packets += 1; /* per-CPU value: no atomics needed */
		v->bytes += bytes;
	}
}

/*
 * CLOCK_MONOTONIC_COARSE in ns without a helper call on most packets. The coarse clock only moves
 * when the tick advances jiffies, so one bpf_ktime_get_coarse_ns() per CPU per jiffy gives the same
 * reading; bpf_jiffies64() is inlined by the verifier (one load). A reading taken in the instant
 * between the jiffies increment and the timekeeping update is one tick behind for that jiffy, so
 * the result is a real coarse reading at most one tick (HZ=250: 4 ms) older than a direct call.
 * Per CPU, so no other CPU writes the cache; a program interrupted on the same CPU between the two
 * stores leaves at worst an old jiffies with a newer reading, which the next caller re-reads.
 */
static __always_inline __u64 dnsseal_now_coarse(void)
{
	__u32 zero = 0;
	struct dnsseal_clock_cache *c = DNSSEAL_LOOKUP(dnsseal_clock, &zero);
	__u64 j = bpf_jiffies64();
	__u64 now;

	if (!c)
		return bpf_ktime_get_coarse_ns();
	if (*(volatile __u64 *)&c->jiffies == j)
		return *(volatile __u64 *)&c->now_ns;
	now = bpf_ktime_get_coarse_ns();
	*(volatile __u64 *)&c->now_ns = now;
	*(volatile __u64 *)&c->jiffies = j;
	return now;
}

/*
 * Records traffic on an entry (keeps it alive past its TTL). Writes only when the stamp is more
 * than DNSSEAL_STAMP_GRANULARITY_NS old, and never moves it backwards (a CPU whose cached reading
 * is a tick behind another's leaves that CPU's newer stamp alone).
 */
static __always_inline void dnsseal_stamp(struct dnsseal_dest_val *v)
{
	__u64 now = dnsseal_now_coarse();

	if ((__s64)(now - v->last_seen_ns) > (__s64)DNSSEAL_STAMP_GRANULARITY_NS)
		v->last_seen_ns = now;
}

static __always_inline int dnsseal_mark_is_ours(__u32 mark)
{
	return (mark & DNSSEAL_MARK_MASK) == DNSSEAL_MARK_BASE;
}

/* The socket is one of charon's own (tagged in dnsseal_ike_socks by userspace). */
static __always_inline int dnsseal_sk_is_charon(struct bpf_sock *sk)
{
	struct dnsseal_ike_sock *t;

	if (!sk)
		return 0;
	t = bpf_sk_storage_get(&dnsseal_ike_socks, sk, 0, 0);
	return t && (t->flags & DNSSEAL_IKE_SOCK_CHARON);
}

/* A local packet sent from one of charon's sockets (a forwarded packet has no socket: 0). */
static __always_inline int dnsseal_skb_from_charon(struct __sk_buff *skb)
{
	struct bpf_sock *sk = skb->sk;

	if (!sk)
		return 0;
	return dnsseal_sk_is_charon(bpf_sk_fullsock(sk));
}

static __always_inline int dnsseal_addr_eq(const struct dnsseal_addr *a, __u8 family, const __be32 *w)
{
	return a->family == family && a->w[0] == w[0] && a->w[1] == w[1] && a->w[2] == w[2] && a->w[3] == w[3];
}

#endif
