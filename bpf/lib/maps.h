/* SPDX-License-Identifier: Apache-2.0 */
/* The pinned maps (layouts in bpf/dnsseal.h). Included once, by dnsseal.bpf.c. */
#ifndef DNSSEAL_LIB_MAPS_H
#define DNSSEAL_LIB_MAPS_H

#include "common.h"

/* HASH, never LRU: a full map must refuse inserts, not evict a live protection. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, DNSSEAL_DESTS_MAX);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct dnsseal_dest4_key);
	__type(value, struct dnsseal_dest_val);
} dnsseal_dests4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, DNSSEAL_DESTS_MAX);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct dnsseal_dest6_key);
	__type(value, struct dnsseal_dest_val);
} dnsseal_dests6 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, DNSSEAL_CLIENTS_MAX);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct dnsseal_client_key);
	__type(value, struct dnsseal_client_val);
} dnsseal_clients SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, DNSSEAL_CHANNELS_MAX);
	__type(key, __u32);
	__type(value, struct dnsseal_channel_val);
} dnsseal_channels SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, DNSSEAL_COUNTERS_MAX);
	__type(key, __u32);
	__type(value, struct dnsseal_counter_val);
} dnsseal_counters SEC(".maps");

/* charon's own sockets (dnsseal.h): a tag per socket, no capacity. */
struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct dnsseal_ike_sock);
} dnsseal_ike_socks SEC(".maps");

/* ARRAY: a lookup the verifier inlines (one bounds check, no call). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct dnsseal_config);
} dnsseal_config SEC(".maps");

/*
 * Per-CPU cache of the coarse monotonic clock for dnsseal_stamp() (lookup.h): the jiffies value it
 * was read at and the reading. Program-private: never pinned, each object load gets a fresh one.
 */
struct dnsseal_clock_cache {
	__u64 jiffies; /* bpf_jiffies64() when now_ns was read */
	__u64 now_ns;  /* bpf_ktime_get_coarse_ns() read at that jiffy */
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct dnsseal_clock_cache);
} dnsseal_clock SEC(".maps");

#endif
