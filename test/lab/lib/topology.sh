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

LAB_HOSTS="client router net hub srv peer www ns"

_ns_new() {
	ip netns add "$1" || lab_fail "ip netns add $1"
	on "$1" ip link set lo up
	# No DAD and no router solicitations: addresses are usable at once, captures stay quiet.
	on "$1" sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0 \
		net.ipv6.conf.all.router_solicitations=0 net.ipv6.conf.default.router_solicitations=0 \
		net.ipv6.conf.default.accept_ra=0
}

# _link A IFA B IFB — a veth pair between two namespaces.
_link() {
	ip link add "$2" netns "$1" type veth peer name "$4" netns "$3" || lab_fail "veth $1:$2 - $3:$4"
	on "$1" ip link set "$2" up
	on "$3" ip link set "$4" up
}

_addr() { on "$1" ip addr add "$3" dev "$2" nodad 2>/dev/null || on "$1" ip addr add "$3" dev "$2"; }

# topo_up — build the whole topology (≈1 s); fails the scenario on any error.
topo_up() {
	local h
	lab_log "topology: creating namespaces $LAB_HOSTS"
	for h in $LAB_HOSTS; do _ns_new "$h"; done

	on net ip link add br0 type bridge
	on net ip link set br0 up
	_addr net br0 $SINK4/24
	_addr net br0 $SINK6/64
	on net sysctl -qw net.ipv4.ip_forward=0 net.ipv6.conf.all.forwarding=0

	_link client eth0 router lan
	_addr client eth0 $CLIENT4/24
	_addr client eth0 $CLIENT6/64
	_addr router lan $ROUTER_LAN4/24
	_addr router lan $ROUTER_LAN6/64
	on client ip route add default via $ROUTER_LAN4
	on client ip -6 route add default via $ROUTER_LAN6

	local pair
	for pair in router:wan:$ROUTER4:$ROUTER6 hub:eth0:$HUB4:$HUB6 peer:eth0:$PEER4:$PEER6 \
		www:eth0:$WWW4:$WWW6 ns:eth0:$NS4:$NS6; do
		local host=${pair%%:*} rest=${pair#*:}
		local dev=${rest%%:*} rest=${rest#*:}
		local a4=${rest%%:*} a6=${rest#*:}
		_link "$host" "$dev" net "p-$host"
		on net ip link set "p-$host" master br0
		_addr "$host" "$dev" "$a4/24"
		_addr "$host" "$dev" "$a6/64"
		on "$host" ip route add default via $SINK4
		on "$host" ip -6 route add default via $SINK6
	done
	# The router is the LAN's gateway: WAN hosts reach the LAN through it.
	for h in peer www ns; do
		on "$h" ip route add $LAN4 via $ROUTER4
		on "$h" ip -6 route add $LAN6 via $ROUTER6
	done
	on router sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1

	_link hub srv srv eth0
	_addr hub srv $HUB_PROT4/24
	_addr hub srv $HUB_PROT6/64
	_addr srv eth0 $SRV4/24
	_addr srv eth0 $SRV6/64
	on srv ip route add default via $HUB_PROT4
	on srv ip -6 route add default via $HUB_PROT6
	on hub sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1

	# The bridge ports need a moment; check reachability on the segment before going on.
	wait_until 10 "the WAN segment (router -> hub)" on router ping -c1 -W1 $HUB4
	wait_until 10 "the WAN segment over IPv6 (router -> hub)" on router ping -6 -c1 -W1 $HUB6
	lab_log "topology: up"
}
