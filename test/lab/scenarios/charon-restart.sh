#!/bin/bash
# charon-restart: a running flow through the marked tunnel survives the router's charon being
# killed, and never leaks — the stand-in for issue #4 lab item 6, without dnsseal.
#
# Setup as tunnel-hub, plus a stand-in for dnsseal's leak guard on the router: an nft rule that
# drops (and counts) packets leaving the WAN to 198.51.100.0/24 that are not on an IPsec route
# (`rt ipsec missing`: the inner packet on its way into XFRM passes POSTROUTING too, with an
# IPsec route; the ESP packet that leaves is addressed to the hub).
#
# The client pings the server every 0.5 s throughout; each phase starts once the step before
# it has taken effect (charon has exited, the CHILD_SA is up):
#   kill9     charon SIGKILLed: the kernel keeps its SAs and policies, the flow goes on encrypted;
#   restart1  charon started again and the tunnel initiated;
#   term      charon SIGTERMed: it removes its policies and SAs, the marked packets meet no XFRM
#             policy and the guard drops them (the phase lasts until it has dropped 4);
#   restart2  charon back: the flow resumes.
# Asserted: replies in every phase but "term", guard drops counted, zero clear packets to or
# from the protected network on the WAN wire.
. "$LAB_DIR/lib/lab.sh"

tunnel_setup
tunnel_mark_lan
on router nft -f - <<EOF || lab_fail "nft guard on the router"
table inet lab {
	counter guard_drops { }
	chain guard {
		type filter hook postrouting priority 100; policy accept;
		oifname "wan" ip daddr $PROT4 rt ipsec missing counter name guard_drops drop
	}
}
EOF
capture_start wan net p-router
tunnel_initiate start

guard_drops() { on router nft list counter inet lab guard_drops | sed -n 's/.*packets \([0-9]*\) .*/\1/p'; }
guard_dropped() { [ "$(guard_drops)" -ge "$1" ]; }

flow_phase up
flow_start client $SRV4
flow_wait up 4 60 || lab_fail "no replies from $SRV4 through the tunnel"

charon_kill router KILL
flow_phase kill9
flow_wait kill9 6 60

charon_start router
router_hub_conn | swan_conf router
swan_load router
flow_phase restart1
tunnel_initiate restart1
flow_wait restart1 4 60

charon_kill router TERM
flow_phase term
on router ip xfrm policy >"$LAB_OUT/term-policies.txt"
wait_until 60 "the nft guard to drop 4 packets of the flow" guard_dropped 4
flow_phase restart2
charon_start router
swan_load router
tunnel_initiate restart2
flow_wait restart2 4 60
flow_stop

evaltest <<EOF_EVAL
lab::flow-between up kill9::bytes from::>=4
lab::flow-between kill9 restart1::bytes from::>=6
lab::flow-between restart1 term::bytes from::>=4
lab::cat $LAB_OUT/term-policies.txt::mark $TUNNEL_MARK::NO
lab::flow-between term restart2::bytes from::<=1
lab::flow-between restart2::bytes from::>=4
router::nft list counter inet lab guard_drops::packets [1-9]::YES
router::swanctl --list-sas::hub: #[0-9]+, reqid [0-9]+, INSTALLED, TUNNEL::YES
$(esp_both wan $ROUTER4 $HUB4 14)
$(no_clear wan)
EOF_EVAL
