#!/bin/bash
# guard-dnsseal: charon stopped during a flow, with the real dnsseal and its real leak guard —
# issue #4, lab item 6 (charon-restart proves it with an nft stand-in for the guard).
#
# dnsseal in gateway mode on the router (tc on lan/wan, channel saas = tunnel to the hub, rule
# *.saas.test, metrics on $GUARD_METRICS). The client resolves app.saas.test through it and
# pings the server every 0.5 s (gateway_flow):
#   up       the flow goes through the tunnel (ESP on the WAN wire);
#   term     the router's charon SIGTERMed: it removes its XFRM policies and SAs (no state with
#            an SPI is left; a packet that met a policy while charon was going may leave the
#            kernel's larval ACQUIRE state, SPI 0 and no keys, until it expires after
#            xfrm_acq_expires: it carries nothing, so it is allowed); the marked
#            packets meet no policy and dnsseal's guard on wan drops them
#            (dnsseal_datapath_guard_drops_total rises — the phase lasts until it rose by 4),
#            no replies;
#   restart  charon started again (credentials loaded): dnsseal re-loads its tunnel connection
#            over VICI, the flow resumes through ESP.
# Throughout: zero clear packets to or from the protected network on the WAN wire.
# SKIP (with the reason) when dist/dnsseal or build/dnsseal.bpf.o is not built.
. "$LAB_DIR/lib/lab.sh"
. "$LAB_DIR/lib/guard.sh"

gateway_flow --metrics "$GUARD_METRICS"
on router ip xfrm state >"$LAB_OUT/up-states.txt" 2>&1

drops_up=$(guard_drops router)
lab_log "guard drops before SIGTERM: $drops_up"
charon_kill router TERM
flow_phase term
on router ip xfrm policy >"$LAB_OUT/term-policies.txt" 2>&1
on router ip xfrm state >"$LAB_OUT/term-states.txt" 2>&1
poll_until 60 guard_drops_reach router $((drops_up + 4)) ||
	lab_log "the guard did not drop 4 packets of the flow in 60 s"
guard_metrics router >"$LAB_OUT/term-metrics.txt" 2>&1
drops_term=$(metric_sum "$LAB_OUT/term-metrics.txt" 'dnsseal_datapath_guard_drops_total[{ ]')
pass_term=$(metric_sum "$LAB_OUT/term-metrics.txt" 'dnsseal_datapath_guard_pass_total[{]reason="esp"[}]')
lab_log "guard drops without charon: $drops_term (ESP passes so far: $pass_term)"

flow_phase restart
charon_start router
swan_load router # the credentials; the connection is dnsseal's to load again
flow_wait restart 6 120
flow_stop

evaltest <<EOF_EVAL
lab::flow-between up term::bytes from::>=4
lab::cat $LAB_OUT/up-states.txt::^src $ROUTER4 dst $HUB4::YES
lab::cat $LAB_OUT/term-policies.txt::dir (out|fwd|in) ::NO
lab::cat $LAB_OUT/term-states.txt::spi 0x[0-9a-f]*[1-9a-f]::NO
lab::flow-between term restart::bytes from::<=1
lab::echo "guard drops: before \$((0 + $drops_up)), after \$((0 + $drops_term))"; [ \$((0 + $drops_term)) -ge \$((0 + $drops_up + 3)) ] && echo guard-drops-rose::guard-drops-rose::YES
lab::cat $LAB_OUT/term-metrics.txt::^dnsseal_datapath_guard_drops_total\{reason="[a-z_]+"\} [1-9]::YES
lab::flow-between restart::bytes from::>=6
router::d=\$((\$(metric 'dnsseal_datapath_guard_pass_total[{]reason="esp"[}]') - $pass_term)); echo "ESP passes since term: \$d"; [ \$d -ge 6 ] && echo esp-resumed::^esp-resumed$::1
lab::sed -n '/strongSwan reachable again/,\$p' $LAB_OUT/dnsseal-router.log::msg="connections loaded into strongSwan" .*failed=0::YES
router::swanctl --list-sas::dnsseal-tunnel-saas: #[0-9]+, reqid [0-9]+, INSTALLED, TUNNEL, ESP:AES_GCM_16-256::YES
router::$LAB_DNSSEAL list --json --control $LAB_TMP/router/dnsseal.sock::198\.51\.100\.10::YES
$(esp_both wan $ROUTER4 $HUB4 10)
$(no_clear wan)
wan::tcpdump::IP $CLIENT4 > $SRV4: ICMP::NO
EOF_EVAL
