# The route-based tunnel router <-> hub, and the stand-in for dnsseal's marking (nft), for the
# scenarios that run without the daemon (tunnel-hub, charon-restart, leak-control); the hub's
# side also serves the gateway scenarios (gateway_setup).
#
#   TUNNEL_MARK              the mark that selects the tunnel (0x42)
#   hub_router_conn          the hub's connection: accepts router.lab.test for
#                            LAN4, LAN6 <-> 0.0.0.0/0, ::/0 (charon's default proposal too: the
#                            daemon offers it)
#   router_hub_conn          the router's connection "hub" (CHILD_SA hub): the same selectors,
#                            mark_in/mark_out/set_mark_in $TUNNEL_MARK, start_action = trap
#   tunnel_setup             topology, charons on router and hub, both connections loaded
#   tunnel_mark_lan          nft on the router: the client's packets to the protected networks
#                            get $TUNNEL_MARK (the stand-in for dnsseal's tc ingress program)
#   tunnel_initiate WHY      the router initiates CHILD_SA hub and waits until it is up (the
#                            initiate returns when it is); fails the scenario when it is not

TUNNEL_MARK=0x42

hub_router_conn() {
	swan_conn router local=$HUB4 me=hub them=router proposals="default, $LAB_IKE_PROPOSAL" \
		local_ts="0.0.0.0/0, ::/0" remote_ts="$LAN4, $LAN6"
}

router_hub_conn() {
	swan_conn hub local=$ROUTER4 remote=$HUB4 me=router them=hub \
		local_ts="$LAN4, $LAN6" remote_ts="0.0.0.0/0, ::/0" mark=$TUNNEL_MARK start=trap
}

tunnel_setup() {
	topo_up
	charon_start router hub
	router_hub_conn | swan_conf router
	hub_router_conn | swan_conf hub
	swan_load router hub
	lab_log "tunnel: connections loaded on router and hub"
}

tunnel_mark_lan() {
	on router nft -f - <<-EOF || lab_fail "nft marking rules on the router"
		table inet lab_mark {
			chain lan_in {
				type filter hook prerouting priority mangle; policy accept;
				iifname "lan" ip daddr $PROT4 meta mark set $TUNNEL_MARK
				iifname "lan" ip6 daddr $PROT6 meta mark set $TUNNEL_MARK
			}
		}
	EOF
	lab_log "tunnel: the router marks the LAN's packets to $PROT4 and $PROT6 with $TUNNEL_MARK"
}

tunnel_initiate() {
	local out=$LAB_OUT/initiate.out
	echo "---- $1" >>"$out"
	swan router --initiate --child hub --timeout 120 >>"$out" 2>&1 || {
		tail -n 20 "$out"
		lab_fail "the router could not bring up CHILD_SA hub ($1)"
	}
	lab_log "tunnel: CHILD_SA hub up ($1)"
}
