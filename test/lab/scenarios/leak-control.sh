#!/bin/bash
# leak-control: the negative control for every "zero clear packets" assertion.
#
# Same topology and marking as tunnel-hub, but no charon and so no XFRM policy: the marked
# packets to the protected server must leave in clear and be seen on the WAN wire. If this
# scenario fails, the captures cannot see a leak and the NO assertions elsewhere prove nothing.
. "$LAB_DIR/lib/lab.sh"

topo_up
tunnel_mark_lan
# Counts the client's TCP SYNs to the protected server as they leave the WAN (in clear).
on router nft -f - <<EOF || lab_fail "nft counter on the router"
table inet lab {
	counter syn_out { }
	chain wan_out {
		type filter hook postrouting priority 100; policy accept;
		oifname "wan" ip daddr $SRV4 tcp dport 80 tcp flags syn counter name syn_out
	}
}
EOF
capture_start wan net p-router

# Nothing routes the protected networks beyond the sink: no answer ever comes. curl keeps
# trying until its first SYN has left the WAN, then it is stopped.
syn_left() { on router nft list counter inet lab syn_out | grep -q 'packets [1-9]'; }
ip netns exec client curl -sS -m 120 "http://$SRV4/" >"$LAB_OUT/curl.txt" 2>&1 &
curl_pid=$!
LAB_PIDS+=($!)
wait_until 60 "the client's SYN to $SRV4:80 to leave the WAN" syn_left
lab_stop "$curl_pid" TERM "curl"

evaltest <<EOF_EVAL
# ping sends its 3 (2) requests whatever the speed; -W bounds the wait for replies that never come.
client::ping -c 3 -W 2 $SRV4; true::0 packets received::YES
client::ping -6 -c 2 -W 2 $SRV6_X; true::0 packets received::YES
lab::cat $LAB_OUT/curl.txt::hello from srv::NO
router::ip xfrm policy; ip xfrm state::.::NO
wan::tcpdump::IP $CLIENT4 > $SRV4: ICMP echo request::3
wan::tcpdump::IP6 $CLIENT6 > $SRV6: ICMP6, echo request::2
wan::tcpdump::IP $CLIENT4\.[0-9]+ > $SRV4\.80: Flags \[S\]::>=1
wan::tcpdump::> 198\.51\.100\.::>=4
wan::tcpdump::: ESP\(::NO
EOF_EVAL
