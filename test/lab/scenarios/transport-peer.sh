#!/bin/bash
# transport-peer: host mode without dnsseal — transport-mode ESP from the router to
# peer.partner.test, selected by the mark, over IPv4 and IPv6.
#
# The router is the host whose applications talk. Its CHILD_SAs peer4 and peer6 (transport,
# mark_in/mark_out 0x43) only take marked packets; nft marks the router's own TCP, ICMP echo and
# UDP/5000 to the peer in a route chain (a stand-in for dnsseal's SO_MARK on sockets). The peer
# authenticates as peer.partner.test. Unmarked UDP/6000 to the peer and HTTP to www leave in
# clear — the mark, not the address, decides.
#
# Asserted on the router's WAN wire: ESP both ways for IPv4 and IPv6, no marked flow in clear.
. "$LAB_DIR/lib/lab.sh"

MARK=0x43

topo_up
charon_start router peer
{
	swan_conn peer4 local=$ROUTER4 remote=$PEER4 me=router them=peer mode=transport mark=$MARK start=trap
	swan_conn peer6 local=$ROUTER6 remote=$PEER6 me=router them=peer mode=transport mark=$MARK start=trap
} | swan_conf router
{
	swan_conn router4 local=$PEER4 remote=$ROUTER4 me=peer them=router mode=transport
	swan_conn router6 local=$PEER6 remote=$ROUTER6 me=peer them=router mode=transport
} | swan_conf peer
swan_load router peer
lab_log "configurations loaded"

# Marking in a route chain: a changed mark makes the kernel route (and XFRM-look up) again.
on router nft -f - <<EOF || lab_fail "nft rules on the router"
table inet lab {
	chain host_out {
		type route hook output priority mangle; policy accept;
		ip daddr $PEER4 meta l4proto tcp meta mark set $MARK
		ip daddr $PEER4 icmp type echo-request meta mark set $MARK
		ip daddr $PEER4 udp dport 5000 meta mark set $MARK
		ip6 daddr $PEER6 meta l4proto tcp meta mark set $MARK
		ip6 daddr $PEER6 icmpv6 type echo-request meta mark set $MARK
	}
}
EOF
lab_log "marking rules loaded"

http_serve peer "hello from peer"
http_serve www "hello from www"
capture_start wan net p-router

for child in peer4 peer6; do
	swan router --initiate --child $child --timeout 120 >"$LAB_OUT/initiate-$child.out" 2>&1 || {
		cat "$LAB_OUT/initiate-$child.out"
		lab_fail "the router could not bring up CHILD_SA $child"
	}
	lab_log "CHILD_SA $child up"
done

evaltest <<EOF_EVAL
# Marked traffic to the peer (TCP, ICMP, UDP/5000), IPv4 and IPv6.
router::ping -c 3 -W 10 $PEER4::3 packets received::YES
router::curl -sS -m 30 http://$PEER4/::hello from peer::YES
router::echo marked >/dev/udp/$PEER4/5000 && echo sent::sent::YES
router::ping -6 -c 3 -W 10 $PEER6_X::3 packets received::YES
router::curl -sS -m 30 http://[$PEER6_X]/::hello from peer::YES
# Unmarked traffic: UDP/6000 to the peer, HTTP to www.
router::echo unmarked >/dev/udp/$PEER4/6000 && echo sent::sent::YES
router::curl -sS -m 30 http://$WWW4/::hello from www::YES
# IKE: the peer proved peer.partner.test; both SAs are transport mode, AES-GCM.
router::swanctl --list-sas::remote 'peer\.partner\.test'::2
router::swanctl --list-sas::peer4: #[0-9]+, reqid [0-9]+, INSTALLED, TRANSPORT, ESP:AES_GCM_16-256::YES
router::swanctl --list-sas::peer6: #[0-9]+, reqid [0-9]+, INSTALLED, TRANSPORT, ESP:AES_GCM_16-256::YES
peer::swanctl --list-sas::INSTALLED, TRANSPORT, ESP:AES_GCM_16-256::2
router::ip xfrm policy::mark $MARK/0xffffffff::>=4
# The WAN wire: ESP both ways; nothing marked in clear; the unmarked flows in clear.
$(esp_both wan $ROUTER4 $PEER4 7)
$(esp_both wan $ROUTER6 $PEER6 7)
wan::tcpdump::IP $ROUTER4 > $PEER4: ICMP::NO
wan::tcpdump::IP $ROUTER4\.[0-9]+ > $PEER4\.(80|5000): ::NO
wan::tcpdump::IP $PEER4\.80 > ::NO
wan::tcpdump::IP6 $ROUTER6 > $PEER6: ICMP6::NO
wan::tcpdump::IP6 $ROUTER6\.[0-9]+ > $PEER6\.80: ::NO
wan::tcpdump::IP $ROUTER4\.[0-9]+ > $PEER4\.6000: UDP::1
wan::tcpdump::IP $ROUTER4\.[0-9]+ > $WWW4\.80: Flags \[S\]::YES
EOF_EVAL
