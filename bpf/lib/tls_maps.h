/* SPDX-License-Identifier: Apache-2.0 */
/* The tls channel's maps (layouts in bpf/dnsseal.h, "tls channel interception"). Pinned with the others. */
#ifndef DNSSEAL_LIB_TLS_MAPS_H
#define DNSSEAL_LIB_TLS_MAPS_H

#include "common.h"
#include "lookup.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct dnsseal_tls_config);
} dnsseal_tls_config SEC(".maps");

/* LRU: an entry whose close was never seen (a program attached after the connect) ages out. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, DNSSEAL_TLS_SOCKS_MAX);
	__type(key, __u64);
	__type(value, struct dnsseal_tls_addr);
} dnsseal_tls_cookie SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, DNSSEAL_TLS_SOCKS_MAX);
	__type(key, struct dnsseal_tls_addr);
	__type(value, struct dnsseal_tls_addr);
} dnsseal_tls_orig SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, DNSSEAL_TLS_CNT_MAX);
	__type(key, __u32);
	__type(value, struct dnsseal_counter_val);
} dnsseal_tls_counters SEC(".maps");

static __always_inline void dnsseal_tls_count(__u32 slot, __u64 bytes)
{
	struct dnsseal_counter_val *v = DNSSEAL_LOOKUP(dnsseal_tls_counters, &slot);

	if (v) {
		v->packets += 1;
		v->bytes += bytes;
	}
}

/* The channel of an entry when it is a tls channel, else NULL (the IPsec path goes on unchanged). */
static __always_inline struct dnsseal_channel_val *dnsseal_tls_channel(const struct dnsseal_dest_val *v)
{
	__u32 id = v->channel_id;
	struct dnsseal_channel_val *ch = DNSSEAL_LOOKUP(dnsseal_channels, &id);

	return ch && (ch->flags & DNSSEAL_CHAN_F_TLS) ? ch : 0;
}

#endif
