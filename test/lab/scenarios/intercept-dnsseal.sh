#!/bin/bash
# intercept-dnsseal: intercept mode with the real daemon over real ESP — issue #6 in the lab.
#
#   The client's default gateway is "gw", not the encryption node (the router); only the pool
#   prefixes (100.64.0.0/16, fd00:64::/96) are routed to the router, which is the client's DNS
#   server. dnsseal --mode intercept on the router (tc on lan/wan, channel saas = tunnel to the
#   hub charon, rule *.saas.test).
#
#   1. app.saas.test resolves to an intercept address from the pool (A and AAAA), never the real
#      one; multi.saas.test (three A records) to three distinct intercept addresses;
#   2. ICMP, TCP (busybox httpd), UDP (echo server) over IPv4 and IPv6 to the intercept
#      addresses reach the real servers behind the hub, decapsulated (srv capture: client ->
#      real address); the replies reach the client from the intercept address (client capture); a UDP datagram to a
#      closed port gets srv's ICMP port-unreachable back quoting the intercept address (the
#      client's connected socket sees ECONNREFUSED);
#   3. on the router's WAN wire: ESP to/from the hub only, zero clear packets to or from the
#      protected addresses, no intercept address at all; nothing protected via gw;
#   4. www.public.test resolves to its real address and goes direct (via gw, not the router).
# SKIP (with the reason) when dist/dnsseal or the BPF objects are not built.
. "$LAB_DIR/lib/lab.sh"
. "$LAB_DIR/lib/intercept.sh"

dnsseal_require dnsseal intercept

intercept_setup

intercept_dnsseal ||
	lab_fail "dnsseal does not start in intercept mode: $DNSSEAL_ERROR"

capture_start wan net p-router
capture_start gwwan net p-gw
capture_start cli client eth0
capture_start srv srv eth0

# Learn the intercept addresses the client is given (asserted again below).
ICPT=$(dns_ask app.saas.test A | head -n1)
ICPT6=$(dns_ask app.saas.test AAAA | head -n1)
MULTI=$(dns_ask multi.saas.test A | sort -u | tr '\n' ' ')
lab_log "intercept: app.saas.test A=$ICPT AAAA=$ICPT6; multi.saas.test: $MULTI"
case $ICPT in 100.64.*) ;; *) lab_fail "app.saas.test A is '$ICPT', not an intercept address of $ICPT_POOL4" ;; esac
case $ICPT6 in fd00:64:*) ;; *) lab_fail "app.saas.test AAAA is '$ICPT6', not an intercept address of $ICPT_POOL6" ;; esac
ICPT6_X=$(v6_explode "$ICPT6")
ICPT_RE=${ICPT//./\\.}
DIG="dns-answer $ROUTER_LAN4"

multi_pings=
for a in $MULTI; do multi_pings+="ping -c 2 -W 10 $a; "; done

evaltest --continue <<EOF_EVAL
client::$DIG app.saas.test A | tee $LAB_TMP/app-a.txt::^$ICPT_RE$::1
client::cat $LAB_TMP/app-a.txt::198\.51\.100\.::NO
client::$DIG app.saas.test AAAA | tee $LAB_TMP/app-aaaa.txt::^fd00:64::[0-9a-f:]*$::1
client::cat $LAB_TMP/app-aaaa.txt::2001:db8:100::NO
client::$DIG multi.saas.test A | tee $LAB_TMP/multi-a.txt | sort -u::^100\.64\.[0-9]+\.[0-9]+$::3
client::cat $LAB_TMP/multi-a.txt::198\.51\.100\.::NO
client::$DIG www.public.test A::^192\.0\.2\.4$::1
client::ip route get $ICPT::via $ROUTER_LAN4::YES
client::ip route get $WWW4::via $GW_LAN4::YES
EOF_EVAL
# The first packets trigger IKE through the trap (dropped meanwhile, never clear).
wait_until 120 "a reply from $ICPT through the tunnel the trap brings up" on client ping -c 1 -W 2 $ICPT

evaltest <<EOF_EVAL
client::ping -c 5 -i 0.5 -W 10 $ICPT::5 packets received::YES
client::curl -sS -m 30 http://$ICPT/::hello from srv::YES
client::exec 3<>/dev/udp/$ICPT/5000 && echo udp-probe >&3 && timeout 60 dd bs=2048 count=1 status=none <&3::^echo:udp-probe$::1
client::exec 3<>/dev/udp/$ICPT/5001 && for i in \$(seq 300); do echo closed-port >&3 || exit 0; sleep 0.2; done; echo no-error::Connection refused::YES
client::$multi_pings::2 packets received::3
client::ping -6 -c 3 -W 10 $ICPT6_X::[1-9] packets received::YES
client::curl -sS -m 30 http://[$ICPT6_X]/::hello from srv::YES
client::exec 3<>/dev/udp/$ICPT6_X/5000 && echo udp6-probe >&3 && timeout 60 dd bs=2048 count=1 status=none <&3::^echo:udp6-probe$::1
client::curl -sS -m 30 http://$WWW4/::hello from www::YES
router::$LAB_DNSSEAL list --control $LAB_TMP/router/dnsseal.sock | tee $LAB_TMP/list.txt::100\.64\.[0-9.]+ +198\.51\.100\.1[0-2] ::3
router::cat $LAB_TMP/list.txt::fd00:64::[0-9a-f:]* +2001:db8:100::10 ::1
router::swanctl --list-sas | tr '\n' ' '::remote 'hub\.saas\.test'.*dnsseal-tunnel-saas: #[0-9]+, reqid [0-9]+, INSTALLED, TUNNEL, ESP:AES_GCM_16-256::YES
$(esp_both wan $ROUTER4 $HUB4 15)
$(no_clear wan)
wan::tcpdump::(^| )100\.64\.[0-9]+\.[0-9]+::NO
wan::tcpdump::fd00:64:::NO
wan::tcpdump::> $WWW4\.80::NO
gwwan::tcpdump::IP $CLIENT4\.[0-9]+ > $WWW4\.80: Flags \[S\]::YES
gwwan::tcpdump::198\.51\.100\.|2001:db8:100:|(^| )100\.64\.|fd00:64:|ESP::NO
srv::tcpdump::IP $CLIENT4 > $SRV4: ICMP echo request::>=1
srv::tcpdump::IP $CLIENT4\.[0-9]+ > $SRV4\.80: Flags \[S\]::YES
srv::tcpdump::IP $CLIENT4\.[0-9]+ > $SRV4\.5000: UDP::1
srv::tcpdump::IP $CLIENT4 > $SRV4_B: ICMP echo request::>=1
srv::tcpdump::IP $CLIENT4 > $SRV4_C: ICMP echo request::>=1
srv::tcpdump::IP6 $CLIENT6 > $SRV6: ICMP6, echo request::>=1
srv::tcpdump::IP6 $CLIENT6\.[0-9]+ > $SRV6\.80: Flags \[S\]::YES
srv::tcpdump::IP6 $CLIENT6\.[0-9]+ > $SRV6\.5000: UDP::1
srv::tcpdump::IP $SRV4 > $CLIENT4: ICMP $SRV4 udp port 5001 unreachable::YES
srv::tcpdump::100\.64\.|fd00:64:::NO
cli::tcpdump::IP $ICPT_RE > $CLIENT4: ICMP echo reply::>=1
cli::tcpdump::IP $ICPT_RE\.80 > $CLIENT4\.[0-9]+: Flags \[S\.\]::YES
cli::tcpdump::IP $ICPT_RE\.5000 > $CLIENT4\.[0-9]+: UDP::1
cli::tcpdump::IP6 $ICPT6 > $CLIENT6: ICMP6, echo reply::>=1
cli::tcpdump::IP6 $ICPT6\.80 > $CLIENT6\.[0-9]+: Flags \[S\.\]::YES
cli::tcpdump::IP6 $ICPT6\.5000 > $CLIENT6\.[0-9]+: UDP::1
cli::tcpdump::IP $ICPT_RE > $CLIENT4: ICMP $ICPT_RE udp port 5001 unreachable::YES
cli::tcpdump::198\.51\.100\.|2001:db8:100:::NO
EOF_EVAL
