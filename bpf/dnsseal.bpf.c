// SPDX-License-Identifier: Apache-2.0
/*
 * dnsseal eBPF object: one thin entry per attach point; the logic lives in bpf/lib/ headers and the
 * map layouts in bpf/dnsseal.h. Loaded and pinned under /sys/fs/bpf/dnsseal/ by
 * src/datapath/ebpf/loader.ts.
 */
#include "lib/common.h"
#include "lib/maps.h"
#include "lib/lookup.h"
#include "lib/parse.h"
#include "lib/guard.h"
#include "lib/marker.h"
#include "lib/sock.h"
#include "lib/tls_redirect.h"
#include "lib/inbound.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Hook: cgroup v2 connect4 (root cgroup), host mode. Direction: local socket → IPv4 destination. */
SEC("cgroup/connect4")
int dnsseal_conn4(struct bpf_sock_addr *ctx)
{
	return dnsseal_sock4(ctx);
}

/* Hook: cgroup v2 connect6 (root cgroup), host mode. Direction: local socket → IPv6 (or mapped) destination. */
SEC("cgroup/connect6")
int dnsseal_conn6(struct bpf_sock_addr *ctx)
{
	return dnsseal_sock6(ctx);
}

/* Hook: cgroup v2 sendmsg4 (unconnected UDP), host mode. Direction: local socket → IPv4 destination. */
SEC("cgroup/sendmsg4")
int dnsseal_send4(struct bpf_sock_addr *ctx)
{
	return dnsseal_sock4(ctx);
}

/* Hook: cgroup v2 sendmsg6 (unconnected UDP), host mode. Direction: local socket → IPv6 (or mapped) destination. */
SEC("cgroup/sendmsg6")
int dnsseal_send6(struct bpf_sock_addr *ctx)
{
	return dnsseal_sock6(ctx);
}

/* Hook: cgroup v2 sock_ops (root cgroup), host mode. TCP connect of a socket the connect hook sent to the tls relay: records its original destination by local address and port. */
SEC("sockops")
int dnsseal_tls_ops(struct bpf_sock_ops *skops)
{
	return dnsseal_tls_sockops(skops);
}

/* Hook: cgroup v2 getpeername4 (root cgroup), host mode. A socket sent to the tls relay shows its original IPv4 destination. */
SEC("cgroup/getpeername4")
int dnsseal_peer4(struct bpf_sock_addr *ctx)
{
	return dnsseal_tls_peername(ctx, 0);
}

/* Hook: cgroup v2 getpeername6 (root cgroup), host mode. Same for IPv6 sockets (IPv4 originals as IPv4-mapped). */
SEC("cgroup/getpeername6")
int dnsseal_peer6(struct bpf_sock_addr *ctx)
{
	return dnsseal_tls_peername(ctx, 1);
}

/* Hook: cgroup_skb egress (root cgroup), host mode. Direction: outgoing, after XFRM; the leak guard at the socket level (raw sockets included, any interface). */
SEC("cgroup_skb/egress")
int dnsseal_cg_out(struct __sk_buff *skb)
{
	return dnsseal_host_egress(skb);
}

/* Hook: tc ingress (tcx or clsact) on LAN interfaces, gateway mode. Direction: client → router, before routing; sets skb->mark. */
SEC("tc")
int dnsseal_lan_in(struct __sk_buff *skb)
{
	return dnsseal_mark_lan(skb);
}

/* Hook: tc egress (tcx or clsact) on every interface but lo (gateway/intercept) or the WAN (host). Direction: outgoing, after XFRM; the leak guard. */
SEC("tc")
int dnsseal_wan_out(struct __sk_buff *skb)
{
	return dnsseal_guard(skb);
}

/* Hook: tc egress (tcx or clsact) on the LAN interfaces (gateway/intercept). Direction: outgoing to
 * the LAN, after XFRM; the leak guard by destination only (a protected address routed back out of
 * the LAN), since the packets XFRM decrypted for LAN clients carry the channel mark. */
SEC("tc")
int dnsseal_lan_out(struct __sk_buff *skb)
{
	return dnsseal_guard_lan(skb);
}

/* Hook: tc ingress (tcx or clsact) on every interface but lo and the LAN ones (gateway/intercept)
 * or but lo (host). Direction: incoming, before XFRM decrypts; the inbound guard. */
SEC("tc")
int dnsseal_in(struct __sk_buff *skb)
{
	return dnsseal_inbound(skb);
}
