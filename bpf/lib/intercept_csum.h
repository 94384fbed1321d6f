/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Checksums for the intercept NAT.
 * - Outer headers: the kernel helpers (bpf_l3_csum_replace / bpf_l4_csum_replace with
 *   BPF_F_PSEUDO_HDR), which also keep CHECKSUM_PARTIAL skbs from the local stack and veth right.
 * - Headers quoted inside an ICMP error: plain data to the skb, so updated by hand with the
 *   incremental rule of RFC 1624 (HC' = ~(~HC + ~m + m')). Words are summed in memory order:
 *   the ones' complement sum is byte-order independent (RFC 1071 §2(B)).
 */
#ifndef DNSSEAL_LIB_INTERCEPT_CSUM_H
#define DNSSEAL_LIB_INTERCEPT_CSUM_H

#include "common.h"

/* Adds (~old + new) of one 16-bit word to an accumulator of changes. */
static __always_inline __u32 dnsseal_icpt_acc16(__u32 acc, __u16 old, __u16 new)
{
	return acc + (__u16)~old + new;
}

/* Adds the changes of an address of `words` 32-bit words (1 or 4). */
static __always_inline __u32 dnsseal_icpt_acc_addr(__u32 acc, const __be32 *old, const __be32 *new, int words)
{
#pragma unroll
	for (int i = 0; i < 4; i++) {
		if (i < words) {
			acc = dnsseal_icpt_acc16(acc, (__u16)(old[i] & 0xffff), (__u16)(new[i] & 0xffff));
			acc = dnsseal_icpt_acc16(acc, (__u16)(old[i] >> 16), (__u16)(new[i] >> 16));
		}
	}
	return acc;
}

static __always_inline __u16 dnsseal_icpt_fold(__u32 s)
{
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	return (__u16)s;
}

/* The checksum field value after the changes summed in `acc`. */
static __always_inline __u16 dnsseal_icpt_csum_apply(__u16 hc, __u32 acc)
{
	return (__u16)~dnsseal_icpt_fold((__u32)(__u16)~hc + dnsseal_icpt_fold(acc));
}

/*
 * Updates the 16-bit checksum at `off` by `acc`; returns the changes to the checksum field
 * itself (to be folded into an enclosing checksum), or -1 on a helper failure.
 * udp: a zero checksum means "none" (IPv4) and stays zero; a result of zero is sent as 0xffff.
 */
static __always_inline long dnsseal_icpt_fix_csum(struct __sk_buff *skb, __u32 off, __u32 acc, int udp, __u32 *field_acc)
{
	__u16 old, new;

	if (bpf_skb_load_bytes(skb, off, &old, sizeof(old)))
		return -1;
	if (udp && old == 0)
		return 0;
	new = dnsseal_icpt_csum_apply(old, acc);
	if (udp && new == 0)
		new = 0xffff;
	if (bpf_skb_store_bytes(skb, off, &new, sizeof(new), 0))
		return -1;
	*field_acc = dnsseal_icpt_acc16(*field_acc, old, new);
	return 0;
}

#endif
