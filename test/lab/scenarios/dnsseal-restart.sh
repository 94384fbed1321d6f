#!/bin/bash
# dnsseal-restart: the daemon killed during a flow, restarted, then `dnsseal down` — issue #4,
# lab items 5 and 7, in gateway mode.
#
# The client resolves app.saas.test through dnsseal and pings it every 0.5 s:
#   kill9    dnsseal SIGKILLed: the pinned map and the attached tc programs keep marking, the
#            XFRM state keeps encrypting — the flow goes on;
#   restart  dnsseal started again: it adopts the pinned entries, the flow goes on.
# Then `dnsseal down`: no dnsseal connection, XFRM policy or state, pin, tc filter or program
# is left. Throughout: zero clear packets to or from the protected network on the WAN wire.
# SKIP (with the reason) when dist/dnsseal or build/dnsseal.bpf.o is not built.
. "$LAB_DIR/lib/lab.sh"

dnsseal_built || lab_skip "pending: $LAB_DNSSEAL is not built (make build)"
[ -f "$LAB_REPO/build/dnsseal.bpf.o" ] || lab_skip "pending: build/dnsseal.bpf.o is not built (make bpf)"

gateway_setup
gateway_dnsseal || lab_fail "dnsseal does not start in gateway mode: $DNSSEAL_ERROR"
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

dnsseal_kill router KILL
phase kill9
wait_replies kill9 8 30 || lab_log "kill9: the flow stalled"

gateway_dnsseal || lab_fail "dnsseal does not start again after SIGKILL: $DNSSEAL_ERROR"
phase restart
wait_replies restart 6 30 || lab_log "restart: the flow stalled"
kill -INT $flow_pid

evaltest --continue <<EOF_EVAL
lab::sed -n '/^phase up$/,/^phase kill9$/p' $flow::bytes from::>=4
lab::sed -n '/^phase kill9$/,/^phase restart$/p' $flow::bytes from::>=8
lab::sed -n '/^phase restart$/,\$p' $flow::bytes from::>=6
lab::grep -E 'seq=[0-9]+' $flow | sed 's/.*seq=\([0-9]*\).*/\1/' | awk 'NR > 1 && \$1 != prev + 1 { gaps++ } { prev = \$1 } END { print "gaps", gaps + 0 }'::^gaps [0-2]$::1
router::$LAB_DNSSEAL list --json --control $LAB_TMP/router/dnsseal.sock::198\.51\.100\.10::YES
router::swanctl --list-sas::dnsseal-tunnel-saas: #[0-9]+, reqid [0-9]+, INSTALLED, TUNNEL::YES
EOF_EVAL

lab_log "dnsseal down"
dnsseal_ctl router down >"$LAB_OUT/down.out" 2>&1
echo "exit $?" >>"$LAB_OUT/down.out"

evaltest <<EOF_EVAL
lab::cat $LAB_OUT/down.out::^exit 0$::1
router::swanctl --list-conns::dnsseal-::NO
router::swanctl --list-sas::dnsseal-::NO
router::ip xfrm policy::^[[:space:]]*dir (in|out|fwd) ::NO
router::ip xfrm state::^src ::NO
router::tc filter show dev lan ingress; tc filter show dev wan egress::dnsseal::NO
lab::ls /sys/fs/bpf/dnsseal 2>&1; true::No such file::YES
lab::bpftool prog show::name dnsseal_::NO
wan::tcpdump::IP $ROUTER4 > $HUB4: ESP\(::>=20
wan::tcpdump::IP $HUB4 > $ROUTER4: ESP\(::>=20
wan::tcpdump::> 198\.51\.100\.::NO
wan::tcpdump::IP 198\.51\.100\.[0-9]+(\.[0-9]+)? > ::NO
EOF_EVAL
