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
#            counted (dnsseal_datapath_guard_drops_total rises), never sent clear.
#   lazy     `dnsseal flush`, the rule switched to channel lazy (negotiate: on-traffic) and
#            `dnsseal reload`: the answer is released, the connection is trap-installed, the
#            first packets trigger IKE, which fails the same way; the trap policy drops them and
#            the kernel counts it (dnsseal_xfrm_errors_total{counter="XfrmOutNoStates"} rises).
# Throughout: no SA on either side, no ESP, zero clear packets to or from the peer on the WAN.
# SKIP (with the reason) when dist/dnsseal or build/dnsseal.bpf.o is not built.
. "$LAB_DIR/lib/lab.sh"
. "$LAB_DIR/lib/guard.sh"

dnsseal_built || lab_skip "pending: $LAB_DNSSEAL is not built (make build)"
[ -f "$LAB_REPO/build/dnsseal.bpf.o" ] || lab_skip "pending: build/dnsseal.bpf.o is not built (make bpf)"

topo_up
dns_serve
charon_start router peer
swan_conf router </dev/null # credentials only: dnsseal loads the per-peer connections over VICI
# The impostor claims peer.partner.test, so it answers the router's IDr, but its certificate
# does not contain that name: charon then authenticates it as the certificate's subject
# (other.partner.test), and the router's identity check must reject it.
{
	echo "connections {"
	peer_transport_conn router4 $PEER4 $ROUTER4 impostor
	echo "}"
} | LAB_CERT=impostor swan_conf peer
swan_load router peer
http_serve peer "hello from the impostor"

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
  partner: { kind: peer, identity: "%name", esp: $LAB_ESP_PROPOSAL }
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

# The metric's value (sum over its label sets matching $2), from a saved metrics page $1.
metric() { awk -v re="^$2" '$0 ~ re { s += $NF } END { print s + 0 }' "$1"; }

# ---- before-answer --------------------------------------------------------------------------
on router kdig +timeout=15 +retry=0 @127.0.0.53 peer.partner.test A >"$LAB_OUT/before-kdig.txt" 2>&1
guard_metrics router >"$LAB_OUT/before-metrics-0.txt" 2>&1
dnsseal_ctl router list >"$LAB_OUT/before-list.txt" 2>&1
on router swanctl --list-conns >"$LAB_OUT/before-conns.txt" 2>&1
# The router's own applications try the address anyway (from a cache, a hard-coded IP…).
on router curl -sS -m 5 "http://$PEER4/" >"$LAB_OUT/before-curl.txt" 2>&1
on router sh -c "echo probe >/dev/udp/$PEER4/5000; sleep 0.2; echo probe >/dev/udp/$PEER4/5000" 2>/dev/null
on router ping -c 2 -W 2 "$PEER4" >"$LAB_OUT/before-ping.txt" 2>&1
guard_metrics router >"$LAB_OUT/before-metrics-1.txt" 2>&1
d0=$(metric "$LAB_OUT/before-metrics-0.txt" 'dnsseal_datapath_guard_drops_total[{ ]')
d1=$(metric "$LAB_OUT/before-metrics-1.txt" 'dnsseal_datapath_guard_drops_total[{ ]')
lab_log "before-answer: guard drops $d0 after the SERVFAIL, $d1 after the traffic"

# ---- on-traffic -----------------------------------------------------------------------------
dnsseal_ctl router flush >"$LAB_OUT/lazy-flush.txt" 2>&1
write_config lazy
dnsseal_ctl router reload >"$LAB_OUT/lazy-reload.txt" 2>&1
on router kdig +short +timeout=15 +retry=0 @127.0.0.53 peer.partner.test A >"$LAB_OUT/lazy-kdig.txt" 2>&1
guard_metrics router >"$LAB_OUT/lazy-metrics-0.txt" 2>&1
on router cat /proc/net/xfrm_stat >"$LAB_OUT/lazy-xfrm-stat-0.txt" 2>&1
on router swanctl --list-pols --trap >"$LAB_OUT/lazy-traps.txt" 2>&1
on router curl -sS -m 8 "http://$PEER4/" >"$LAB_OUT/lazy-curl.txt" 2>&1
guard_metrics router >"$LAB_OUT/lazy-metrics-1.txt" 2>&1
on router cat /proc/net/xfrm_stat >"$LAB_OUT/lazy-xfrm-stat-1.txt" 2>&1
dnsseal_ctl router list >"$LAB_OUT/lazy-list.txt" 2>&1
x0=$(metric "$LAB_OUT/lazy-metrics-0.txt" 'dnsseal_xfrm_errors_total[{]counter="XfrmOutNoStates"[}]')
x1=$(metric "$LAB_OUT/lazy-metrics-1.txt" 'dnsseal_xfrm_errors_total[{]counter="XfrmOutNoStates"[}]')
lab_log "on-traffic: XfrmOutNoStates $x0 after the answer, $x1 after the traffic"

evaltest <<EOF_EVAL
# before-answer: SERVFAIL, the reason in dnsseal list, the connection gone, the address blocked.
lab::cat $LAB_OUT/before-kdig.txt::status: SERVFAIL::YES
lab::cat $LAB_OUT/before-list.txt::^0 +192\.0\.2\.3 +partner! +peer\.partner\.test::1
lab::cat $LAB_OUT/before-list.txt::^ +192\.0\.2\.3: .*no SA with peer\.partner\.test::1
lab::cat $LAB_OUT/before-metrics-0.txt::^dnsseal_registry_blocked_entries[{]channel="partner"[}] 1$::1
lab::cat $LAB_OUT/before-conns.txt::dnsseal-peer::NO
lab::cat $LAB_OUT/before-curl.txt::hello from the impostor::NO
lab::cat $LAB_OUT/before-ping.txt::bytes from::NO
lab::echo "guard drops: \$((0 + $d0)) -> \$((0 + $d1))"; [ \$((0 + $d1)) -ge \$((0 + $d0 + 3)) ] && echo guard-drops-rose::guard-drops-rose::YES
lab::cat $LAB_OUT/before-metrics-1.txt::^dnsseal_datapath_guard_drops_total[{]reason="plain_protected"[}] [1-9]::YES
# Why: the router's identity check on the impostor's certificate.
router::cat $LAB_OUT/charon-router.log::received end entity cert ".*CN=other\.partner\.test"::YES
router::cat $LAB_OUT/charon-router.log::no trusted (ECDSA|RSA) public key found for 'peer\.partner\.test'|constraint check failed: identity 'peer\.partner\.test' required::YES
router::cat $LAB_OUT/charon-router.log::authentication of .*other\.partner\.test.* successful::NO
# on-traffic: the answer is released, the trap holds the traffic, the kernel counts the drops.
lab::cat $LAB_OUT/lazy-reload.txt::^reloaded::YES
lab::cat $LAB_OUT/lazy-kdig.txt::^192\.0\.2\.3$::1
lab::cat $LAB_OUT/lazy-traps.txt::^dnsseal-peer-lazy-[^ ]*, TRANSPORT::YES
lab::cat $LAB_OUT/lazy-curl.txt::hello from the impostor::NO
lab::cat $LAB_OUT/lazy-list.txt::^0 +192\.0\.2\.3 +lazy +peer\.partner\.test::1
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
