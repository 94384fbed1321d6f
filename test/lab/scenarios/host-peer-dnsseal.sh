#!/bin/bash
# host-peer-dnsseal: host mode with the real daemon — issue #4, lab item 2 and its IPv6 variant
# (item 3).
#
# dnsseal runs on the router in host mode (cgroup connect/sendmsg hooks set SO_MARK, the guard
# on wan), with a `peer` channel for peer.partner.test: on the answer it loads a per-peer
# connection (transport mode, remote identity = the queried name) and, negotiate=before-answer,
# brings the SA up before it releases the answer. The router's own applications then talk to
# the peer: transport-mode ESP only on the WAN wire, and the first TCP connection after the
# answer goes through without a retransmitted SYN. ICMP echo from the router (a raw socket, which
# no cgroup hook marks) must not leave in clear: the guard drops it.
# Then the same over IPv6: the AAAA answer makes dnsseal load a second per-peer connection
# (dnsseal-peer-partner-2001:db8::3, IKE and ESP over IPv6) and bring it up before the answer;
# curl to [2001:db8::3] on its first try (the kernel's TCP counters are shared by IPv4 and IPv6,
# so TcpRetransSegs still 0 with TcpActiveOpens at 2 covers both connections), IP6 ESP only.
# Raw-socket pings to the peer over both families raise the guard's plain_protected drop count
# (metrics endpoint) and never reach the wire; HTTP to www stays clear over both families.
# SKIP (with the reason) when dist/dnsseal or build/dnsseal.bpf.o is not built.
. "$LAB_DIR/lib/lab.sh"
. "$LAB_DIR/lib/guard.sh"

dnsseal_require
host_peer_setup

# negotiate_timeout: the default 2 s for load-conn + install + IKE measures the machine under
# TCG (seen: SERVFAIL after 1.1 s of IKE that needed 1.5 s); 20 s, and dns-answer waits 30 s.
dnsseal_start router --mode host --datapath ebpf --wan wan \
	--listen 127.0.0.53:53 --upstream $NS4 --local-id "$(lab_id router)" \
	--channel "partner=peer,identity=%name,esp=$LAB_ESP_PROPOSAL,negotiate_timeout=20000" \
	--protect 'peer.partner.test=partner' --metrics "$GUARD_METRICS" --log-level debug ||
	lab_fail "dnsseal does not start in host mode: $DNSSEAL_ERROR"

capture_start wan net p-router

PLAIN='dnsseal_datapath_guard_drops_total[{]reason="plain_protected"[}]'
evaltest <<EOF_EVAL
router::dns-answer 127.0.0.53 peer.partner.test A::^192\\.0\\.2\\.3$::1
router::swanctl --list-sas::INSTALLED, TRANSPORT, ESP:AES_GCM_16-256::YES
router::swanctl --list-sas::remote 'peer\\.partner\\.test'::YES
router::curl -sS -m 30 http://$PEER4/::hello from peer::YES
router::echo marked >/dev/udp/$PEER4/5000 && echo sent::sent::YES
# IPv6: the AAAA answer brings up a second, IPv6 per-peer SA before it is released.
router::dns-answer 127.0.0.53 peer.partner.test AAAA::^2001:db8::3$::1
router::swanctl --list-sas::^dnsseal-peer-partner-2001:db8::3: #[0-9]+, ESTABLISHED, IKEv2::1
router::swanctl --list-sas::remote 'peer\\.partner\\.test' @ 2001:db8::3\\[::1
router::swanctl --list-sas::^  dnsseal-peer-partner-2001:db8::3: #[0-9]+, reqid [0-9]+, INSTALLED, TRANSPORT, ESP:AES_GCM_16-256::1
router::curl -sS -m 30 http://[$PEER6_X]/::hello from peer::YES
# Each curl connected on its first try: two TCP connections so far (TCP's counters are shared
# by IPv4 and IPv6), and no packet to the peer was dropped on the router — not for want of an
# SA (XFRM) nor by the guard — so no SYN had to be sent again. (Not TcpRetransSegs: under a
# loaded TCG an ACK can take longer than the retransmission timer, which proves nothing.)
router::nstat -az TcpActiveOpens::^TcpActiveOpens +2 ::1
router::cat /proc/net/xfrm_stat::^Xfrm(OutNoStates|OutPolBlock|OutPolError)[[:space:]]+0$::3
router::echo marked >/dev/udp/$PEER6_X/5000 && echo sent::sent::YES
# ICMP from a raw socket has no cgroup hook to mark it: the guard must drop it (fail closed),
# counted as plain_protected. (The metrics curls come after the nstat lines: they open TCP.)
# The host guard sits at cgroup egress (every socket, raw included): the sender gets EPERM and
# busybox ping stops at the first error, so one drop per family.
router::metric 'dnsseal_datapath_guard_drops_total[{ ]'::^0$::1
router::a=\$(metric '$PLAIN'); ping -c 2 -W 3 $PEER4; b=\$(metric '$PLAIN'); echo "plain_protected \$a -> \$b"; [ \$b -ge \$((a + 1)) ] && echo v4-ping-dropped::^v4-ping-dropped$::1
router::a=\$(metric '$PLAIN'); ping -6 -c 2 -W 3 $PEER6_X; b=\$(metric '$PLAIN'); echo "plain_protected \$a -> \$b"; [ \$b -ge \$((a + 1)) ] && echo v6-ping-dropped::^v6-ping-dropped$::1
router::dns-answer 127.0.0.53 www.public.test A::^192\\.0\\.2\\.4$::1
router::curl -sS -m 30 http://$WWW4/::hello from www::YES
router::curl -sS -m 30 http://[$WWW6_X]/::hello from www::YES
router::$LAB_DNSSEAL list --json --control $LAB_TMP/router/dnsseal.sock::192\\.0\\.2\\.3::YES
router::$LAB_DNSSEAL list --json --control $LAB_TMP/router/dnsseal.sock::2001:db8::3::YES
peer::swanctl --list-sas::INSTALLED, TRANSPORT::2
peer::swanctl --list-sas::^  router6: #[0-9]+, reqid [0-9]+, INSTALLED, TRANSPORT::1
wan::tcpdump::IP $ROUTER4 > $PEER4: ESP\\(::>=4
wan::tcpdump::IP $PEER4 > $ROUTER4: ESP\\(::>=4
wan::tcpdump::IP $ROUTER4\\.[0-9]+ > $PEER4\\.80: ::NO
wan::tcpdump::IP $PEER4\\.80 > ::NO
wan::tcpdump::IP $ROUTER4 > $PEER4: ICMP::NO
wan::tcpdump::IP $ROUTER4\.[0-9]+ > $PEER4\.5000: ::NO
wan::tcpdump::IP6 $ROUTER6 > $PEER6: ESP\\(::>=4
wan::tcpdump::IP6 $PEER6 > $ROUTER6: ESP\\(::>=4
wan::tcpdump::IP6 $ROUTER6\\.[0-9]+ > $PEER6\\.(80|5000): ::NO
wan::tcpdump::IP6 $PEER6\\.80 > ::NO
wan::tcpdump::IP6 $ROUTER6 > $PEER6: ICMP6, echo::NO
wan::tcpdump::IP $ROUTER4\\.[0-9]+ > $WWW4\\.80: Flags \\[S\\]::1
wan::tcpdump::IP6 $ROUTER6\\.[0-9]+ > $WWW6\\.80: Flags \\[S\\]::1
wan::tcpdump::IP $ROUTER4 > $WWW4: ESP\\(::NO
wan::tcpdump::IP6 $ROUTER6 > $WWW6: ESP\\(::NO
EOF_EVAL
