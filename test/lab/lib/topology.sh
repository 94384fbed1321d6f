# The DESIGN.md topology in network namespaces, IPv4 and IPv6:
#
#   client ── lan ── router ── wan ── net ──┬── hub ── srv (198.51.100.10, protected servers)
#                                           ├── peer   (peer.partner.test)
#                                           ├── www    (www.public.test, plain)
#                                           └── ns     (authoritative DNS for *.test)
#
# "net" is a bridge (an L2 segment) with a sink address 192.0.2.254 / 2001:db8::fe that the
# WAN hosts use as their default gateway; it does not forward, so a packet that leaks in clear
# towards a protected network is seen on the router's WAN capture and goes nowhere.
#
# Every process start costs ~0.3 s under TCG, so the links and addresses of a namespace are set
# in one `ip -batch`, and IPv6 settings are inherited from the root namespace.

# Addresses (used by scenarios and assertions).
LAN4=10.0.1.0/24 LAN6=fd00:1::/64
CLIENT4=10.0.1.10 CLIENT6=fd00:1::10
ROUTER_LAN4=10.0.1.1 ROUTER_LAN6=fd00:1::1
ROUTER4=192.0.2.1 ROUTER6=2001:db8::1
HUB4=192.0.2.2 HUB6=2001:db8::2
PEER4=192.0.2.3 PEER6=2001:db8::3
WWW4=192.0.2.4 WWW6=2001:db8::4
NS4=192.0.2.53 NS6=2001:db8::53
SINK4=192.0.2.254 SINK6=2001:db8::fe
PROT4=198.51.100.0/24 PROT6=2001:db8:100::/64
HUB_PROT4=198.51.100.1 HUB_PROT6=2001:db8:100::1
SRV4=198.51.100.10 SRV6=2001:db8:100::10

# The same IPv6 addresses written out without "::", for evaltest COMMAND fields (which are
# delimited by "::"); patterns may use the compressed forms.
CLIENT6_X=fd00:1:0:0:0:0:0:10 ROUTER6_X=2001:db8:0:0:0:0:0:1 HUB6_X=2001:db8:0:0:0:0:0:2
PEER6_X=2001:db8:0:0:0:0:0:3 WWW6_X=2001:db8:0:0:0:0:0:4 NS6_X=2001:db8:0:0:0:0:0:53
SRV6_X=2001:db8:100:0:0:0:0:10

LAB_HOSTS="client router net hub srv peer www ns"

# _batch NS — run `ip -batch` (stdin) in namespace NS; fail the scenario on error.
_batch() {
	local ns=$1 out
	if ! out=$(ip -n "$ns" -batch - 2>&1); then
		echo "$out"
		lab_fail "topology: ip -batch in $ns failed"
	fi
}

# topo_up — build the whole topology; fails the scenario on any error.
topo_up() {
	local h a4 a6
	lab_log "topology: creating namespaces $LAB_HOSTS"
	# New namespaces copy these from the root namespace: no DAD, no router solicitations or
	# RAs, so addresses are usable at once and captures stay quiet.
	sysctl -qw net.core.devconf_inherit_init_net=1 \
		net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0 \
		net.ipv6.conf.all.router_solicitations=0 net.ipv6.conf.default.router_solicitations=0 \
		net.ipv6.conf.all.accept_ra=0 net.ipv6.conf.default.accept_ra=0 \
		net.ipv4.ip_forward=0 net.ipv6.conf.all.forwarding=0 ||
		lab_fail "topology: sysctl in the root namespace"
	for h in $LAB_HOSTS; do echo "netns add $h"; done | ip -batch - || lab_fail "topology: ip netns add"

	_batch net <<-EOF
		link set lo up
		link add br0 type bridge
		link set br0 up
		addr add $SINK4/24 dev br0
		addr add $SINK6/64 dev br0 nodad
		link add p-router type veth peer name wan netns router
		link add p-hub type veth peer name eth0 netns hub
		link add p-peer type veth peer name eth0 netns peer
		link add p-www type veth peer name eth0 netns www
		link add p-ns type veth peer name eth0 netns ns
		link set p-router master br0 up
		link set p-hub master br0 up
		link set p-peer master br0 up
		link set p-www master br0 up
		link set p-ns master br0 up
	EOF
	_batch client <<-EOF
		link set lo up
		link add eth0 type veth peer name lan netns router
		link set eth0 up
		addr add $CLIENT4/24 dev eth0
		addr add $CLIENT6/64 dev eth0 nodad
		route add default via $ROUTER_LAN4
		route add default via $ROUTER_LAN6
	EOF
	_batch router <<-EOF
		link set lo up
		link set lan up
		addr add $ROUTER_LAN4/24 dev lan
		addr add $ROUTER_LAN6/64 dev lan nodad
		link set wan up
		addr add $ROUTER4/24 dev wan
		addr add $ROUTER6/64 dev wan nodad
		route add default via $SINK4
		route add default via $SINK6
	EOF
	_batch hub <<-EOF
		link set lo up
		link set eth0 up
		addr add $HUB4/24 dev eth0
		addr add $HUB6/64 dev eth0 nodad
		route add default via $SINK4
		route add default via $SINK6
		link add srv type veth peer name eth0 netns srv
		link set srv up
		addr add $HUB_PROT4/24 dev srv
		addr add $HUB_PROT6/64 dev srv nodad
	EOF
	_batch srv <<-EOF
		link set lo up
		link set eth0 up
		addr add $SRV4/24 dev eth0
		addr add $SRV6/64 dev eth0 nodad
		route add default via $HUB_PROT4
		route add default via $HUB_PROT6
	EOF
	# The router is the LAN's gateway: the other WAN hosts reach the LAN through it.
	for h in peer:$PEER4:$PEER6 www:$WWW4:$WWW6 ns:$NS4:$NS6; do
		a4=${h#*:}
		a4=${a4%%:*}
		a6=${h#*:*:}
		_batch "${h%%:*}" <<-EOF
			link set lo up
			link set eth0 up
			addr add $a4/24 dev eth0
			addr add $a6/64 dev eth0 nodad
			route add default via $SINK4
			route add default via $SINK6
			route add $LAN4 via $ROUTER4
			route add $LAN6 via $ROUTER6
		EOF
	done
	for h in router hub; do
		on "$h" sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1 ||
			lab_fail "topology: forwarding on $h"
	done

	# The bridge ports need a moment: wait until the segment carries a ping each way.
	wait_until 60 "the WAN segment (router -> hub)" on router ping -c1 -W1 $HUB4
	wait_until 60 "the WAN segment over IPv6 (router -> hub)" on router ping -6 -c1 -W1 $HUB6
	lab_log "topology: up"
}
