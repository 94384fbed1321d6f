/* SPDX-License-Identifier: Apache-2.0 */
/* Includes, constants and small helpers shared by every dnsseal program. */
#ifndef DNSSEAL_LIB_COMMON_H
#define DNSSEAL_LIB_COMMON_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/pkt_cls.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "dnsseal.h"

#ifndef SOL_SOCKET
#define SOL_SOCKET 1
#endif
#ifndef SO_MARK
#define SO_MARK 36
#endif

/* tc verdicts: "pass" lets later filters / tcx programs run (TC_ACT_UNSPEC == TCX_NEXT). */
#define DNSSEAL_TC_PASS TC_ACT_UNSPEC
#define DNSSEAL_TC_DROP TC_ACT_SHOT

/* cgroup program verdicts */
#define DNSSEAL_CG_ALLOW 1
#define DNSSEAL_CG_DENY  0
/* The loopback device's ifindex in every network namespace (LOOPBACK_IFINDEX). */
#define DNSSEAL_LOOPBACK_IFINDEX 1

#define DNSSEAL_IP_MF     0x2000
#define DNSSEAL_IP_OFFSET 0x1fff

#endif
