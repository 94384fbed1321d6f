#!/bin/bash
# rekey-under-load: issue #14, items 3 and 5 (and item 1's gateway case) — a flow through dnsseal's
# tunnel across many CHILD_SA and IKE_SA rekeys, with the router behind a NAT and the hub
# proving its identity with a certificate chain too large for one packet on a 1280-byte path.
#
#   WAN      the router sits behind a masquerading NAT (rnat, lib/nat.sh); every WAN link has
#            MTU 1280 and the WAN bridge drops IP fragments (wan_no_fragments).
#   up       dnsseal in gateway mode; the client's ping flow to app.saas.test triggers IKE: NAT
#            detected, IKE floats to UDP 4500, the hub's IKE_AUTH (CA -> 2 RSA 4096 intermediates
#            -> RSA 4096 leaf with 40 subjectAltNames, ~6 kB) is split into IKE fragments
#            (RFC 7383) and reassembled by the router; the flow runs as ESP-in-UDP.
#   rekey    the hub's connection has lifetimes of seconds (CHILD_SA rekey_time 8s - up to 2s,
#            life_time 30s; IKE_SA rekey_time 20s - up to 3s, over_time 60s): the hub rekeys both while
#            the flow runs (IKEv2 rekeying is make-before-break: the new SA is installed before
#            the old one is deleted). The phase lasts until the router's charon logged 4 new
#            CHILD_SAs and 2 IKE_SA rekeys.
# Asserted: the flow lost at most 3 echo requests across the rekeys; the router's outbound SPI
# changed 4 times and more on the wire; IKE fragments used (hub: "splitting IKE message",
# router: "reassembled fragmented IKE message") and no IP fragment on the WAN; ESP-in-UDP only
# between the NAT's public address and the hub, zero clear packets to or from the protected
# networks on the WAN wire and on the router's side of the NAT.
# Shorter lifetimes starve under TCG on a loaded machine (seen with CHILD_SA 5s/12s, IKE_SA
# 12s/+20s: each exchange took 3-4 s, the IKE_SA rekey kept "delaying task initiation,
# CREATE_CHILD_SA exchange in progress" until its hard lifetime deleted it).
# dnsseal's own connection keeps its long default lifetimes: the rekeys are the hub's (a
# responder-side rekey is what a router meets when the hub's policy is shorter than its own).
. "$LAB_DIR/lib/lab.sh"
. "$LAB_DIR/lib/nat.sh"

rekey_wan() {
	nat_router
	wan_mtu 1280
	wan_no_fragments
}

rekey_hub_conn() {
	swan_conn router local=$HUB4 me=hub cert=hub-big them=router proposals="default, $LAB_IKE_PROPOSAL" \
		local_ts="0.0.0.0/0, ::/0" remote_ts="$LAN4, $LAN6" \
		ike.rekey_time=20s ike.over_time=60s ike.rand_time=3s \
		child.rekey_time=8s child.life_time=30s child.rand_time=2s
}

# _rekeys N M — the router's charon logged at least N CHILD_SA rekeys (the responder installs the
# new outbound SA: "outbound CHILD_SA … established") and M IKE_SA rekeys.
_rekeys() {
	local log=$LAB_OUT/charon-router.log
	[ "$(grep -c 'outbound CHILD_SA dnsseal-tunnel-saas{[0-9]*} established' "$log")" -ge "$1" ] &&
		[ "$(grep -c 'IKE_SA dnsseal-tunnel-saas\[[0-9]*\] rekeyed' "$log")" -ge "$2" ]
}

# NAT-T keepalives every 2 s hold rnat's 5 s mapping while the flow is quiet (without them, seen:
# the mapping expired, the next request went out from a new public port and was lost).
LAB_CHARON_OPTS="keep_alive = 2s"
GATEWAY_WAN=rekey_wan GATEWAY_HUB_CONN=rekey_hub_conn GATEWAY_HUB_CERT=hub-big gateway_flow
capture_start inner rnat in
flow_phase rekey
wait_until 300 "4 CHILD_SA rekeys and 2 IKE_SA rekeys on the router" _rekeys 4 2
flow_wait rekey 4 60
flow_stop

# The NAT's public port: 4500 unless it had to pick another (a NAT may rebind).
EXT=$ROUTER4\.[0-9]+ HUB=$HUB4\.4500
evaltest <<EOF_EVAL
lab::flow-between up rekey::bytes from::>=4
lab::flow-lost rekey::^lost [0-3] of::1
lab::cat $LAB_OUT/charon-router.log::outbound CHILD_SA dnsseal-tunnel-saas\{[0-9]+\} established::>=4
lab::cat $LAB_OUT/charon-router.log::IKE_SA dnsseal-tunnel-saas\[[0-9]+\] rekeyed between::>=2
lab::cat $LAB_OUT/charon-router.log::local host is behind NAT::YES
lab::cat $LAB_OUT/charon-hub.log::splitting IKE message \([0-9]+ bytes\) into [2-9] fragments::YES
lab::cat $LAB_OUT/charon-router.log::received fragment #[2-9] of [2-9], reassembled fragmented IKE message::YES
lab::tcpdump -nn -r $LAB_OUT/wan.pcap 2>/dev/null | sed -n 's/^.* IP $ROUTER4\.[0-9]* > $HUB: UDP-encap: ESP(spi=\(0x[0-9a-f]*\),.*/\1/p' | sort -u::^0x::>=5
net::nft list counter bridge lab_frag fragments::packets 0 ::YES
router::swanctl --list-sas::dnsseal-tunnel-saas: #[0-9]+, reqid [0-9]+, INSTALLED, TUNNEL-in-UDP, ESP:AES_GCM_16-256::YES
wan::tcpdump::IP $EXT > $HUB: UDP-encap: ESP\(::>=20
wan::tcpdump::IP $HUB > $EXT: UDP-encap: ESP\(::>=20
wan::tcpdump::IP [0-9.]+ > [0-9.]+: ESP\(::NO
$(no_clear wan)
$(no_clear inner)
inner::tcpdump::IP $ROUTER_IN4\.4500 > $HUB: UDP-encap: ESP\(::>=20
EOF_EVAL
