#!/bin/bash
# dnsseal-restart: the daemon killed during a flow, restarted, then `dnsseal down` — issue #4,
# lab items 5 and 7, in gateway mode.
#
# The client resolves app.saas.test through dnsseal and pings it every 0.5 s (gateway_flow):
#   kill9    dnsseal SIGKILLed: the pinned map and the attached tc programs keep marking, the
#            XFRM state keeps encrypting — the flow goes on;
#   restart  dnsseal started again (it answers DNS again): it adopts the pinned entries, the
#            flow goes on.
# Then `dnsseal down`: no dnsseal connection, XFRM policy or state, pin, tc filter or program
# is left (a state with an SPI: the kernel's larval ACQUIRE state, SPI 0 and no keys, which a
# packet meeting a policy while it went may leave until xfrm_acq_expires, carries nothing). Throughout: zero clear packets to or from the protected network on the WAN wire.
# SKIP (with the reason) when dist/dnsseal or build/dnsseal.bpf.o is not built.
. "$LAB_DIR/lib/lab.sh"

gateway_flow

dnsseal_kill router KILL
flow_phase kill9
# The flow goes on for as long as the restart takes; at least 8 replies.
flow_wait kill9 8 60
gateway_dnsseal || lab_fail "dnsseal does not start again after SIGKILL: $DNSSEAL_ERROR"
flow_phase restart
flow_wait restart 6 60
flow_stop

evaltest --continue <<EOF_EVAL
lab::flow-between up kill9::bytes from::>=4
lab::flow-between kill9 restart::bytes from::>=8
lab::flow-between restart::bytes from::>=6
lab::flow-gaps::^gaps [0-2]$::1
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
router::ip xfrm state::spi 0x[0-9a-f]*[1-9a-f]::NO
router::tc filter show dev lan ingress; tc filter show dev wan egress::dnsseal::NO
lab::ls /sys/fs/bpf/dnsseal 2>&1; true::No such file::YES
lab::bpftool prog show::name dnsseal_::NO
$(esp_both wan $ROUTER4 $HUB4 20)
$(no_clear wan)
EOF_EVAL
