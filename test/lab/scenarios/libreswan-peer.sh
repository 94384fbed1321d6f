#!/bin/bash
# libreswan-peer: host mode with the real daemon against a peer running Libreswan (issue 14,
# item 2): dnsseal's peer channel loads a per-peer connection into the router's charon on each
# answer (transport mode, remote identity = the queried name, peer.partner.test) and brings its
# SA up before the answer; the peer's pluto 4.10 answers it — certificates of the lab CA (ECDSA
# P-256), FQDN identities, AES-GCM-256 for IKE and ESP — over IPv4 (A answer) and IPv6 (AAAA
# answer). The router's own TCP and UDP to the peer cross the WAN as ESP only, both families;
# raw-socket pings (no cgroup hook marks them) are dropped by the guard; not one packet between
# router and peer in clear but IKE (and IPv6 neighbour discovery); www stays clear.
. "$LAB_DIR/lib/lab.sh"
. "$LAB_DIR/lib/libreswan.sh"
. "$LAB_DIR/lib/guard.sh"

dnsseal_require
libreswan_require
libreswan_peer_setup

dnsseal_start router --mode host --datapath ebpf --wan wan \
	--listen 127.0.0.53:53 --upstream $NS4 --local-id "$(lab_id router)" \
	--channel "partner=peer,identity=%name,esp=$LAB_ESP_PROPOSAL,negotiate_timeout=20000" \
	--protect 'peer.partner.test=partner' --metrics "$GUARD_METRICS" --log-level debug ||
	lab_fail "dnsseal does not start in host mode: $DNSSEAL_ERROR"

capture_start wan net p-router

PLAIN='dnsseal_datapath_guard_drops_total[{]reason="plain_protected"[}]'
SAS=$LAB_TMP/router-sas.txt
evaltest <<EOF_EVAL
router::dns-answer 127.0.0.53 peer.partner.test A::^192\\.0\\.2\\.3$::1
router::curl -sS -m 30 http://$PEER4/::hello from peer::YES
router::echo marked >/dev/udp/$PEER4/5000 && echo sent::sent::YES
router::dns-answer 127.0.0.53 peer.partner.test AAAA::^2001:db8::3$::1
router::curl -sS -m 30 http://[$PEER6_X]/::hello from peer::YES
router::echo marked >/dev/udp/$PEER6_X/5000 && echo sent::sent::YES
# Each curl connected on its first try: nothing to the peer was dropped for want of an SA.
router::nstat -az TcpActiveOpens::^TcpActiveOpens +2 ::1
router::cat /proc/net/xfrm_stat::^Xfrm(OutNoStates|OutPolBlock|OutPolError)[[:space:]]+0$::3
# www early (after the TCP count): its packets must be in the capture long before it is stopped
# (a tcpdump starved of CPU at the end missed the last packets once, at load average 17).
router::curl -sS -m 30 http://$WWW4/::hello from www::YES
# The SAs, read once (each swanctl or whack start costs seconds under TCG), then matched.
router::swanctl --list-sas >$SAS; cat $SAS::^dnsseal-peer-partner-192\\.0\\.2\\.3: #[0-9]+, ESTABLISHED, IKEv2::1
lab::cat $SAS::^dnsseal-peer-partner-2001:db8::3: #[0-9]+, ESTABLISHED, IKEv2::1
lab::cat $SAS::^  remote 'peer\\.partner\\.test' @ 192\\.0\\.2\\.3\\[4500\\]::1
lab::cat $SAS::^  remote 'peer\\.partner\\.test' @ 2001:db8::3\\[4500\\]::1
lab::cat $SAS::^  AES_GCM_16-256/PRF_HMAC_SHA2_256/CURVE_25519$::2
lab::cat $SAS::^  dnsseal-peer-partner-[0-9a-f.:]+: #[0-9]+, reqid [0-9]+, INSTALLED, TRANSPORT, ESP:AES_GCM_16-256::2
peer::lswan --trafficstatus::"router4".*type=ESP.*inBytes=[1-9].*outBytes=[1-9].*id='@router\\.lab\\.test'::1
peer::lswan --trafficstatus::"router6".*type=ESP.*inBytes=[1-9].*outBytes=[1-9].*id='@router\\.lab\\.test'::1
# Raw-socket ICMP has no cgroup hook to mark it: the guard drops it (fail closed) at cgroup
# egress, the sender gets EPERM and busybox ping stops at the first error: one drop per family.
router::a=\$(metric '$PLAIN'); ping -c 2 -W 3 $PEER4; b=\$(metric '$PLAIN'); echo "plain_protected \$a -> \$b"; [ \$b -ge \$((a + 1)) ] && echo v4-ping-dropped::^v4-ping-dropped$::1
router::a=\$(metric '$PLAIN'); ping -6 -c 2 -W 3 $PEER6_X; b=\$(metric '$PLAIN'); echo "plain_protected \$a -> \$b"; [ \$b -ge \$((a + 1)) ] && echo v6-ping-dropped::^v6-ping-dropped$::1
wan::tcpdump::IP $ROUTER4 > $PEER4: ESP\\(::>=4
wan::tcpdump::IP $PEER4 > $ROUTER4: ESP\\(::>=4
wan::tcpdump::IP6 $ROUTER6 > $PEER6: ESP\\(::>=4
wan::tcpdump::IP6 $PEER6 > $ROUTER6: ESP\\(::>=4
$(no_clear_between wan $ROUTER4 $PEER4)
$(no_clear_between wan $ROUTER6 $PEER6)
wan::tcpdump::IP $ROUTER4\\.[0-9]+ > $WWW4\\.80: Flags \\[S\\]::1
EOF_EVAL
