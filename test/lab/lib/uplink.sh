# A second uplink for the router (sourced by the scenarios that need it, after lib/lab.sh and
# topo_up): another provider, "isp2", that routes between its own network and the WAN segment.
#
#   uplink2_up        the router's "wan2" 198.18.0.1/24 to isp2 ("in" 198.18.0.254); isp2 sits on
#                     the WAN bridge as 192.0.2.12 (port p-isp2) and forwards, without NAT; the
#                     WAN hosts route 198.18.0.0/24 through it. The router gets no route over
#                     wan2 yet (uplink2_default adds one).
#   uplink2_default [METRIC]
#                     a default route over wan2 (what DHCP on the new uplink would add)
#   uplink1_fail      the first uplink fails: the router's wan goes down and loses its addresses
#                     (its default and connected routes go with them), so everything leaves
#                     over wan2
#
# The wire of the second uplink is isp2's "in" (capture_start wan2 isp2 in).
ROUTER2_4=198.18.0.1 ISP2_IN4=198.18.0.254 ISP2_PUB4=192.0.2.12 UPLINK2_NET4=198.18.0.0/24

uplink2_up() {
	local h
	ip netns add isp2 || lab_fail "uplink2: ip netns add isp2"
	_batch net <<-EOF
		link add p-isp2 type veth peer name pub netns isp2
		link set p-isp2 master br0 up
	EOF
	_batch isp2 <<-EOF
		link set lo up
		link set pub up
		addr add $ISP2_PUB4/24 dev pub
		route add default via $SINK4
		link add in type veth peer name wan2 netns router
		link set in up
		addr add $ISP2_IN4/24 dev in
	EOF
	_batch router <<-EOF
		link set wan2 up
		addr add $ROUTER2_4/24 dev wan2
	EOF
	on isp2 sysctl -qw net.ipv4.ip_forward=1 || lab_fail "uplink2: forwarding in isp2"
	for h in hub peer www ns; do
		echo "route add $UPLINK2_NET4 via $ISP2_PUB4" | _batch "$h"
	done
	wait_until 60 "the hub to reach the router's second uplink" on hub ping -c1 -W1 $ROUTER2_4
	lab_log "uplink2: router wan2 $ROUTER2_4 via isp2 ($ISP2_PUB4 on the WAN segment)"
}

uplink2_default() {
	echo "route add default via $ISP2_IN4 dev wan2 metric ${1:-100}" | _batch router
	lab_log "uplink2: default route over wan2 (metric ${1:-100})"
}

uplink1_fail() {
	_batch router <<-EOF
		link set wan down
		addr flush dev wan
	EOF
	lab_log "uplink1: the router's wan is down, its addresses gone"
}
