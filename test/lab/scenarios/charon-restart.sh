#!/bin/bash
# charon-restart: a running flow through the marked tunnel survives the router's charon being
# killed, and never leaks — the stand-in for issue #4 lab item 6, without dnsseal.
#
# Setup as tunnel-hub, plus a stand-in for dnsseal's leak guard on the router: an nft rule that
# drops (and counts) packets leaving the WAN to 198.51.100.0/24 that are not on an IPsec route
# (`rt ipsec missing`: the inner packet on its way into XFRM passes POSTROUTING too, with an
# IPsec route; the ESP packet that leaves is addressed to the hub).
#
# The client pings the server every 0.5 s throughout:
#   kill9     charon SIGKILLed: the kernel keeps its SAs and policies, the flow goes on encrypted;
#             (each phase starts once the kill has taken effect: charon has exited)
#   restart1  charon started again and the tunnel initiated;
#   term      charon SIGTERMed: it removes its policies and SAs, the marked packets meet no XFRM
#             policy and the guard drops them;
#   restart2  charon back: the flow resumes.
# Asserted: replies in every phase but "term", guard drops counted, zero clear packets to or
# from the protected network on the WAN wire.
. "$LAB_DIR/lib/lab.sh"

MARK=0x42

topo_up
charon_start router hub

router_conf() {
	swan_conf router <<EOF
connections {
	hub {
		version = 2
		local_addrs = $ROUTER4
		remote_addrs = $HUB4
		proposals = $LAB_IKE_PROPOSAL
		local {
			auth = pubkey
			certs = router.pem
			id = $(lab_id router)
		}
		remote {
			auth = pubkey
			id = $(lab_id hub)
		}
		children {
			hub {
				mode = tunnel
				local_ts = $LAN4
				remote_ts = 0.0.0.0/0
				mark_in = $MARK
				mark_out = $MARK
				set_mark_in = $MARK
				esp_proposals = $LAB_ESP_PROPOSAL
				start_action = trap
			}
		}
	}
}
EOF
}
router_conf
swan_conf hub <<EOF
connections {
	router {
		version = 2
		local_addrs = $HUB4
		remote_addrs = %any
		proposals = $LAB_IKE_PROPOSAL
		local {
			auth = pubkey
			certs = hub.pem
			id = $(lab_id hub)
		}
		remote {
			auth = pubkey
			id = $(lab_id router)
		}
		children {
			router {
				mode = tunnel
				local_ts = 0.0.0.0/0
				remote_ts = $LAN4
				esp_proposals = $LAB_ESP_PROPOSAL
			}
		}
	}
}
EOF
swan_load router hub

on router nft -f - <<EOF || lab_fail "nft rules on the router"
table inet lab {
	counter guard_drops { }
	chain lan_in {
		type filter hook prerouting priority mangle; policy accept;
		iifname "lan" ip daddr $PROT4 meta mark set $MARK
	}
	chain guard {
		type filter hook postrouting priority 100; policy accept;
		oifname "wan" ip daddr $PROT4 rt ipsec missing counter name guard_drops drop
	}
}
EOF
capture_start wan net p-router

bring_up() {
	swan router --initiate --child hub --timeout 60 >>"$LAB_OUT/initiate.out" 2>&1 ||
		lab_fail "the router could not bring up CHILD_SA hub ($1)"
	lab_log "CHILD_SA hub up ($1)"
}
bring_up start

flow=$LAB_OUT/flow.log
phase() {
	echo "phase $1" >>"$flow"
	lab_log "phase $1"
}
# replies_since MARKER — ping replies logged after the last "phase MARKER" line.
replies_since() { sed -n "/^phase $1\$/,\$p" "$flow" | grep -c 'bytes from'; }
# wait_replies MARKER N SECONDS — until N replies came after MARKER.
wait_replies() { poll_until "$3" sh -c "[ \$(sed -n '/^phase $1\$/,\$p' $flow | grep -c 'bytes from') -ge $2 ]"; }

phase up
ip netns exec client "$LAB_TMP/bin/ping" -i 0.5 $SRV4 >>"$flow" 2>&1 &
LAB_PIDS+=($!)
flow_pid=$!
wait_replies up 4 30 || lab_fail "no replies from $SRV4 through the tunnel"

charon_kill router KILL
phase kill9
wait_replies kill9 6 30 || lab_log "kill9: the flow stalled"

charon_start router
router_conf
swan_load router
phase restart1
bring_up restart1
wait_replies restart1 4 30 || lab_log "restart1: the flow did not continue"

charon_kill router TERM
phase term
on router ip xfrm policy >"$LAB_OUT/term-policies.txt"
sleep 4
phase restart2
charon_start router
swan_load router
bring_up restart2
wait_replies restart2 4 60 || lab_log "restart2: the flow did not resume"
kill -INT $flow_pid

evaltest <<EOF_EVAL
lab::sed -n '/^phase up$/,/^phase kill9$/p' $flow::bytes from::>=4
lab::sed -n '/^phase kill9$/,/^phase restart1$/p' $flow::bytes from::>=6
lab::sed -n '/^phase restart1$/,/^phase term$/p' $flow::bytes from::>=4
lab::cat $LAB_OUT/term-policies.txt::mark $MARK::NO
lab::sed -n '/^phase term$/,/^phase restart2$/p' $flow::bytes from::<=1
lab::sed -n '/^phase restart2$/,\$p' $flow::bytes from::>=4
router::nft list counter inet lab guard_drops::packets [1-9]::YES
router::swanctl --list-sas::hub: #[0-9]+, reqid [0-9]+, INSTALLED, TUNNEL::YES
wan::tcpdump::IP $ROUTER4 > $HUB4: ESP\(::>=14
wan::tcpdump::IP $HUB4 > $ROUTER4: ESP\(::>=14
wan::tcpdump::> 198\.51\.100\.::NO
wan::tcpdump::IP 198\.51\.100\.[0-9]+(\.[0-9]+)? > ::NO
EOF_EVAL
