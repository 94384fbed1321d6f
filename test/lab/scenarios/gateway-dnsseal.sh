#!/bin/bash
# gateway-dnsseal (PENDING skeleton): gateway mode with the real daemon — issue #4, lab item 1.
#
# Done here:
#   1. dist/dnsseal runs in the guest (--help, version), on Debian's 6.1 kernel;
#   2. build/dnsseal.bpf.o loads there: every program in it passes the 6.1 verifier;
#   3. the topology, knotd (*.test) and the router's and hub's charons come up, and the hub
#      accepts the router as router.lab.test for a tunnel LAN <-> 0.0.0.0/0, ::/0;
#   4. dnsseal starts in gateway mode on the router (its control socket opens) and answers a
#      query for www.public.test from the client.
# Still to write (then replace the lab_skip at the end with evaltest):
#   - client: resolve app.saas.test through the router, then ICMP, TCP and UDP to it;
#   - wan::tcpdump: ESP $ROUTER4 <-> $HUB4 both ways; `> 198\.51\.100\.` NO (not even the
#     first packet after the answer); www.public.test traffic clear and unmarked;
#   - srv::tcpdump: the client's packets arrive decapsulated;
#   - dnsseal_ctl router list --json shows app.saas.test's addresses on channel saas.
# A missing binary, or a daemon that does not start, is reported as SKIP with the reason
# (pending work, not a regression); a failing check in 1–3 is a FAIL.
. "$LAB_DIR/lib/lab.sh"

dnsseal_built || lab_skip "pending: $LAB_DNSSEAL is not built (make build)"

obj=$LAB_REPO/build/dnsseal.bpf.o
checks="lab::$LAB_DNSSEAL --help::Usage: dnsseal::YES
lab::$LAB_DNSSEAL version::[0-9]+\\.[0-9]+\\.[0-9]+::YES"
if [ -f "$obj" ]; then
	# Load every program of the object (maps created, nothing attached) and count them.
	checks+="
lab::n=\$(bpftool btf dump file $obj | grep -c \"FUNC 'dnsseal_\"); mkdir -p /sys/fs/bpf/lab-load && bpftool prog loadall $obj /sys/fs/bpf/lab-load && m=\$(ls /sys/fs/bpf/lab-load | wc -l) && echo \"loaded \$m of \$n\" && [ \"\$m\" -eq \"\$n\" ] && echo all-loaded::all-loaded::YES"
else
	lab_log "no $obj: the eBPF load check is skipped (make bpf)"
fi
evaltest --continue <<<"$checks"
[ "$LAB_EVAL_FAILED" -eq 0 ] || lab_finish

topo_up
dns_serve
charon_start router hub
swan_conf router </dev/null # credentials only: dnsseal loads the connections over VICI
swan_conf hub <<EOF
connections {
	router {
		version = 2
		local_addrs = $HUB4
		remote_addrs = %any
		proposals = $LAB_IKE_PROPOSAL, default
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

evaltest --continue <<EOF_EVAL
client::kdig +short @$NS4 app.saas.test A::^198\.51\.100\.10$::1
router::swanctl --list-certs::CN=router\.lab\.test::YES
EOF_EVAL
[ "$LAB_EVAL_FAILED" -eq 0 ] || lab_finish

dnsseal_start router --mode gateway --datapath ebpf --lan lan --wan wan \
	--listen $ROUTER_LAN4:53 --upstream $NS4 \
	--channel "saas=tunnel:$HUB4,identity=$(lab_id hub),esp=$LAB_ESP_PROPOSAL" \
	--protect '*.saas.test=saas' --log-level debug ||
	lab_skip "pending: dnsseal does not start in gateway mode here: $DNSSEAL_ERROR"
www=$(dns_ask www.public.test A)
[ "$www" = "$WWW4" ] || lab_skip "pending: dnsseal in gateway mode did not answer www.public.test (got '$www')"

lab_skip "pending: the end-to-end gateway assertions are not written yet ($LAB_EVAL_TOTAL checks held: binary, eBPF load on $(uname -r), topology, DNS, daemon start)"
