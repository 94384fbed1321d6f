#!/bin/bash
# nat-traversal: issue #14, item 1 — host mode with a NAT on both sides: the router behind a
# masquerading NAT (rnat), peer.partner.test behind a second NAT (pnat: 192.0.2.3 forwards UDP
# 500/4500 to the peer at 10.0.3.3). Both NATs forget an idle UDP mapping after 5 s.
#
#   up     dnsseal (host mode, peer channel, %name) brings the per-peer SA up before its
#          answer: NAT detected on both sides, IKE floats to UDP 4500, transport mode in UDP
#          (TRANSPORT-in-UDP). The router's curl and UDP go as ESP-in-UDP.
#   idle   nothing to send: the router's charon (keep_alive = 2s) sends NAT-T keepalives; the
#          phase lasts until it sent 4 (longer than the NATs' 5 s UDP timeout).
#   in     the peer pings the router's public address: the ESP-in-UDP reaches the router only
#          through rnat's mapping, which the keepalives held (the router's replies are not
#          marked by any hook: the guard drops them, never clear).
# Asserted: ESP-in-UDP between the two public addresses on the WAN wire, keepalives there, zero
# clear packets to or from the peer on the WAN wire and on the router's side of its NAT.
# Issue 11, item 7: an application's UDP datagram to the peer's port 4500 must not leave in
# clear either (before the guard exempted only charon's own sockets, it did: "IP
# 10.0.2.1.45000 > 192.0.2.3.4500: UDP-encap" on both captures, 2026-12-02). NATT_APP_CHECK=1
# sends it and asserts that the host guard refuses it (EPERM) and it is on neither capture.
NATT_APP_CHECK=1
. "$LAB_DIR/lib/lab.sh"
. "$LAB_DIR/lib/nat.sh"
. "$LAB_DIR/lib/guard.sh"

dnsseal_require
topo_up
nat_router
nat_peer
dns_serve
LAB_CHARON_OPTS="keep_alive = 2s" charon_start router peer
swan_conf router </dev/null
peer_transport_conn router4 $PEER_IN4 %any | swan_conf peer
swan_load router peer
http_serve peer "hello from peer"
dnsseal_start router --mode host --datapath ebpf --wan wan \
	--listen 127.0.0.53:53 --upstream $NS4 --local-id "$(lab_id router)" \
	--channel "partner=peer,identity=%name,esp=$LAB_ESP_PROPOSAL,negotiate_timeout=20000" \
	--protect 'peer.partner.test=partner' --metrics "$GUARD_METRICS" --log-level debug ||
	lab_fail "dnsseal does not start in host mode: $DNSSEAL_ERROR"
capture_start wan net p-router
capture_start inner rnat in

EXT=$PEER4\.4500 ME=$ROUTER4\.4500
evaltest --continue <<EOF_EVAL
router::dns-answer 127.0.0.53 peer.partner.test A::^192\\.0\\.2\\.3$::1
router::swanctl --list-sas::INSTALLED, TRANSPORT-in-UDP, ESP:AES_GCM_16-256::YES
router::curl -sS -m 30 http://$PEER4/::hello from peer::YES
router::echo marked >/dev/udp/$PEER4/5000 && echo sent::sent::YES
EOF_EVAL
APP_LINES=
if [ "$NATT_APP_CHECK" = 1 ]; then
	# The host guard (cgroup egress) refuses it with EPERM: the datagram is not charon's.
	on router python3 -c "import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(('', 45000)); s.sendto(b'not-ike', ('$PEER4', 4500))" >"$LAB_OUT/app-4500.out" 2>&1
	grep -q 'Operation not permitted' "$LAB_OUT/app-4500.out" ||
		lab_fail "the application's datagram to $PEER4:4500 was not refused by the guard: $(tail -1 "$LAB_OUT/app-4500.out")"
	APP_LINES="wan::tcpdump::IP $ROUTER4\\.45000 > $PEER4\\.4500::NO
inner::tcpdump::IP $ROUTER_IN4\\.45000 > $PEER4\\.4500::NO"
fi

# Quiet: only the keepalives keep rnat's mapping alive for longer than its UDP timeout.
flow_phase idle
ka_from=$(grep -c 'sending keep alive' "$LAB_OUT/charon-router.log")
_keepalives() { [ "$(grep -c 'sending keep alive' "$LAB_OUT/charon-router.log")" -ge $((ka_from + $1)) ]; }
wait_until 120 "4 NAT-T keepalives from the router's charon" _keepalives 4
echos() { on router nstat -az IcmpInEchos | awk '$1 == "IcmpInEchos" { print $2 }'; }
echos_idle=$(echos)
flow_phase in
on peer ping -c 3 -W 5 $ROUTER4 >"$LAB_OUT/ping-in.out" 2>&1
echos_in=$(echos)
lab_log "ICMP echo requests the router received: $echos_idle before, $echos_in after the peer's pings"

evaltest <<EOF_EVAL
lab::echo "echos \$(($echos_in - $echos_idle))"::^echos ([3-9]|[1-9][0-9])$::1
lab::cat $LAB_OUT/charon-router.log::local host is behind NAT, sending keep alives::YES
lab::cat $LAB_OUT/charon-router.log::remote host is behind NAT::YES
peer::swanctl --list-sas::INSTALLED, TRANSPORT-in-UDP::YES
wan::tcpdump::IP $ROUTER4\.500 > $PEER4\.500: isakmp::YES
wan::tcpdump::IP $ME > $EXT: UDP-encap: ESP\(::>=4
wan::tcpdump::IP $EXT > $ME: UDP-encap: ESP\(::>=4
wan::tcpdump::IP $ME > $EXT: isakmp-nat-keep-alive::>=4
wan::tcpdump::IP $ROUTER4 > $PEER4: ESP::NO
wan::tcpdump::IP $ROUTER4\.[0-9]+ > $PEER4\.(80|5000): ::NO
wan::tcpdump::IP $PEER4\.80 > ::NO
wan::tcpdump::IP $ROUTER4 > $PEER4: ICMP::NO
inner::tcpdump::IP $ROUTER_IN4\.4500 > $EXT: UDP-encap: ESP\(::>=4
inner::tcpdump::IP $ROUTER_IN4\.[0-9]+ > $PEER4\.(80|5000): ::NO
inner::tcpdump::IP $ROUTER_IN4 > $PEER4: ICMP::NO
$APP_LINES
EOF_EVAL
