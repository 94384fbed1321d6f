/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The intercept NAT maps (layouts in bpf/dnsseal.h, "intercept" section). Included once, by
 * bpf/intercept.bpf.c, which also includes lib/maps.h: the loader pins every shared map to the
 * same path as dnsseal.bpf.o's, so both objects see one dnsseal_dests / clients / counters.
 */
#ifndef DNSSEAL_LIB_INTERCEPT_MAPS_H
#define DNSSEAL_LIB_INTERCEPT_MAPS_H

#include "common.h"
#include "lookup.h"

/* HASH, never LRU: the pool decides when an intercept address may go, never the kernel. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, DNSSEAL_ICPT_MAX);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct dnsseal_dest_key);
	__type(value, struct dnsseal_icpt_val);
} dnsseal_icpt_fwd SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, DNSSEAL_ICPT_MAX);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct dnsseal_dest_key);
	__type(value, struct dnsseal_icpt_val);
} dnsseal_icpt_rev SEC(".maps");

/* Per-CPU counters of the NAT (slot = kind * DNSSEAL_CNT_IDS + id): an array lookup, inlined. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, DNSSEAL_ICPT_CNT_KINDS * DNSSEAL_CNT_IDS);
	__type(key, __u32);
	__type(value, struct dnsseal_counter_val);
} dnsseal_icpt_counters SEC(".maps");

static __always_inline void dnsseal_icpt_count(__u32 kind, __u32 id, __u64 bytes)
{
	__u32 slot = kind * DNSSEAL_CNT_IDS + (id < DNSSEAL_CNT_IDS ? id : 0);
	struct dnsseal_counter_val *v = DNSSEAL_LOOKUP(dnsseal_icpt_counters, &slot);

	if (v) {
		v->packets += 1; /* per-CPU value: no atomics needed */
		v->bytes += bytes;
	}
}

#endif
