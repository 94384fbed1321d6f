# Intercept mode (issue #6) with the real daemon: the pieces an intercept scenario needs on top
# of lib/gateway.sh (sourced by lab.sh; this file only adds, it changes nothing there).
#
#   intercept_setup      gateway_setup (topology, knotd, charons, hub, httpd), then re-plumbs the
#                        LAN so that the router is NOT the client's default gateway (below), adds
#                        multi.saas.test (three A records) to the zone, three addresses on srv and
#                        a UDP echo server on srv:5000
#   intercept_dnsseal    dnsseal --mode intercept on the router (pools $ICPT_POOL4/$ICPT_POOL6,
#                        tc on lan/wan, channel saas = tunnel to the hub, rule *.saas.test)
#   v6_explode ADDR      ADDR written without "::" (for evaltest COMMAND fields)
#
# LAN after intercept_setup (the router keeps its addresses; "gw" is a new namespace):
#
#   client eth0 ──┐ gw: br0 10.0.1.254 / fd00:1::fe (the LAN switch + the default gateway)
#   10.0.1.10     ├── p-client
#                 ├── p-node ── router lan 10.0.1.1 (dnsseal, intercept node)
#                 └── gw wan 192.0.2.5 / 2001:db8::5 ── net p-gw
#
#   client routes: default via gw; $ICPT_POOL4 / $ICPT_POOL6 via the router; DNS = the router.
#   www, ns, peer: the LAN via gw (so the direct path is symmetric and never touches the router).
# The router's WAN wire is still net:p-router, the default gateway's is net:p-gw.

GW_LAN4=10.0.1.254 GW_LAN6=fd00:1::fe
GW4=192.0.2.5 GW6=2001:db8::5
ICPT_POOL4=${ICPT_POOL4:-100.64.0.0/16}
ICPT_POOL6=${ICPT_POOL6:-fd00:64::/96}
# Extra real addresses on srv, the A records of multi.saas.test (with $SRV4).
SRV4_B=198.51.100.11 SRV4_C=198.51.100.12

v6_explode() {
	python3 -c 'import ipaddress, sys; print(ipaddress.ip_address(sys.argv[1]).exploded)' "$1"
}

_intercept_lan() {
	lab_log "intercept: re-plumbing the LAN behind gw (default gateway != the router)"
	ip netns add gw || lab_fail "intercept: ip netns add gw"
	# Deleting the client's end removes the router's "lan" too (one veth pair).
	_batch client <<<"link del eth0"
	_batch gw <<-EOF
		link set lo up
		link add br0 type bridge
		link set br0 up
		addr add $GW_LAN4/24 dev br0
		addr add $GW_LAN6/64 dev br0 nodad
		link add p-client type veth peer name eth0 netns client
		link add p-node type veth peer name lan netns router
		link set p-client master br0 up
		link set p-node master br0 up
		link add wan type veth peer name p-gw netns net
		link set wan up
		addr add $GW4/24 dev wan
		addr add $GW6/64 dev wan nodad
		route add default via $SINK4
		route add default via $SINK6
	EOF
	_batch net <<<"link set p-gw master br0 up"
	_batch client <<-EOF
		link set eth0 up
		addr add $CLIENT4/24 dev eth0
		addr add $CLIENT6/64 dev eth0 nodad
		route add default via $GW_LAN4
		route add default via $GW_LAN6
		route add $ICPT_POOL4 via $ROUTER_LAN4
		route add $ICPT_POOL6 via $ROUTER_LAN6
	EOF
	_batch router <<-EOF
		link set lan up
		addr add $ROUTER_LAN4/24 dev lan
		addr add $ROUTER_LAN6/64 dev lan nodad
	EOF
	local h
	for h in www ns peer; do
		_batch "$h" <<-EOF
			route replace $LAN4 via $GW4
			route replace $LAN6 via $GW6
		EOF
	done
	on gw sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1 ||
		lab_fail "intercept: forwarding on gw"
	wait_until 60 "the LAN (client -> router)" on client ping -c1 -W1 $ROUTER_LAN4
	wait_until 60 "the LAN over IPv6 (client -> router)" on client ping -6 -c1 -W1 $ROUTER_LAN6
	wait_until 60 "the direct path (client -> gw -> www)" on client ping -c1 -W1 $WWW4
}

# multi.saas.test: three A records (SRV4, SRV4_B, SRV4_C), added to the running knotd.
_intercept_zone() {
	local conf=$LAB_TMP/ns/knot.conf out
	if ! out=$(knotc -c "$conf" zone-begin saas.test 2>&1 &&
		knotc -c "$conf" zone-set saas.test multi 60 A $SRV4 2>&1 &&
		knotc -c "$conf" zone-set saas.test multi 60 A $SRV4_B 2>&1 &&
		knotc -c "$conf" zone-set saas.test multi 60 A $SRV4_C 2>&1 &&
		knotc -c "$conf" zone-commit saas.test 2>&1); then
		echo "$out"
		lab_fail "intercept: adding multi.saas.test to knotd"
	fi
	wait_until 60 "multi.saas.test in knotd" \
		sh -c "ip netns exec ns kdig +short +timeout=1 +retry=0 @$NS4 multi.saas.test A | grep -c . | grep -qx 3"
	lab_log "dns: multi.saas.test -> $SRV4 $SRV4_B $SRV4_C"
}

# A UDP echo server on srv port 5000 (IPv4 and IPv6): answers "echo:<datagram>".
_intercept_udp_echo() {
	ip netns exec srv python3 -c '
import select, socket
s4 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s4.bind(("0.0.0.0", 5000))
s6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
s6.bind(("::", 5000))
while True:
    for s in select.select([s4, s6], [], [])[0]:
        d, a = s.recvfrom(2048)
        s.sendto(b"echo:" + d, a)
' >"$LAB_OUT/udp-echo-srv.log" 2>&1 &
	LAB_PIDS+=($!)
	wait_until 60 "the UDP echo server in srv to listen on udp/5000" listening srv udp 5000
	lab_log "udp echo: srv:5000"
}

intercept_setup() {
	gateway_setup
	_batch srv <<-EOF
		addr add $SRV4_B/24 dev eth0
		addr add $SRV4_C/24 dev eth0
	EOF
	_intercept_lan
	_intercept_zone
	_intercept_udp_echo
}

intercept_dnsseal() {
	dnsseal_start router --mode intercept --datapath ebpf --lan lan --wan wan \
		--intercept-pool "$ICPT_POOL4" --intercept-pool "$ICPT_POOL6" \
		--listen $ROUTER_LAN4:53 --upstream $NS4 --local-id "$(lab_id router)" \
		--channel "saas=tunnel:$HUB4,identity=$(lab_id hub),esp=$LAB_ESP_PROPOSAL" \
		--protect '*.saas.test=saas' --log-level debug "$@"
}
