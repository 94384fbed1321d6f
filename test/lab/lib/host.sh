# Host mode with the real daemon: the router's own applications talk to peer.partner.test.
#
#   host_peer_setup [CERT] [TEXT]  topology, knotd, charons on router (credentials only: dnsseal
#                                  loads the per-peer connections over VICI) and peer (answering
#                                  the router's per-peer connection over IPv4 and IPv6 with
#                                  certificate CERT, default peer: `impostor` holds one for
#                                  other.partner.test), httpd on peer ("hello from TEXT",
#                                  default peer) and on www

host_peer_setup() {
	local cert=${1:-peer}
	topo_up
	dns_serve
	charon_start router peer
	swan_conf router </dev/null
	{
		peer_transport_conn router4 $PEER4 $ROUTER4 "$cert"
		peer_transport_conn router6 $PEER6 $ROUTER6 "$cert"
	} | LAB_CERT=$cert swan_conf peer
	swan_load router peer
	http_serve peer "hello from ${2:-peer}"
	http_serve www "hello from www"
}
