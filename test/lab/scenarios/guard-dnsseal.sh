#!/bin/bash
# guard-dnsseal: charon stopped during a flow, with the real dnsseal and its real leak guard —
# issue #4, lab item 6 (charon-restart proves it with an nft stand-in for the guard).
#
# dnsseal in gateway mode on the router (tc on lan/wan, channel saas = tunnel to the hub, rule
# *.saas.test, metrics on $GUARD_METRICS). The client resolves app.saas.test through it and
# pings the server every 0.5 s:
#   up       the flow goes through the tunnel (ESP on the WAN wire);
#   term     the router's charon SIGTERMed: it removes its XFRM policies and SAs; the marked
#            packets meet no policy and dnsseal's guard on wan drops them
#            (dnsseal_datapath_guard_drops_total rises), no replies;
#   restart  charon started again (credentials loaded): dnsseal re-loads its tunnel connection
#            over VICI, the flow resumes through ESP.
# Throughout: zero clear packets to or from the protected network on the WAN wire.
# SKIP (with the reason) when dist/dnsseal or build/dnsseal.bpf.o is not built.
. "$LAB_DIR/lib/lab.sh"
. "$LAB_DIR/lib/guard.sh"

dnsseal_built || lab_skip "pending: $LAB_DNSSEAL is not built (make build)"
[ -f "$LAB_REPO/build/dnsseal.bpf.o" ] || lab_skip "pending: build/dnsseal.bpf.o is not built (make bpf)"

gateway_setup
gateway_dnsseal --metrics "$GUARD_METRICS" ||
	lab_fail "dnsseal does not start in gateway mode: $DNSSEAL_ERROR"
capture_start wan net p-router

addr=$(dns_ask app.saas.test A)
[ "$addr" = "$SRV4" ] || lab_fail "app.saas.test through dnsseal: got '$addr', want $SRV4"

flow=$LAB_OUT/flow.log
phase() {
	echo "phase $1" >>"$flow"
	lab_log "phase $1"
}
wait_replies() { poll_until "$3" sh -c "[ \$(sed -n '/^phase $1\$/,\$p' $flow | grep -c 'bytes from') -ge $2 ]"; }

phase up
ip netns exec client "$LAB_TMP/bin/ping" -i 0.5 $SRV4 >>"$flow" 2>&1 &
LAB_PIDS+=($!)
flow_pid=$!
wait_replies up 4 60 || lab_fail "no replies from $SRV4 through the tunnel"
on router ip xfrm state >"$LAB_OUT/up-states.txt" 2>&1

drops_up=$(guard_drops router)
lab_log "guard drops before SIGTERM: $drops_up"
charon_kill router TERM
phase term
on router ip xfrm policy >"$LAB_OUT/term-policies.txt" 2>&1
on router ip xfrm state >"$LAB_OUT/term-states.txt" 2>&1
sleep 5
drops_term=$(guard_drops router)
guard_metrics router >"$LAB_OUT/term-metrics.txt" 2>&1
pass_term=$(awk '/^dnsseal_datapath_guard_pass_total[{]reason="esp"[}]/ { n = $NF } END { print n + 0 }' "$LAB_OUT/term-metrics.txt")
lab_log "guard drops after 5 s without charon: $drops_term (ESP passes so far: $pass_term)"

phase restart
charon_start router
swan_load router # the credentials; the connection is dnsseal's to load again
wait_replies restart 6 90 || lab_log "restart: the flow did not resume"
kill -INT $flow_pid
sleep 1

evaltest <<EOF_EVAL
lab::sed -n '/^phase up$/,/^phase term$/p' $flow::bytes from::>=4
lab::cat $LAB_OUT/up-states.txt::^src $ROUTER4 dst $HUB4::YES
lab::cat $LAB_OUT/term-policies.txt::dir (out|fwd|in) ::NO
lab::cat $LAB_OUT/term-states.txt::^src ::NO
lab::sed -n '/^phase term$/,/^phase restart$/p' $flow::bytes from::<=1
lab::echo "guard drops: before \$((0 + $drops_up)), after \$((0 + $drops_term))"; [ \$((0 + $drops_term)) -ge \$((0 + $drops_up + 3)) ] && echo guard-drops-rose::guard-drops-rose::YES
lab::cat $LAB_OUT/term-metrics.txt::^dnsseal_datapath_guard_drops_total\{reason="[a-z_]+"\} [1-9]::YES
lab::sed -n '/^phase restart$/,\$p' $flow::bytes from::>=6
router::curl -sS -m 10 http://$GUARD_METRICS/metrics | awk '/^dnsseal_datapath_guard_pass_total[{]reason="esp"[}]/ { n = \$NF } END { d = n - $pass_term; print "ESP passes since term:", d; if (d >= 6) print "esp-resumed" }'::^esp-resumed$::1
lab::grep -c 'connections reloaded after charon restart' $LAB_OUT/dnsseal-router.log::^[1-9]::YES
router::swanctl --list-sas::dnsseal-tunnel-saas: #[0-9]+, reqid [0-9]+, INSTALLED, TUNNEL, ESP:AES_GCM_16-256::YES
router::$LAB_DNSSEAL list --json --control $LAB_TMP/router/dnsseal.sock::198\.51\.100\.10::YES
wan::tcpdump::IP $ROUTER4 > $HUB4: ESP\(::>=10
wan::tcpdump::IP $HUB4 > $ROUTER4: ESP\(::>=10
wan::tcpdump::> 198\.51\.100\.::NO
wan::tcpdump::IP 198\.51\.100\.[0-9]+(\.[0-9]+)? > ::NO
wan::tcpdump::IP $CLIENT4 > $SRV4: ICMP::NO
EOF_EVAL
