#!/bin/bash
# uplink-change: issue #14, item 4 — the router's default route moves to a second uplink during
# a flow; the tunnel follows with MOBIKE (RFC 4555) and the guard is on the new uplink first.
#
# dnsseal in gateway mode with no `wan` setting: its guard sits on the interfaces that carry a
# default route and follows them (README, `wan`). The router has a second uplink, wan2 (another
# provider, isp2, 198.18.0.1; lib/uplink.sh).
#   up       the ping flow to app.saas.test runs through the tunnel over wan (192.0.2.1).
#   backup   the second uplink gets a default route (metric 100, as DHCP on it would add): the
#            phase lasts until dnsseal's guard is on wan2's egress — before any packet to a
#            protected address or the hub can take that uplink.
#   moved    wan fails (link down, its address gone, as when the provider's link or lease
#            goes): the default route is wan2's. strongSwan's charon on the
#            router sees its address go and moves the IKE_SA and the CHILD_SA to 198.18.0.1 with
#            MOBIKE (UPDATE_SA_ADDRESSES; both ends are strongSwan, tunnel mode, mobike = yes is
#            charon's default and dnsseal does not turn it off): no new IKE_SA, the SAs keep their
#            SPIs, the flow resumes as ESP 198.18.0.1 <-> hub on wan2. The phase lasts until 6
#            replies came.
# Chosen over re-initiation: MOBIKE keeps the SAs (no IKE_AUTH, no gap for a new SA), and a
# re-initiation would still need dnsseal to notice the move. Seen while writing this: with the
# link down but its address kept, charon keeps the old path ("keeping connection path
# 192.0.2.1 - 192.0.2.2"), its MOBIKE update times out (3 retransmits, ~25 s here) and the
# IKE_SA is destroyed and initiated again through the trap — still no clear packet, but a
# 40 s gap: an uplink whose address stays must be taken down with its address.
# Asserted: the guard on wan2 before the move, MOBIKE in charon's log, the SA on the new address,
# ESP both ways on each uplink's wire, zero clear packets to or from the protected networks on
# either uplink's wire.
. "$LAB_DIR/lib/lab.sh"
. "$LAB_DIR/lib/uplink.sh"

_guard_on() { on router tc filter show dev "$1" egress | grep -q dnsseal; }

# The hub announces only its WAN addresses for MOBIKE. Its default is every address it has,
# 198.51.100.1 behind it included: after the move the router's charon probed that one too
# ("IP 198.18.0.1.4500 > 198.51.100.1.4500: NONESP-encap: isakmp: child_sa inf2[I]" on wan2),
# an IKE packet to a protected address on the open WAN. A hub serving dnsseal routers should do
# the same (strongswan.conf charon.interfaces_use, or no additional addresses).
LAB_CHARON_OPTS_hub="interfaces_use = eth0"
GATEWAY_WAN=uplink2_up GATEWAY_WAN_IFACES= gateway_flow
capture_start wan2 isp2 in
on router tc filter show dev wan egress >"$LAB_OUT/guard-wan.txt" 2>&1
flow_phase backup
uplink2_default 100
wait_until 60 "dnsseal's guard to follow the default route onto wan2" _guard_on wan2
on router tc filter show dev wan2 egress >"$LAB_OUT/guard-wan2.txt" 2>&1
spi_before=$(on router ip xfrm state | sed -n 's/.*proto esp spi \(0x[0-9a-f]*\).*/\1/p' | sort | tr '\n' ' ')
lab_log "ESP SPIs before the move: $spi_before"

flow_phase moved
uplink1_fail
flow_wait moved 6 180 || lab_log "the flow did not resume over wan2"
flow_stop

evaltest <<EOF_EVAL
lab::flow-between up backup::bytes from::>=4
lab::cat $LAB_OUT/guard-wan.txt::dnsseal::YES
lab::cat $LAB_OUT/guard-wan2.txt::dnsseal::YES
lab::flow-between moved::bytes from::>=6
lab::cat $LAB_OUT/charon-router.log::(requesting address change|sending address list update) using MOBIKE::YES
lab::cat $LAB_OUT/charon-router.log::IKE_SA dnsseal-tunnel-saas\[[0-9]+\] established::1
router::swanctl --list-sas::dnsseal-tunnel-saas: #[0-9]+, ESTABLISHED, IKEv2::1
router::swanctl --list-sas::local .* @ $ROUTER2_4\[4500\]::YES
router::swanctl --list-sas::dnsseal-tunnel-saas: #[0-9]+, reqid [0-9]+, INSTALLED, TUNNEL, ESP:AES_GCM_16-256::YES
router::ip xfrm state::^src $ROUTER2_4 dst $HUB4::YES
router::ip xfrm state::^src $ROUTER4 ::NO
router::ip xfrm state | sed -n 's/.*proto esp spi \(0x[0-9a-f]*\).*/\1/p' | sort | tr '\n' ' '::^$spi_before\$::1
$(esp_both wan $ROUTER4 $HUB4 4)
$(esp_both wan2 $ROUTER2_4 $HUB4 3)
$(no_clear wan)
$(no_clear wan2)
EOF_EVAL
