#!/bin/bash
# tunnel-hub: gateway mode without dnsseal — a route-based tunnel selected by the mark.
#
# router and hub run charon; the router's CHILD_SA "hub" (LAN <-> 0.0.0.0/0, ::/0) carries
# mark_in/mark_out 0x42, so its XFRM policies only take packets that carry the mark. On the
# router, nft marks the client's packets to 198.51.100.0/24 and 2001:db8:100::/64 — a
# stand-in for dnsseal's tc ingress program. Traffic from the client to www.public.test is
# not marked and must leave in clear.
#
# Asserted on the capture of the router's WAN wire ("wan"): ESP router <-> hub in both
# directions, not one clear packet to or from a protected address, the www traffic clear and
# unmarked; on the server behind the hub: the client's ICMP, TCP and UDP arrive decapsulated.
. "$LAB_DIR/lib/lab.sh"

tunnel_setup
tunnel_mark_lan
# Counters that show what left the WAN towards www, marked or not.
on router nft -f - <<EOF || lab_fail "nft counters on the router"
table inet lab {
	counter www_marked { }
	counter www_clear { }
	chain wan_out {
		type filter hook postrouting priority mangle; policy accept;
		oifname "wan" ip daddr $WWW4 meta mark != 0 counter name www_marked
		oifname "wan" ip daddr $WWW4 meta mark 0 counter name www_clear
	}
}
EOF
http_serve srv "hello from srv"
http_serve www "hello from www"
capture_start wan net p-router
capture_start srv srv eth0
tunnel_initiate start

evaltest <<EOF_EVAL
# Traffic: ICMP, TCP and UDP to the protected server, IPv4 and IPv6; then the public server.
client::ping -c 3 -W 10 $SRV4::3 packets received::YES
client::curl -sS -m 30 http://$SRV4/::hello from srv::YES
client::echo udp-probe >/dev/udp/$SRV4/5000 && echo sent::sent::YES
client::ping -6 -c 3 -W 10 $SRV6_X::3 packets received::YES
client::curl -sS -m 30 http://[$SRV6_X]/::hello from srv::YES
client::curl -sS -m 30 http://$WWW4/::hello from www::YES
# IKE and ESP state.
router::swanctl --list-sas::hub: #[0-9]+, ESTABLISHED, IKEv2::YES
router::swanctl --list-sas::hub: #[0-9]+, reqid [0-9]+, INSTALLED, TUNNEL, ESP:AES_GCM_16-256::YES
hub::swanctl --list-sas::router: #[0-9]+, reqid [0-9]+, INSTALLED, TUNNEL, ESP:AES_GCM_16-256::YES
router::ip xfrm policy::mark $TUNNEL_MARK/0xffffffff::>=4
router::ip xfrm state::proto esp::2
router::nft list counter inet lab www_marked::packets 0 ::YES
router::nft list counter inet lab www_clear::packets [1-9]::YES
# The router's WAN wire: ESP both ways, nothing in clear to or from the protected networks.
$(esp_both wan $ROUTER4 $HUB4 9)
$(no_clear wan)
# www.public.test stays clear.
wan::tcpdump::IP $CLIENT4\.[0-9]+ > $WWW4\.80: Flags \[S\]::YES
wan::tcpdump::IP $WWW4\.80 > $CLIENT4\.[0-9]+: Flags \[S\.\]::YES
wan::tcpdump::IP $ROUTER4 > $WWW4: ESP\(::NO
# The server saw the client's traffic decapsulated.
srv::tcpdump::IP $CLIENT4 > $SRV4: ICMP echo request::3
srv::tcpdump::IP $CLIENT4\.[0-9]+ > $SRV4\.80: Flags \[S\]::YES
srv::tcpdump::IP $CLIENT4\.[0-9]+ > $SRV4\.5000: UDP::1
srv::tcpdump::IP6 $CLIENT6 > $SRV6: ICMP6, echo request::3
srv::tcpdump::IP6 $CLIENT6\.[0-9]+ > $SRV6\.80: Flags \[S\]::YES
srv::tcpdump::: ESP\(::NO
EOF_EVAL
