#!/bin/bash
# identity-mismatch: the peer at peer.partner.test's address presents a valid certificate for
# another name (other.partner.test, same CA) — issue #4, lab item 4, with the real daemon.
#
# dnsseal runs on the router in host mode (cgroup hooks, the guard on wan, metrics on
# $GUARD_METRICS), from a config file with two `peer` channels for the name:
#   before   channel partner (negotiate: before-answer, the default). dnsseal loads the
#            per-peer connection and initiates it; the identity check fails, so the client gets
#            SERVFAIL, the connection is removed, and the address stays in the map *blocked*:
#            the router's own traffic to it (TCP, UDP, ICMP) is dropped by dnsseal's guard and
#            counted (dnsseal_datapath_guard_drops_total{reason="blocked"} rises), never sent clear.
#   lazy     `dnsseal flush`, the rule switched to channel lazy (negotiate: on-traffic) and
#            `dnsseal reload`: the answer is released, the connection is trap-installed, the
#            first packets trigger IKE, which fails the same way; the trap policy drops them and
#            the kernel counts it (dnsseal_xfrm_errors_total{counter="XfrmOutNoStates"} rises).
# Throughout: no SA on either side, no ESP, zero clear packets to or from the peer on the WAN.
# SKIP (with the reason) when dist/dnsseal or build/dnsseal.bpf.o is not built.
. "$LAB_DIR/lib/lab.sh"
. "$LAB_DIR/lib/guard.sh"

dnsseal_require
# The impostor claims peer.partner.test, so it answers the router's IDr, but its certificate
# does not contain that name: charon then authenticates it as the certificate's subject
# (other.partner.test), and the router's identity check must reject it.
host_peer_setup impostor "the impostor"

# $1: the channel the rule names.
write_config() {
	cat >"$LAB_TMP/router/dnsseal.yaml" <<EOF
mode: host
datapath: ebpf
wan: [wan]
listen: ["127.0.0.53:53"]
upstreams: { default: "$NS4" }
local_id: "$(lab_id router)"
metrics: "$GUARD_METRICS"
log_level: debug
channels:
  partner: { kind: peer, identity: "%name", esp: $LAB_ESP_PROPOSAL, negotiate_timeout: 20000 }
  lazy: { kind: peer, identity: "%name", esp: $LAB_ESP_PROPOSAL, negotiate: on-traffic }
tables:
  default:
    - { match: peer.partner.test, channel: $1 }
EOF
}
write_config partner
dnsseal_start router --config "$LAB_TMP/router/dnsseal.yaml" ||
	lab_fail "dnsseal does not start in host mode: $DNSSEAL_ERROR"
capture_start wan net p-router

DROPS='dnsseal_datapath_guard_drops_total[{ ]'
NOSTATES='dnsseal_xfrm_errors_total[{]counter="XfrmOutNoStates"[}]'
# nostates_reach N — true once dnsseal reports N or more XfrmOutNoStates (for poll_until).
nostates_reach() { [ "$(guard_metrics router | metric_sum /dev/stdin "$NOSTATES")" -ge "$1" ]; }

# ---- before-answer --------------------------------------------------------------------------
# negotiate_timeout 20 s: the SERVFAIL comes from the identity check, not from a slow machine.
on router kdig +timeout=40 +retry=0 @127.0.0.53 peer.partner.test A >"$LAB_OUT/before-kdig.txt" 2>&1
guard_metrics router >"$LAB_OUT/before-metrics-0.txt" 2>&1
dnsseal_ctl router list >"$LAB_OUT/before-list.txt" 2>&1
on router swanctl --list-conns >"$LAB_OUT/before-conns.txt" 2>&1
# The router's own applications try the address anyway (from a cache, a hard-coded IP…).
# Every send is dropped as it happens: the drops are counted once each command returns.
on router curl -sS -m 5 "http://$PEER4/" >"$LAB_OUT/before-curl.txt" 2>&1
on router sh -c "echo probe >/dev/udp/$PEER4/5000; echo probe >/dev/udp/$PEER4/5000" 2>/dev/null
on router ping -c 2 -W 2 "$PEER4" >"$LAB_OUT/before-ping.txt" 2>&1
d0=$(metric_sum "$LAB_OUT/before-metrics-0.txt" "$DROPS")
poll_until 60 guard_drops_reach router $((d0 + 3)) || lab_log "the guard did not count 3 drops in 60 s"
guard_metrics router >"$LAB_OUT/before-metrics-1.txt" 2>&1
d1=$(metric_sum "$LAB_OUT/before-metrics-1.txt" "$DROPS")
lab_log "before-answer: guard drops $d0 after the SERVFAIL, $d1 after the traffic"

# ---- on-traffic -----------------------------------------------------------------------------
dnsseal_ctl router flush >"$LAB_OUT/lazy-flush.txt" 2>&1
write_config lazy
dnsseal_ctl router reload >"$LAB_OUT/lazy-reload.txt" 2>&1
on router dns-answer 127.0.0.53 peer.partner.test A >"$LAB_OUT/lazy-kdig.txt" 2>"$LAB_OUT/lazy-kdig.err"
guard_metrics router >"$LAB_OUT/lazy-metrics-0.txt" 2>&1
on router cat /proc/net/xfrm_stat >"$LAB_OUT/lazy-xfrm-stat-0.txt" 2>&1
on router swanctl --list-pols --trap >"$LAB_OUT/lazy-traps.txt" 2>&1
x0=$(metric_sum "$LAB_OUT/lazy-metrics-0.txt" "$NOSTATES")
# curl's SYN and its retransmissions meet the trap; it keeps trying until the kernel has counted
# two of them, then it is stopped.
ip netns exec router curl -sS -m 120 "http://$PEER4/" >"$LAB_OUT/lazy-curl.txt" 2>&1 &
curl_pid=$!
LAB_PIDS+=($!)
poll_until 90 nostates_reach $((x0 + 2)) || lab_log "XfrmOutNoStates did not rise by 2 in 90 s"
lab_stop "$curl_pid" TERM "curl"
guard_metrics router >"$LAB_OUT/lazy-metrics-1.txt" 2>&1
on router cat /proc/net/xfrm_stat >"$LAB_OUT/lazy-xfrm-stat-1.txt" 2>&1
dnsseal_ctl router list >"$LAB_OUT/lazy-list.txt" 2>&1
x1=$(metric_sum "$LAB_OUT/lazy-metrics-1.txt" "$NOSTATES")
lab_log "on-traffic: XfrmOutNoStates $x0 after the answer, $x1 after the traffic"

evaltest <<EOF_EVAL
# before-answer: SERVFAIL, the reason in dnsseal list, the connection gone, the address blocked.
lab::cat $LAB_OUT/before-kdig.txt::status: SERVFAIL::YES
lab::cat $LAB_OUT/before-list.txt::^default +192\.0\.2\.3 +partner! .* peer\.partner\.test$::1
lab::cat $LAB_OUT/before-list.txt::^ +192\.0\.2\.3: .*no SA with peer\.partner\.test::1
lab::cat $LAB_OUT/before-metrics-0.txt::^dnsseal_registry_blocked_entries[{]channel="partner"[}] 1$::1
lab::cat $LAB_OUT/before-conns.txt::dnsseal-peer::NO
lab::cat $LAB_OUT/before-curl.txt::hello from the impostor::NO
lab::cat $LAB_OUT/before-ping.txt::bytes from::NO
lab::echo "guard drops: \$((0 + $d0)) -> \$((0 + $d1))"; [ \$((0 + $d1)) -ge \$((0 + $d0 + 3)) ] && echo guard-drops-rose::guard-drops-rose::YES
lab::cat $LAB_OUT/before-metrics-1.txt::^dnsseal_datapath_guard_drops_total[{]reason="blocked"[}] [1-9]::YES
# Why: the router's identity check on the impostor's certificate.
router::cat $LAB_OUT/charon-router.log::received end entity cert ".*CN=other\.partner\.test"::YES
router::cat $LAB_OUT/charon-router.log::no trusted (ECDSA|RSA) public key found for 'peer\.partner\.test'|constraint check failed: identity 'peer\.partner\.test' required::YES
router::cat $LAB_OUT/charon-router.log::authentication of .*other\.partner\.test.* successful::NO
# on-traffic: the answer is released, the trap holds the traffic, the kernel counts the drops.
lab::cat $LAB_OUT/lazy-reload.txt::^reloaded::YES
lab::cat $LAB_OUT/lazy-kdig.txt::^192\.0\.2\.3$::1
lab::cat $LAB_OUT/lazy-traps.txt::^dnsseal-peer-lazy-[^ ]*, TRANSPORT::YES
lab::cat $LAB_OUT/lazy-curl.txt::hello from the impostor::NO
lab::cat $LAB_OUT/lazy-list.txt::^default +192\.0\.2\.3 +lazy .* peer\.partner\.test$::1
lab::echo "XfrmOutNoStates: \$((0 + $x0)) -> \$((0 + $x1))"; [ \$((0 + $x1)) -ge \$((0 + $x0 + 2)) ] && echo trap-drops-rose::trap-drops-rose::YES
router::swanctl --list-sas::INSTALLED::NO
peer::swanctl --list-sas::INSTALLED::NO
# The wire: IKE was tried, no ESP, nothing to or from the peer in clear.
wan::tcpdump::IP $ROUTER4\.(500|4500) > $PEER4\.(500|4500): ::YES
wan::tcpdump::: ESP\(::NO
wan::tcpdump::IP $ROUTER4 > $PEER4: ICMP::NO
wan::tcpdump::IP $ROUTER4\.[0-9]+ > $PEER4\.(80|5000): ::NO
wan::tcpdump::IP $PEER4\.(80|5000) > ::NO
EOF_EVAL
