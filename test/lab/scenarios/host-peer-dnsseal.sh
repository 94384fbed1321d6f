#!/bin/bash
# host-peer-dnsseal: host mode with the real daemon — issue #4, lab item 2.
#
# dnsseal runs on the router in host mode (cgroup connect/sendmsg hooks set SO_MARK, the guard
# on wan), with a `peer` channel for peer.partner.test: on the answer it loads a per-peer
# connection (transport mode, remote identity = the queried name) and, negotiate=before-answer,
# brings the SA up before it releases the answer. The router's own applications then talk to
# the peer: transport-mode ESP only on the WAN wire, and the first TCP connection after the
# answer goes through without a retransmitted SYN. ICMP echo from the router (a raw socket, which
# no cgroup hook marks) must not leave in clear: the guard drops it.
# SKIP (with the reason) when dist/dnsseal or build/dnsseal.bpf.o is not built.
. "$LAB_DIR/lib/lab.sh"

dnsseal_built || lab_skip "pending: $LAB_DNSSEAL is not built (make build)"
[ -f "$LAB_REPO/build/dnsseal.bpf.o" ] || lab_skip "pending: build/dnsseal.bpf.o is not built (make bpf)"

topo_up
dns_serve
charon_start router peer
swan_conf router </dev/null # credentials only: dnsseal loads the per-peer connection over VICI
swan_conf peer <<EOF
connections {
	router4 {
		version = 2
		local_addrs = $PEER4
		remote_addrs = $ROUTER4
		# dnsseal offers charon's default proposal: answer it without an INVALID_KE round trip.
		proposals = default, $LAB_IKE_PROPOSAL
		local {
			auth = pubkey
			certs = peer.pem
			id = $(lab_id peer)
		}
		remote {
			auth = pubkey
			id = $(lab_id router)
		}
		children {
			router4 {
				mode = transport
				esp_proposals = $LAB_ESP_PROPOSAL
			}
		}
	}
}
EOF
swan_load router peer
http_serve peer "hello from peer"
http_serve www "hello from www"

dnsseal_start router --mode host --datapath ebpf --wan wan \
	--listen 127.0.0.53:53 --upstream $NS4 --local-id "$(lab_id router)" \
	--channel "partner=peer,identity=%name,esp=$LAB_ESP_PROPOSAL" \
	--protect 'peer.partner.test=partner' --log-level debug ||
	lab_fail "dnsseal does not start in host mode: $DNSSEAL_ERROR"

capture_start wan net p-router

evaltest <<EOF_EVAL
router::kdig +short +timeout=10 @127.0.0.53 peer.partner.test A::^192\\.0\\.2\\.3$::1
router::swanctl --list-sas::INSTALLED, TRANSPORT, ESP:AES_GCM_16-256::YES
router::swanctl --list-sas::remote 'peer\\.partner\\.test'::YES
router::curl -sS -m 10 http://$PEER4/::hello from peer::YES
router::nstat -az TcpRetransSegs::^TcpRetransSegs +0 ::YES
router::echo marked >/dev/udp/$PEER4/5000 && echo sent::sent::YES
# ICMP from a raw socket has no cgroup hook to mark it: the guard must drop it (fail closed).
router::ping -c 2 -W 3 $PEER4; echo done::done::YES
router::kdig +short +timeout=10 @127.0.0.53 www.public.test A::^192\\.0\\.2\\.4$::1
router::curl -sS -m 10 http://$WWW4/::hello from www::YES
router::$LAB_DNSSEAL list --json --control $LAB_TMP/router/dnsseal.sock::192\\.0\\.2\\.3::YES
peer::swanctl --list-sas::INSTALLED, TRANSPORT::YES
wan::tcpdump::IP $ROUTER4 > $PEER4: ESP\\(::>=4
wan::tcpdump::IP $PEER4 > $ROUTER4: ESP\\(::>=4
wan::tcpdump::IP $ROUTER4\\.[0-9]+ > $PEER4\\.80: ::NO
wan::tcpdump::IP $PEER4\\.80 > ::NO
wan::tcpdump::IP $ROUTER4 > $PEER4: ICMP::NO
wan::tcpdump::IP $ROUTER4\.[0-9]+ > $PEER4\.5000: ::NO
wan::tcpdump::IP $ROUTER4\\.[0-9]+ > $WWW4\\.80: Flags \\[S\\]::1
wan::tcpdump::IP $ROUTER4 > $WWW4: ESP\\(::NO
EOF_EVAL
