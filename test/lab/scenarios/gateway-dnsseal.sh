#!/bin/bash
# gateway-dnsseal: gateway mode with the real daemon — issue #4, lab item 1 and its IPv6
# variant (item 3).
#
#   1. dist/dnsseal runs in the guest (--help, version), on Debian's 6.1 kernel;
#   2. every program of build/dnsseal.bpf.o passes the 6.1 verifier (loaded, not attached);
#   3. topology, knotd (*.test), the router's and hub's charons; the router's charon only has
#      credentials — dnsseal loads the tunnel connection over VICI;
#   4. dnsseal in gateway mode on the router (tc on lan/wan, channel saas = tunnel to the hub,
#      identity hub.saas.test, rule *.saas.test); the client resolves through it and sends ICMP,
#      TCP and UDP to app.saas.test's A and AAAA: the trap brings the tunnel up (one CHILD_SA,
#      traffic selectors LAN4+LAN6 <-> 0.0.0.0/0+::/0, IPv4 outer), the traffic crosses the WAN
#      as ESP only, the server sees it decapsulated (IP and IP6 from the client's own address);
#      www.public.test stays clear over IPv4 and IPv6.
# SKIP (with the reason) when dist/dnsseal or build/dnsseal.bpf.o is not built; everything
# else is a real assertion: a daemon that does not start is a FAIL.
. "$LAB_DIR/lib/lab.sh"

dnsseal_require
obj=$LAB_REPO/build/dnsseal.bpf.o

checks="lab::$LAB_DNSSEAL --help::Usage: dnsseal::YES
lab::$LAB_DNSSEAL version::[0-9]+\\.[0-9]+\\.[0-9]+::YES"
# Load every program of the object (maps created, nothing attached) and count them.
checks+="
lab::n=\$(bpftool btf dump file $obj | grep -c \"FUNC 'dnsseal_\"); mkdir -p /sys/fs/bpf/lab-load && bpftool prog loadall $obj /sys/fs/bpf/lab-load && m=\$(ls /sys/fs/bpf/lab-load | wc -l) && echo \"loaded \$m of \$n\" && [ \"\$m\" -eq \"\$n\" ] && echo all-loaded::all-loaded::YES"
evaltest --continue <<<"$checks"
[ "$LAB_EVAL_FAILED" -eq 0 ] || lab_finish

gateway_setup

evaltest --continue <<EOF_EVAL
client::dns-answer $NS4 app.saas.test A::^198\.51\.100\.10$::1
router::swanctl --list-certs::CN=router\.lab\.test::YES
EOF_EVAL
[ "$LAB_EVAL_FAILED" -eq 0 ] || lab_finish

gateway_dnsseal ||
	lab_fail "dnsseal does not start in gateway mode: $DNSSEAL_ERROR"

capture_start wan net p-router
capture_start srv srv eth0

# The client resolves through dnsseal (gateway_dnsseal returned once it answered a probe), then
# talks: the first packets to the protected address trigger IKE through the trap (dropped
# meanwhile, never clear; pinged until the first reply), the rest go through ESP.
evaltest --continue <<EOF_EVAL
client::dns-answer $ROUTER_LAN4 app.saas.test A::^198\.51\.100\.10$::1
client::dns-answer $ROUTER_LAN4 app.saas.test AAAA::^2001:db8:100::10$::1
client::dns-answer $ROUTER_LAN4 www.public.test A::^192\.0\.2\.4$::1
client::dns-answer $ROUTER_LAN4 www.public.test AAAA::^2001:db8::4$::1
EOF_EVAL
wait_until 120 "a reply from $SRV4 through the tunnel the trap brings up" on client ping -c 1 -W 2 $SRV4

evaltest <<EOF_EVAL
client::ping -c 8 -i 0.5 -W 10 $SRV4::8 packets received::YES
client::curl -sS -m 30 http://$SRV4/::hello from srv::YES
client::echo udp-probe >/dev/udp/$SRV4/5000 && echo sent::sent::YES
client::ping -6 -c 3 -W 10 $SRV6_X::3 packets received::YES
client::curl -sS -m 30 http://[$SRV6_X]/::hello from srv::YES
client::echo udp6-probe >/dev/udp/$SRV6_X/5000 && echo sent::sent::YES
client::curl -sS -m 30 http://$WWW4/::hello from www::YES
client::curl -sS -m 30 http://[$WWW6_X]/::hello from www::YES
router::$LAB_DNSSEAL list --json --control $LAB_TMP/router/dnsseal.sock::198\.51\.100\.10::YES
router::swanctl --list-sas::dnsseal-tunnel-saas: #[0-9]+, reqid [0-9]+, INSTALLED, TUNNEL, ESP:AES_GCM_16-256::YES
router::swanctl --list-sas::remote 'hub\.saas\.test'::YES
router::swanctl --list-sas::local  $LAN4 $LAN6$::YES
router::swanctl --list-sas::remote 0\.0\.0\.0/0 ::/0$::YES
$(esp_both wan $ROUTER4 $HUB4 20)
$(no_clear wan)
wan::tcpdump::IP $CLIENT4\.[0-9]+ > $WWW4\.80: Flags \[S\]::YES
wan::tcpdump::IP6 $CLIENT6\.[0-9]+ > $WWW6\.80: Flags \[S\]::YES
wan::tcpdump::IP6 $WWW6\.80 > $CLIENT6\.[0-9]+: Flags \[S\.\]::YES
wan::tcpdump::IP $ROUTER4 > $WWW4: ESP\(::NO
srv::tcpdump::IP $CLIENT4 > $SRV4: ICMP echo request::>=1
srv::tcpdump::IP $CLIENT4\.[0-9]+ > $SRV4\.80: Flags \[S\]::YES
srv::tcpdump::IP $CLIENT4\.[0-9]+ > $SRV4\.5000: UDP::1
srv::tcpdump::IP6 $CLIENT6 > $SRV6: ICMP6, echo request::>=1
srv::tcpdump::IP6 $CLIENT6\.[0-9]+ > $SRV6\.80: Flags \[S\]::YES
srv::tcpdump::IP6 $CLIENT6\.[0-9]+ > $SRV6\.5000: UDP::1
EOF_EVAL
