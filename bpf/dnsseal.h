/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dnsseal.h — THE one definition of every map key/value shared between the eBPF programs
 * (bpf/dnsseal.bpf.c) and userspace (src/datapath/layout.ts mirrors it; a test compares the two
 * with the compiled object's BTF). Fixed-width types, explicit padding (always written as zero),
 * sizes pinned with _Static_assert, byte order noted on every field.
 *
 * Also here: map names/capacities, mark layout, channel/destination flags, counter kinds and the
 * leak guard's drop/pass reasons (named constants; userspace reads them by number).
 */
#ifndef DNSSEAL_H
#define DNSSEAL_H

#include <linux/types.h>

/* ---- marks (src/policy/types.ts: MARK_BASE / MARK_MASK / channelMark) ---- */
#define DNSSEAL_MARK_BASE 0x5e510000u
#define DNSSEAL_MARK_MASK 0xffff0000u
#define DNSSEAL_MARK_CHANNEL(m) ((m) & 0xffffu)
/* What XFRM encrypted: every dnsseal SA's output mark (strongSwan child `set_mark_out`), set on
 * the ESP / ESP-in-UDP packet it produces. Channel 0 of the mark space: no XFRM policy selects it.
 * The guard passes UDP carrying it as ESP-in-UDP (no socket, or the application's, tells). */
#define DNSSEAL_MARK_ENCRYPTED 0x5e510000u /* = DNSSEAL_MARK_BASE */

/* ---- address families in keys (not AF_*: independent of libc) ---- */
#define DNSSEAL_FAMILY_V4 4
#define DNSSEAL_FAMILY_V6 6

/* Group used when a client matches no CIDR, and by the host-mode socket hooks. */
#define DNSSEAL_GROUP_DEFAULT 0

/* ---- capacities (max_entries; userspace may override the dests maps before load) ---- */
#define DNSSEAL_DESTS_MAX    1048576 /* each of dnsseal_dests4 / _dests6 (userspace caps the sum) */
#define DNSSEAL_CLIENTS_MAX  65536
#define DNSSEAL_CHANNELS_MAX 4096
#define DNSSEAL_COUNTERS_MAX (DNSSEAL_CNT_KINDS * DNSSEAL_CNT_IDS)

/* last_seen is rewritten only when older than this, so a busy flow does not dirty the entry's
 * cache line on every packet (idle timeouts are seconds to minutes). */
#define DNSSEAL_STAMP_GRANULARITY_NS 100000000ull /* 100 ms */

/*
 * dnsseal_dests4 / dnsseal_dests6: (group, address) → channel, one map per address family so the
 * per-packet hash covers 8 bytes (IPv4) or 20 (IPv6), not a padded 24. BPF_MAP_TYPE_HASH, never
 * LRU: a full map refuses the insert (E2BIG) so the DNS answer is refused rather than an entry
 * silently evicted. IPv4 and IPv4-mapped IPv6 (::ffff:a.b.c.d) are both stored in dnsseal_dests4.
 * (Until this layout, one map `dnsseal_dests` keyed by struct dnsseal_dest_key held both families
 * with a 24-byte value; the loader migrates such a pinned map, see bpf/README.md.)
 */
struct dnsseal_dest4_key {
	__u32 group;  /* host order: client group (table) number */
	__be32 addr;  /* network order */
};
_Static_assert(sizeof(struct dnsseal_dest4_key) == 8, "dnsseal_dest4_key size");

struct dnsseal_dest6_key {
	__u32 group;    /* host order: client group (table) number */
	__be32 addr[4]; /* network order; never IPv4-mapped (that is dnsseal_dests4) */
};
_Static_assert(sizeof(struct dnsseal_dest6_key) == 20, "dnsseal_dest6_key size");

/*
 * (group, family, address): the key of the intercept maps (dnsseal_icpt_fwd / _rev, below) and of
 * the pre-split dnsseal_dests. IPv4 in addr[0], addr[1..3] zero.
 */
struct dnsseal_dest_key {
	__u32 group;    /* host order: client group (table) number */
	__u8  family;   /* DNSSEAL_FAMILY_V4 / _V6 */
	__u8  pad[3];   /* zero */
	__be32 addr[4]; /* network order; IPv4 in addr[0], addr[1..3] zero */
};
_Static_assert(sizeof(struct dnsseal_dest_key) == 24, "dnsseal_dest_key size");

#define DNSSEAL_DEST_F_STATIC    0x1u /* static CIDR entry (config), never expires */
#define DNSSEAL_DEST_F_INTERCEPT 0x2u /* intercept-mode address (#6) */
/* The DNS hold ran out and the entry went idle: marked and steered exactly like a live entry;
 * the marker (LAN ingress), the intercept NAT and host egress count its packets in
 * DNSSEAL_CNT_RETIRED. Set and cleared by userspace only. */
#define DNSSEAL_DEST_F_RETIRED   0x4u
/* The entry's (peer) channel could not be set up: the guard drops every packet to it but IKE and
 * neighbour discovery (so the channel can still come up), ESP included (DNSSEAL_DROP_BLOCKED). */
#define DNSSEAL_DEST_F_BLOCKED   0x8u
/* Userspace bookkeeping, ignored by the programs: which text forms registered a family-4 entry
 * ("192.0.2.1" and/or "::ffff:192.0.2.1" — one kernel entry, removed when the last form goes). */
#define DNSSEAL_DEST_F_FORM_V4     0x40000000u
#define DNSSEAL_DEST_F_FORM_MAPPED 0x80000000u

struct dnsseal_dest_val {
	__u32 channel_id;   /* host order: 1..65535 */
	__u32 mark;         /* host order: skb->mark / SO_MARK for this channel */
	__u32 flags;        /* host order: DNSSEAL_DEST_F_* */
	__u32 pad;          /* zero */
	__u64 last_seen_ns; /* host order: bpf_ktime_get_ns() (CLOCK_MONOTONIC) of the last hit, 0 = never */
	__u64 expires_ns;   /* host order: CLOCK_MONOTONIC ns when the DNS hold runs out, 0 = none
	                     * (static, or not known); userspace only (CLOCK_MONOTONIC is system-wide,
	                     * so a restarted daemon reads the real hold back) */
};
_Static_assert(sizeof(struct dnsseal_dest_val) == 32, "dnsseal_dest_val size");

/*
 * dnsseal_config: BPF_MAP_TYPE_ARRAY, one slot (key __u32 0), written by userspace with the client
 * table. A map rather than `const volatile` globals: those are frozen at load, and the client
 * table changes at run time (reload, policy server). A new map is all zero = the safe default
 * (classify every packet by the dnsseal_clients LPM trie).
 *
 * A small client table (at most DNSSEAL_CFG_CLIENTS CIDRs that can match each family) is also
 * kept here, compiled by userspace into the order the trie would answer in (longest prefix
 * first, IPv4 CIDRs as the trie stores them: IPv4-mapped): the programs then test a few masked
 * words instead of walking the trie (~14 ns per packet). An empty table (every client in the
 * default group) costs nothing. Userspace clears DNSSEAL_CFG_F_INLINE before it rewrites the
 * table, so a program never reads a half-written one as valid.
 */
#define DNSSEAL_CFG_CLIENTS  8    /* client CIDRs per family kept inline */
#define DNSSEAL_CFG_F_INLINE 0x1u /* clients4/clients6 hold the whole client table: no LPM lookup */

struct dnsseal_cfg_client4 {
	__be32 net;   /* network order, host bits zero */
	__be32 mask;  /* network order */
	__u32 group;  /* host order */
};
_Static_assert(sizeof(struct dnsseal_cfg_client4) == 12, "dnsseal_cfg_client4 size");

struct dnsseal_cfg_client6 {
	__be32 net[4];  /* network order, host bits zero */
	__be32 mask[4]; /* network order */
	__u32 group;    /* host order */
};
_Static_assert(sizeof(struct dnsseal_cfg_client6) == 36, "dnsseal_cfg_client6 size");

struct dnsseal_config {
	__u32 flags; /* host order: DNSSEAL_CFG_F_* */
	__u32 n4;    /* host order: entries used in clients4 (IPv4 and IPv4-mapped sources) */
	__u32 n6;    /* host order: entries used in clients6 (other IPv6 sources) */
	__u32 pad;   /* zero */
	struct dnsseal_cfg_client4 clients4[DNSSEAL_CFG_CLIENTS]; /* longest prefix first */
	struct dnsseal_cfg_client6 clients6[DNSSEAL_CFG_CLIENTS]; /* longest prefix first */
};
_Static_assert(sizeof(struct dnsseal_config) == 400, "dnsseal_config size");

/*
 * dnsseal_clients: client address → group. BPF_MAP_TYPE_LPM_TRIE. IPv4 CIDRs are stored
 * IPv4-mapped (::ffff:0:0/96 + prefix), so one trie holds both families.
 */
struct dnsseal_client_key {
	__u32 prefixlen; /* host order: significant bits of addr (IPv4: 96 + prefix) */
	__be32 addr[4];  /* network order: IPv6 address, or ::ffff:a.b.c.d */
};
_Static_assert(sizeof(struct dnsseal_client_key) == 20, "dnsseal_client_key size");

struct dnsseal_client_val {
	__u32 group; /* host order */
};
_Static_assert(sizeof(struct dnsseal_client_val) == 4, "dnsseal_client_val size");

/* dnsseal_channels: channel id (__u32, host order) → state and IKE gateway. BPF_MAP_TYPE_HASH. */
#define DNSSEAL_CHAN_DOWN 0
#define DNSSEAL_CHAN_UP   1

#define DNSSEAL_CHAN_F_PEER   0x1u /* `peer` channel: IKE goes to the protected address itself */
#define DNSSEAL_CHAN_F_HAS_GW 0x2u /* gw_family/gw_addr hold the tunnel gateway */
/* `protocol: tls` channel (issue 13): TCP to its addresses goes through the relay (host mode: the
 * connect hook redirects it; gateway mode: the LAN program steers it), the guard lets out only TCP
 * to tls_port of the address itself (the relay's TLS to a `peer`) and drops the rest. */
#define DNSSEAL_CHAN_F_TLS    0x4u

struct dnsseal_channel_val {
	__u32 mark;      /* host order */
	__u32 state;     /* host order: DNSSEAL_CHAN_* */
	__u32 flags;     /* host order: DNSSEAL_CHAN_F_* */
	__u8  gw_family; /* DNSSEAL_FAMILY_V4 / _V6, 0 = none */
	__u8  pad;       /* zero */
	__be16 tls_port; /* network order: DNSSEAL_CHAN_F_TLS `peer` channel: the TLS port the relay
	                  * connects to at the protected address; 0 = none (a tls `tunnel` goes to its hub).
	                  * Was padding (zero) before: a pinned map of the older layout reads as "no port" */
	__be32 gw_addr[4]; /* network order, same form as dnsseal_dest_key.addr */
};
_Static_assert(sizeof(struct dnsseal_channel_val) == 32, "dnsseal_channel_val size");

/*
 * dnsseal_ike_socks: BPF_MAP_TYPE_SK_STORAGE (key: a socket fd in the updating process), a tag on
 * charon's own UDP sockets (IKE, NAT-T). Userspace tags them at every VICI (re)connect, reaching
 * them through pidfd_getfd (src/datapath/ebpf/ike-sockets.ts); a socket's tag dies with it, so a
 * restarted charon's new sockets are untagged (fail closed) until the next tagging. The guard
 * exempts only tagged sockets: their packets on egress (skb->sk), the socket an inbound packet
 * goes to (bpf_sk_lookup_udp) on ingress. Forwarded packets have no socket: never exempt.
 */
#define DNSSEAL_IKE_SOCK_CHARON 0x1u

struct dnsseal_ike_sock {
	__u32 flags; /* host order: DNSSEAL_IKE_SOCK_* */
};
_Static_assert(sizeof(struct dnsseal_ike_sock) == 4, "dnsseal_ike_sock size");

/*
 * dnsseal_counters: BPF_MAP_TYPE_PERCPU_ARRAY (a lookup the verifier inlines: no hashing on the
 * packet path). Key: __u32 slot, host order = kind * DNSSEAL_CNT_IDS + id, where an id at or
 * above DNSSEAL_CNT_IDS is counted in slot id 0 of its kind ("other"). Userspace sums the CPUs.
 */
#define DNSSEAL_CNT_IDS         1024
#define DNSSEAL_CNT_KINDS       7 /* kinds are 1..6; slot block 0 unused */
#define DNSSEAL_CNT_MARKED      1 /* id = channel: packets marked by the LAN ingress marker */
#define DNSSEAL_CNT_SOCK_MARKED 2 /* id = channel: sockets given SO_MARK by the cgroup hooks */
#define DNSSEAL_CNT_HOST_SENT   3 /* id = channel: host packets to protected addresses (cgroup egress) */
#define DNSSEAL_CNT_GUARD_DROP  4 /* id = DNSSEAL_DROP_* */
#define DNSSEAL_CNT_GUARD_PASS  5 /* id = DNSSEAL_PASS_*: protected destination let through */
#define DNSSEAL_CNT_RETIRED     6 /* id = channel: packets to a DNSSEAL_DEST_F_RETIRED entry (marker, NAT, host egress) */

struct dnsseal_counter_val {
	__u64 packets; /* host order */
	__u64 bytes;   /* host order: skb->len (0 for socket counts) */
};
_Static_assert(sizeof(struct dnsseal_counter_val) == 16, "dnsseal_counter_val size");

/* ---- leak guard verdict reasons ---- */
#define DNSSEAL_DROP_PLAIN_PROTECTED 1 /* clear packet to a protected destination */
#define DNSSEAL_DROP_MARKED_PLAIN    2 /* carries a dnsseal mark but XFRM did not encrypt it */
#define DNSSEAL_DROP_FRAGMENT        3 /* non-first fragment (no L4 header) of a non-ESP packet */
#define DNSSEAL_DROP_MALFORMED       4 /* L4 header truncated / unreadable */
#define DNSSEAL_DROP_EXTHDR          5 /* IPv6 extension header chain too long to follow */
#define DNSSEAL_DROP_BLOCKED         6 /* to a DNSSEAL_DEST_F_BLOCKED entry, ESP included */
/* inbound guard (tc ingress, lib/inbound.h): from a protected address */
#define DNSSEAL_DROP_IN_PLAIN        7 /* a clear packet (not ESP, not decrypted, not to charon's socket) */
#define DNSSEAL_DROP_IN_FRAGMENT     8 /* a non-first fragment or an over-long IPv6 extension chain, not ESP */

#define DNSSEAL_PASS_ESP      1 /* IP protocol 50 */
#define DNSSEAL_PASS_ESPINUDP 2 /* UDP carrying DNSSEAL_MARK_ENCRYPTED: ESP-in-UDP (RFC 3948) XFRM produced */
#define DNSSEAL_PASS_IKE      3 /* UDP from one of charon's own sockets (dnsseal_ike_socks): IKE, NAT-T */
#define DNSSEAL_PASS_ND       4 /* ICMPv6 neighbour discovery (types 133-137): no payload, and an
                                 * on-link peer must stay resolvable (unicast NUD probes) */
/* tls channels (issue 13; numbered apart from the IPsec reasons above) */
#define DNSSEAL_DROP_TLS_NOT_TCP 16 /* to a tls-channel address and not TCP (UDP, ICMP, ESP, …) */
#define DNSSEAL_DROP_TLS_BYPASS  17 /* TCP to a tls-channel address that is not the relay's TLS */
#define DNSSEAL_PASS_TLS         16 /* TCP to tls_port of a tls `peer` channel's address (the relay) */
/* inbound guard: from a protected address */
#define DNSSEAL_PASS_IN_ESP       5 /* ESP, for XFRM to decrypt */
#define DNSSEAL_PASS_IN_DECRYPTED 6 /* carries a secpath: XFRM decrypted it */
#define DNSSEAL_PASS_IN_IKE       7 /* UDP to one of charon's own sockets (IKE, NAT-T) */

/* IKE / NAT-T ports (host order) */
#define DNSSEAL_IKE_PORT   500
#define DNSSEAL_NATT_PORT  4500

/* ==== tls channel interception (issue 13) — bpf/lib/tls_*.h, src/datapath/ebpf/tls-maps.ts ==== */
/*
 * dnsseal_tls_config: BPF_MAP_TYPE_ARRAY, one slot (key __u32 0), written by userspace when the
 * relay listens. All zero (a new map, or no relay): TCP connects to tls-channel addresses are
 * refused (EPERM) in host mode and TCP from the LAN to them is dropped in gateway mode.
 */
/* Gateway mode: TCP from the LAN to a tls-channel address carries this mark, which the policy
 * route userspace installs (`ip rule fwmark DNSSEAL_TLS_LOCAL_MARK lookup DNSSEAL_TLS_TABLE`, a
 * `local default dev lo` route there) delivers locally, to the relay. Channel id 0 is no channel:
 * a packet that still reaches the WAN with it is dropped by the guard (DNSSEAL_DROP_MARKED_PLAIN). */
#define DNSSEAL_TLS_LOCAL_MARK 0x5e510000u
#define DNSSEAL_TLS_TABLE      24145 /* 0x5e51 */

#define DNSSEAL_TLS_F_RELAY4 0x1u /* addr4/port4 hold the relay for IPv4 sockets */
#define DNSSEAL_TLS_F_RELAY6 0x2u /* addr6/port6 hold the relay for IPv6 sockets (may be IPv4-mapped) */

struct dnsseal_tls_config {
	__u32 flags;      /* host order: DNSSEAL_TLS_F_* */
	__u32 relay_tgid; /* host order: the relay's process (bpf_get_current_pid_tgid() >> 32): its own
	                   * connects are never redirected */
	__be32 addr4;     /* network order */
	__be16 port4;     /* network order */
	__be16 port6;     /* network order */
	__be32 addr6[4];  /* network order */
	__u64 netns_cookie; /* host order: the relay's network namespace (SO_NETNS_COOKIE); host mode
	                     * redirects connects in that namespace only (another one has no relay at
	                     * these addresses: its traffic meets the guard). 0: any */
};
_Static_assert(sizeof(struct dnsseal_tls_config) == 40, "dnsseal_tls_config size");

/*
 * An address and port (family DNSSEAL_FAMILY_V4: addr[0], IPv4-mapped IPv6 folded into it).
 * dnsseal_tls_orig: the application's (local address, port) as the relay sees its peer → the
 *   original destination (LRU_HASH, written by the sockops program at TCP connect, read once by
 *   the relay, removed when the socket closes).
 * dnsseal_tls_cookie: socket cookie (__u64) → the original destination (LRU_HASH, written by the
 *   connect hook; read by sockops and by getpeername, removed when the socket closes).
 */
#define DNSSEAL_TLS_SOCKS_MAX 65536

struct dnsseal_tls_addr {
	__u8  family;   /* DNSSEAL_FAMILY_V4 / _V6 */
	__u8  pad;      /* zero */
	__be16 port;    /* network order */
	__be32 addr[4]; /* network order */
};
_Static_assert(sizeof(struct dnsseal_tls_addr) == 20, "dnsseal_tls_addr size");

/* dnsseal_tls_counters: PERCPU_ARRAY of struct dnsseal_counter_val, slot = DNSSEAL_TLS_CNT_*. */
#define DNSSEAL_TLS_CNT_MAX        8
#define DNSSEAL_TLS_CNT_REDIRECTED 1 /* host: TCP connects redirected to the relay */
#define DNSSEAL_TLS_CNT_REFUSED    2 /* host: TCP connects refused: no relay for the socket's family */
#define DNSSEAL_TLS_CNT_OWN        3 /* host: the relay's own connects, left alone */
#define DNSSEAL_TLS_CNT_STEERED    4 /* gateway: TCP SYNs from the LAN handed to the relay's socket */
#define DNSSEAL_TLS_CNT_NO_RELAY   5 /* gateway: TCP from the LAN dropped: no relay socket */
/* ==== end tls ==== */

/* ==== intercept (#6) — owned by src/intercept/, bpf/intercept.bpf.c; mirrored in layout.ts ==== */
/*
 * Intercept-address NAT. Keys are struct dnsseal_dest_key (group + address; family as the packet's,
 * no IPv4-mapped folding: the NAT translates within one family):
 *   dnsseal_icpt_fwd: (client group, intercept address) → real address   (LAN ingress: DNAT)
 *   dnsseal_icpt_rev: (client group, real address) → intercept address   (LAN egress: reverse)
 * Both BPF_MAP_TYPE_HASH, pinned with the other maps; the pool in src/intercept/ rebuilds itself
 * from them on start. The real address is also in dnsseal_dests4/6 (it gives the mark); an intercept
 * address whose real address is not protected there is dropped, never forwarded in clear.
 */
#define DNSSEAL_ICPT_MAX 262144

struct dnsseal_icpt_val {
	__u8  family;       /* DNSSEAL_FAMILY_V4 / _V6: always the key's family (no NAT46) */
	__u8  pad[3];       /* zero */
	__be32 addr[4];     /* network order: the other side (fwd: real, rev: intercept) */
	__u32 pad2;         /* zero */
	__u64 expires_ns;   /* host order: CLOCK_MONOTONIC ns when served TTL / min_hold runs out */
	__u64 last_seen_ns; /* host order: bpf_ktime_get_ns() of the last translated packet, 0 = never */
};
_Static_assert(sizeof(struct dnsseal_icpt_val) == 40, "dnsseal_icpt_val size");

/*
 * dnsseal_icpt_counters: BPF_MAP_TYPE_PERCPU_ARRAY of struct dnsseal_counter_val, own map (the
 * shared dnsseal_counters has a slot block per main-object kind only). Key: __u32 slot, host
 * order = kind * DNSSEAL_CNT_IDS + id (an id at or above DNSSEAL_CNT_IDS counts in id 0).
 */
#define DNSSEAL_ICPT_CNT_KINDS 3
#define DNSSEAL_ICPT_CNT_IN    0 /* id = channel: packets to an intercept address translated + marked */
#define DNSSEAL_ICPT_CNT_OUT   1 /* id 0: replies whose source went back to the intercept address; 1: ICMP errors (quoted header) */
#define DNSSEAL_ICPT_CNT_DROP  2 /* id = DNSSEAL_ICPT_DROP_* */

#define DNSSEAL_ICPT_DROP_UNPROTECTED 1 /* intercept mapping without a dnsseal_dests entry for the real address */
#define DNSSEAL_ICPT_DROP_FAMILY      2 /* mapping with a family other than the packet's */
#define DNSSEAL_ICPT_DROP_REWRITE     3 /* a helper failed while rewriting (packet left half-written) */
/* ==== end intercept ==== */

#endif /* DNSSEAL_H */
