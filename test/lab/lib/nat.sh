# NAT in front of the router and of the peer, and a WAN that is hostile to IP fragments (sourced
# by the scenarios that need them, after lib/lab.sh and topo_up).
#
#   nat_router     the router behind a masquerading NAT "rnat": the router's wan moves to
#                  rnat (as "pub", still 192.0.2.1 on the bridge port p-router) and the router
#                  gets a new "wan" 10.0.2.1/24 towards rnat's "in" 10.0.2.254 (its default
#                  route). IPv4 only: the router has no IPv6 WAN address behind the NAT.
#   nat_peer       the peer behind a NAT "pnat" the same way: pnat owns 192.0.2.3 (what DNS
#                  gives for peer.partner.test), forwards UDP 500 and 4500 to the peer at
#                  10.0.3.3 and masquerades what the peer sends.
#   wan_mtu MTU    MTU on every link of the WAN side (the bridge, its ports, the hosts' and
#                  the NAT boxes' links; not the LAN nor the hub's link to srv)
#   wan_no_fragments  the WAN bridge drops IP fragments (counted: nft counter "fragments" in
#                  table bridge lab_frag of "net"): a message that needs fragmenting must be
#                  split by IKE itself (RFC 7383), as on a path whose NAT drops fragments
#
# The NATs forget an idle UDP mapping after NAT_UDP_TIMEOUT seconds (5; Linux's defaults are
# 30 and 120): only keepalives keep a quiet mapping alive for longer. Addresses:
NAT_UDP_TIMEOUT=5
ROUTER_IN4=10.0.2.1 RNAT_IN4=10.0.2.254
PEER_IN4=10.0.3.3 PNAT_IN4=10.0.3.254

# _nat_box NAT HOST DEV PUB4 IN4 INNER4 — move HOST's DEV into the new namespace NAT as "pub"
# (PUB4), link NAT ("in", IN4) and HOST (DEV again, INNER4), HOST's default route via NAT.
_nat_box() {
	local nat=$1 host=$2 dev=$3 pub=$4 in=$5 inner=$6
	ip netns add "$nat" || lab_fail "nat: ip netns add $nat"
	_batch "$host" <<-EOF
		link set $dev down
		link set $dev name pub netns $nat
		link add $dev type veth peer name in netns $nat
		link set $dev up
		addr add $inner/24 dev $dev
		route replace default via $in
	EOF
	_batch "$nat" <<-EOF
		link set lo up
		link set pub up
		addr add $pub/24 dev pub
		route add default via $SINK4
		link set in up
		addr add $in/24 dev in
	EOF
	on "$nat" sysctl -qw net.ipv4.ip_forward=1 || lab_fail "nat: forwarding in $nat"
}

# _nat_timeouts NAT — the short UDP timeouts (the sysctls exist once the nat table has loaded
# nf_conntrack).
_nat_timeouts() {
	on "$1" sysctl -qw net.netfilter.nf_conntrack_udp_timeout=$NAT_UDP_TIMEOUT \
		net.netfilter.nf_conntrack_udp_timeout_stream=$NAT_UDP_TIMEOUT ||
		lab_fail "nat: conntrack UDP timeouts in $1"
}

nat_router() {
	_nat_box rnat router wan $ROUTER4 $RNAT_IN4 $ROUTER_IN4
	on rnat nft -f - <<-EOF || lab_fail "nat: masquerade in rnat"
		table ip lab_nat {
			chain post {
				type nat hook postrouting priority srcnat; policy accept;
				oifname "pub" masquerade
			}
		}
	EOF
	_nat_timeouts rnat
	wait_until 60 "the router to reach the hub through rnat" on router ping -c1 -W1 $HUB4
	lab_log "nat: router $ROUTER_IN4 behind rnat ($ROUTER4, masquerade, UDP timeout ${NAT_UDP_TIMEOUT}s)"
}

nat_peer() {
	_nat_box pnat peer eth0 $PEER4 $PNAT_IN4 $PEER_IN4
	on pnat nft -f - <<-EOF || lab_fail "nat: port forwarding in pnat"
		table ip lab_nat {
			chain pre {
				type nat hook prerouting priority dstnat; policy accept;
				iifname "pub" udp dport { 500, 4500 } dnat to $PEER_IN4
			}
			chain post {
				type nat hook postrouting priority srcnat; policy accept;
				oifname "pub" masquerade
			}
		}
	EOF
	_nat_timeouts pnat
	wait_until 60 "the peer to reach the hub through pnat" on peer ping -c1 -W1 $HUB4
	lab_log "nat: peer $PEER_IN4 behind pnat ($PEER4, UDP 500/4500 forwarded, masquerade)"
}

wan_mtu() {
	local mtu=$1 h dev
	for h in net router hub peer www ns rnat pnat; do
		[ -e "/run/netns/$h" ] || continue
		for dev in $(ip -n "$h" -o link show | sed -n 's/^[0-9]*: \([^:@]*\).*/\1/p'); do
			case $h:$dev in *:lo | router:lan | hub:srv) continue ;; esac
			echo "link set $dev mtu $mtu"
		done | _batch "$h"
	done
	lab_log "wan: MTU $mtu on every WAN link"
}

wan_no_fragments() {
	on net nft -f - <<-EOF || lab_fail "nft: the fragment filter on the WAN bridge"
		table bridge lab_frag {
			counter fragments { }
			chain forward {
				type filter hook forward priority filter; policy accept;
				ip frag-off & 0x3fff != 0 counter name fragments drop
			}
		}
	EOF
	lab_log "wan: the bridge drops IP fragments"
}
