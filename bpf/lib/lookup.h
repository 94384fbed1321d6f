/* SPDX-License-Identifier: Apache-2.0 */
/* Map lookups shared by the marker, the guard and the socket hooks; counters; last_seen stamps. */
#ifndef DNSSEAL_LIB_LOOKUP_H
#define DNSSEAL_LIB_LOOKUP_H

#include "common.h"
#include "maps.h"

/* An address as it appears in dnsseal_dest_key (family 4 or 6, network order words). */
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

static __always_inline struct dnsseal_dest_val *dnsseal_dest_lookup(__u32 group, const struct dnsseal_addr *a)
{
	struct dnsseal_dest_key k = {
		.group = group,
		.family = a->family,
		.addr = { a->w[0], a->w[1], a->w[2], a->w[3] },
	};
	return bpf_map_lookup_elem(&dnsseal_dests, &k);
}

/* Client group by longest-prefix match on the source; DNSSEAL_GROUP_DEFAULT when none matches. */
static __always_inline __u32 dnsseal_client_group(const struct dnsseal_addr *src)
{
	struct dnsseal_client_key k;
	struct dnsseal_client_val *v;

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
	v = bpf_map_lookup_elem(&dnsseal_clients, &k);
	return v ? v->group : DNSSEAL_GROUP_DEFAULT;
}

static __always_inline void dnsseal_count(__u32 kind, __u32 id, __u64 bytes)
{
	__u32 slot = kind * DNSSEAL_CNT_IDS + (id < DNSSEAL_CNT_IDS ? id : 0);
	struct dnsseal_counter_val *v = bpf_map_lookup_elem(&dnsseal_counters, &slot);

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
	struct dnsseal_clock_cache *c = bpf_map_lookup_elem(&dnsseal_clock, &zero);
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

static __always_inline int dnsseal_addr_eq(const struct dnsseal_addr *a, __u8 family, const __be32 *w)
{
	return a->family == family && a->w[0] == w[0] && a->w[1] == w[1] && a->w[2] == w[2] && a->w[3] == w[3];
}

#endif
