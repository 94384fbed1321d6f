#!/bin/bash
# leak-control: the negative control for every "zero clear packets" assertion.
#
# Same topology and marking as tunnel-hub, but no charon and so no XFRM policy: the marked
# packets to the protected server must leave in clear and be seen on the WAN wire. If this
# scenario fails, the captures cannot see a leak and the NO assertions elsewhere prove nothing.
. "$LAB_DIR/lib/lab.sh"

MARK=0x42

topo_up
on router nft -f - <<EOF || lab_fail "nft rules on the router"
table inet lab {
	chain lan_in {
		type filter hook prerouting priority mangle; policy accept;
		iifname "lan" ip daddr $PROT4 meta mark set $MARK
		iifname "lan" ip6 daddr $PROT6 meta mark set $MARK
	}
}
EOF
capture_start wan net p-router

evaltest <<EOF_EVAL
# Nothing routes the protected networks beyond the sink: no answer, but the packets leave.
client::ping -c 3 -W 2 $SRV4; true::0 packets received::YES
client::ping -6 -c 2 -W 2 $SRV6_X; true::0 packets received::YES
client::curl -sS -m 4 http://$SRV4/; true::hello from srv::NO
router::ip xfrm policy; ip xfrm state::.::NO
wan::tcpdump::IP $CLIENT4 > $SRV4: ICMP echo request::3
wan::tcpdump::IP6 $CLIENT6 > $SRV6: ICMP6, echo request::2
wan::tcpdump::IP $CLIENT4\.[0-9]+ > $SRV4\.80: Flags \[S\]::>=1
wan::tcpdump::> 198\.51\.100\.::>=4
wan::tcpdump::: ESP\(::NO
EOF_EVAL
