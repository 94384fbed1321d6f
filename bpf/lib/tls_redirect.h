/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Host mode, tls channels (issue 13): a TCP connect to a tls-channel address goes to the relay.
 *
 * - connect4/6 (dnsseal_tls_connect, called by lib/sock.h for an address of a tls channel):
 *   rewrites the destination to the relay (dnsseal_tls_config) and records the original by the
 *   socket's cookie. The relay's own connects (its tgid), and connects in another network
 *   namespace than the relay's (no relay there; the guard sees their traffic), are left alone. No relay for the
 *   socket's family (or none at all): the connect is refused (EPERM), never sent in clear. Other
 *   protocols are neither redirected nor marked: the guard drops them (DNSSEAL_DROP_TLS_NOT_TCP).
 * - sockops TCP_CONNECT_CB (the local port is bound by then, the SYN not sent yet): copies the
 *   original to dnsseal_tls_orig under the socket's local (address, port), which is what the
 *   relay sees as its peer, and asks for the state callback.
 * - sockops STATE_CB, TCP_CLOSE: removes both entries.
 * - getpeername4/6: the application sees the original destination, not the relay.
 * IPv4-mapped addresses are folded to family 4 in both maps, as the relay's peer text is.
 */
#ifndef DNSSEAL_LIB_TLS_REDIRECT_H
#define DNSSEAL_LIB_TLS_REDIRECT_H

#include "common.h"
#include "lookup.h"
#include "tls_maps.h"

#ifndef AF_INET
#define AF_INET 2
#endif
#ifndef AF_INET6
#define AF_INET6 10
#endif

static __always_inline void dnsseal_tls_addr_set(struct dnsseal_tls_addr *t, const struct dnsseal_addr *a, __be16 port)
{
	t->family = a->family;
	t->pad = 0;
	t->port = port;
	t->addr[0] = a->w[0];
	t->addr[1] = a->w[1];
	t->addr[2] = a->w[2];
	t->addr[3] = a->w[3];
}

/* Verdict for a connect to `dst` (an address of a tls channel). */
static __always_inline int dnsseal_tls_connect(struct bpf_sock_addr *ctx, const struct dnsseal_addr *dst, int v6)
{
	struct dnsseal_tls_config *cfg;
	struct dnsseal_tls_addr orig;
	__u32 zero = 0;
	__u64 cookie;

	if (ctx->protocol != IPPROTO_TCP)
		return DNSSEAL_CG_ALLOW;
	cfg = DNSSEAL_LOOKUP(dnsseal_tls_config, &zero);
	if (!cfg)
		return DNSSEAL_CG_DENY;
	/* Another network namespace (a container, a lab's other host) has no relay here: left to the guard. */
	if (cfg->netns_cookie && bpf_get_netns_cookie(ctx) != cfg->netns_cookie)
		return DNSSEAL_CG_ALLOW;
	if (cfg->relay_tgid && (__u32)(bpf_get_current_pid_tgid() >> 32) == cfg->relay_tgid) {
		dnsseal_tls_count(DNSSEAL_TLS_CNT_OWN, 0);
		return DNSSEAL_CG_ALLOW;
	}
	if (!(cfg->flags & (v6 ? DNSSEAL_TLS_F_RELAY6 : DNSSEAL_TLS_F_RELAY4))) {
		dnsseal_tls_count(DNSSEAL_TLS_CNT_REFUSED, 0);
		return DNSSEAL_CG_DENY;
	}
	dnsseal_tls_addr_set(&orig, dst, (__be16)ctx->user_port);
	cookie = bpf_get_socket_cookie(ctx);
	if (bpf_map_update_elem(&dnsseal_tls_cookie, &cookie, &orig, BPF_ANY)) {
		dnsseal_tls_count(DNSSEAL_TLS_CNT_REFUSED, 0);
		return DNSSEAL_CG_DENY;
	}
	if (v6) {
		ctx->user_ip6[0] = cfg->addr6[0];
		ctx->user_ip6[1] = cfg->addr6[1];
		ctx->user_ip6[2] = cfg->addr6[2];
		ctx->user_ip6[3] = cfg->addr6[3];
		ctx->user_port = cfg->port6;
	} else {
		ctx->user_ip4 = cfg->addr4;
		ctx->user_port = cfg->port4;
	}
	dnsseal_tls_count(DNSSEAL_TLS_CNT_REDIRECTED, 0);
	return DNSSEAL_CG_ALLOW;
}

/* The socket's local (address, port) as the relay sees its peer; 0 when not IPv4/IPv6. */
static __always_inline int dnsseal_tls_local_key(struct bpf_sock_ops *skops, struct dnsseal_tls_addr *k)
{
	struct dnsseal_addr a;
	__be32 w[4];

	if (skops->family == AF_INET) {
		dnsseal_addr_from_v4(&a, skops->local_ip4);
	} else if (skops->family == AF_INET6) {
		w[0] = skops->local_ip6[0];
		w[1] = skops->local_ip6[1];
		w[2] = skops->local_ip6[2];
		w[3] = skops->local_ip6[3];
		dnsseal_addr_from_v6(&a, w);
	} else {
		return 0;
	}
	dnsseal_tls_addr_set(k, &a, bpf_htons((__u16)skops->local_port));
	return 1;
}

static __always_inline int dnsseal_tls_sockops(struct bpf_sock_ops *skops)
{
	struct dnsseal_tls_addr k, *orig;
	__u64 cookie;

	if (skops->op == BPF_SOCK_OPS_TCP_CONNECT_CB) {
		cookie = bpf_get_socket_cookie(skops);
		orig = DNSSEAL_LOOKUP(dnsseal_tls_cookie, &cookie);
		if (!orig || !dnsseal_tls_local_key(skops, &k))
			return 1;
		bpf_map_update_elem(&dnsseal_tls_orig, &k, orig, BPF_ANY);
		bpf_sock_ops_cb_flags_set(skops, skops->bpf_sock_ops_cb_flags | BPF_SOCK_OPS_STATE_CB_FLAG);
	} else if (skops->op == BPF_SOCK_OPS_STATE_CB && skops->args[1] == BPF_TCP_CLOSE) {
		cookie = bpf_get_socket_cookie(skops);
		bpf_map_delete_elem(&dnsseal_tls_cookie, &cookie);
		if (dnsseal_tls_local_key(skops, &k))
			bpf_map_delete_elem(&dnsseal_tls_orig, &k);
	}
	return 1;
}

/* getpeername: the original destination of a redirected socket (anything else unchanged). */
static __always_inline int dnsseal_tls_peername(struct bpf_sock_addr *ctx, int v6)
{
	__u64 cookie = bpf_get_socket_cookie(ctx);
	struct dnsseal_tls_addr *o = DNSSEAL_LOOKUP(dnsseal_tls_cookie, &cookie);

	if (!o)
		return DNSSEAL_CG_ALLOW;
	if (!v6) {
		if (o->family != DNSSEAL_FAMILY_V4)
			return DNSSEAL_CG_ALLOW;
		ctx->user_ip4 = o->addr[0];
	} else if (o->family == DNSSEAL_FAMILY_V4) {
		ctx->user_ip6[0] = 0;
		ctx->user_ip6[1] = 0;
		ctx->user_ip6[2] = bpf_htonl(0x0000ffff);
		ctx->user_ip6[3] = o->addr[0];
	} else {
		ctx->user_ip6[0] = o->addr[0];
		ctx->user_ip6[1] = o->addr[1];
		ctx->user_ip6[2] = o->addr[2];
		ctx->user_ip6[3] = o->addr[3];
	}
	ctx->user_port = o->port;
	return DNSSEAL_CG_ALLOW;
}

#endif
