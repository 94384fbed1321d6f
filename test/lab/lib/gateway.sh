# Gateway mode with the real daemon: the pieces the gateway scenarios share.
#
#   gateway_setup        topology, knotd, charons on router (credentials only: dnsseal loads
#                        the connection over VICI) and hub (accepts router.lab.test for
#                        LAN <-> 0.0.0.0/0, ::/0), httpd on srv and www
#   gateway_dnsseal      start dnsseal in gateway mode on the router: tc on lan/wan, channel
#                        saas = tunnel to the hub (identity hub.saas.test), rule *.saas.test

gateway_setup() {
	topo_up
	dns_serve
	charon_start router hub
	swan_conf router </dev/null
	swan_conf hub <<-EOF
		connections {
			router {
				version = 2
				local_addrs = $HUB4
				remote_addrs = %any
				proposals = default, $LAB_IKE_PROPOSAL
				local {
					auth = pubkey
					certs = hub.pem
					id = $(lab_id hub)
				}
				remote {
					auth = pubkey
					id = $(lab_id router)
				}
				children {
					router {
						mode = tunnel
						local_ts = 0.0.0.0/0, ::/0
						remote_ts = $LAN4, $LAN6
						esp_proposals = $LAB_ESP_PROPOSAL
					}
				}
			}
		}
	EOF
	swan_load router hub
	http_serve srv "hello from srv"
	http_serve www "hello from www"
}

gateway_dnsseal() {
	dnsseal_start router --mode gateway --datapath ebpf --lan lan --wan wan \
		--listen $ROUTER_LAN4:53 --upstream $NS4 --local-id "$(lab_id router)" \
		--channel "saas=tunnel:$HUB4,identity=$(lab_id hub),esp=$LAB_ESP_PROPOSAL" \
		--protect '*.saas.test=saas' --log-level debug "$@"
}
