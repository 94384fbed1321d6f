#!/bin/bash
# identity-mismatch: the peer at peer.partner.test's address presents a valid certificate for
# another name (other.partner.test, same CA). The router requires peer.partner.test: no SA
# comes up, and the marked traffic — held by the trap policy — is dropped, never sent clear.
# (Without dnsseal: the XFRM trap is what fails closed here; the guard's drop counters are
# dnsseal's part, issue #4 lab item 4.)
. "$LAB_DIR/lib/lab.sh"

MARK=0x43

topo_up
charon_start router peer

swan_conf router <<EOF
connections {
	peer4 {
		version = 2
		local_addrs = $ROUTER4
		remote_addrs = $PEER4
		proposals = $LAB_IKE_PROPOSAL
		keyingtries = 1
		local {
			auth = pubkey
			certs = router.pem
			id = $(lab_id router)
		}
		remote {
			auth = pubkey
			id = $(lab_id peer)
		}
		children {
			peer4 {
				mode = transport
				esp_proposals = $LAB_ESP_PROPOSAL
				mark_in = $MARK
				mark_out = $MARK
				set_mark_in = $MARK
				start_action = trap
			}
		}
	}
}
EOF
# The impostor claims peer.partner.test, so it answers the router's IDr, but its certificate
# does not contain that name: charon then authenticates it as the certificate's subject
# (other.partner.test), and the router's identity check must reject it.
LAB_CERT=impostor swan_conf peer <<EOF
connections {
	router4 {
		version = 2
		local_addrs = $PEER4
		remote_addrs = $ROUTER4
		proposals = $LAB_IKE_PROPOSAL
		local {
			auth = pubkey
			certs = impostor.pem
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
lab_log "configurations loaded"

on router nft -f - <<EOF || lab_fail "nft rules on the router"
table inet lab {
	chain host_out {
		type route hook output priority mangle; policy accept;
		ip daddr $PEER4 meta l4proto tcp meta mark set $MARK
		ip daddr $PEER4 icmp type echo-request meta mark set $MARK
	}
}
EOF
http_serve peer "hello from the impostor"
capture_start wan net p-router

evaltest <<EOF_EVAL
# An explicit initiate fails; so does the trap triggered by traffic (ping may see EREMOTE,
# "Object is remote", while the kernel holds the acquire).
router::swanctl --initiate --child peer4 --timeout 30; echo "rc=\$?"::^rc=0::NO
router::ping -c 3 -W 3 $PEER4; true::bytes from::NO
router::curl -sS -m 8 http://$PEER4/; true::hello from the impostor::NO
# Why: the router's identity check on the impostor's certificate.
router::cat $LAB_OUT/charon-router.log::received end entity cert ".*CN=other\.partner\.test"::YES
router::cat $LAB_OUT/charon-router.log::no trusted (ECDSA|RSA) public key found for 'peer\.partner\.test'|constraint check failed: identity 'peer\.partner\.test' required::YES
router::cat $LAB_OUT/charon-router.log::authentication of .*other\.partner\.test.* successful::NO
router::swanctl --list-sas::INSTALLED::NO
peer::swanctl --list-sas::INSTALLED::NO
router::swanctl --list-pols --trap::^peer4/peer4, TRANSPORT::YES
# The wire: IKE was tried, no ESP, nothing marked in clear.
wan::tcpdump::IP $ROUTER4\.(500|4500) > $PEER4\.(500|4500): ::YES
wan::tcpdump::: ESP\(::NO
wan::tcpdump::IP $ROUTER4 > $PEER4: ICMP::NO
wan::tcpdump::IP $ROUTER4\.[0-9]+ > $PEER4\.80: ::NO
EOF_EVAL
