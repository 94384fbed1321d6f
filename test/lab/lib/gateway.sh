# Gateway mode with the real daemon: the pieces the gateway scenarios share.
#
#   gateway_setup        topology, knotd, charons on router (credentials only: dnsseal loads
#                        the connection over VICI) and hub (hub_router_conn: accepts
#                        router.lab.test for LAN <-> 0.0.0.0/0, ::/0), httpd on srv and www
#                        Variations: GATEWAY_WAN (a command run after topo_up that changes
#                        the WAN, e.g. nat_router), GATEWAY_HUB_CONN (the function that prints
#                        the hub's connection instead of hub_router_conn), GATEWAY_HUB_CERT (the
#                        hub's pki name, default hub), GATEWAY_WAN_IFACES (the --wan interfaces,
#                        default wan; empty: none, the guard follows the default routes)
#   gateway_dnsseal      start dnsseal in gateway mode on the router: tc on lan/wan, channel
#                        saas = tunnel to the hub (identity hub.saas.test), rule *.saas.test;
#                        returns when it answers DNS (dnsseal_start)
#   gateway_flow ARGS…   the start of a flow scenario: the daemon and its BPF object built
#                        (else SKIP), gateway_setup, gateway_dnsseal ARGS…, the WAN wire
#                        captured as "wan", app.saas.test resolved by the client through
#                        dnsseal, a ping flow from the client to it (lib/flow.sh), phase "up"
#                        with 4 replies through the tunnel

gateway_setup() {
	topo_up
	${GATEWAY_WAN:-}
	dns_serve
	charon_start router hub
	swan_conf router </dev/null
	${GATEWAY_HUB_CONN:-hub_router_conn} | LAB_CERT=${GATEWAY_HUB_CERT:-hub} swan_conf hub
	swan_load router hub
	http_serve srv "hello from srv"
	http_serve www "hello from www"
}

gateway_dnsseal() {
	local w wans=()
	for w in ${GATEWAY_WAN_IFACES-wan}; do wans+=(--wan "$w"); done
	dnsseal_start router --mode gateway --datapath ebpf --lan lan "${wans[@]}" \
		--listen $ROUTER_LAN4:53 --upstream $NS4 --local-id "$(lab_id router)" \
		--channel "saas=tunnel:$HUB4,identity=$(lab_id hub),esp=$LAB_ESP_PROPOSAL" \
		--protect '*.saas.test=saas' --log-level debug "$@"
}

gateway_flow() {
	local addr
	dnsseal_require
	gateway_setup
	gateway_dnsseal "$@" || lab_fail "dnsseal does not start in gateway mode: $DNSSEAL_ERROR"
	capture_start wan net p-router
	addr=$(dns_ask app.saas.test A)
	[ "$addr" = "$SRV4" ] || lab_fail "app.saas.test through dnsseal: got '$addr', want $SRV4"
	flow_phase up
	flow_start client "$SRV4"
	# The first packets trigger IKE through the trap (dropped meanwhile, never clear).
	flow_wait up 4 120 || lab_fail "no replies from $SRV4 through the tunnel"
}
