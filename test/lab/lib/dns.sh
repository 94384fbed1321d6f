# The authoritative DNS server for *.test, in namespace "ns" (192.0.2.53, 2001:db8::53).
#
#   dns_serve                  start knotd with the zones below and wait until it answers
#   dns_ask Q TYPE             the answer to Q from the client through its resolver (the
#                              router, 10.0.1.1), once there is one (dns-answer)
#   dns_wait_server HOST ADDR  until the DNS server at ADDR answers www.public.test from HOST:
#                              the probe before any step that asserts on a freshly (re)started
#                              server's answers (its first answer can take seconds under TCG)
#   dns-answer SERVER NAME [TYPE] [SECONDS]
#                              (a command in $LAB_TMP/bin, for `on HOST` and evaltest lines)
#                              kdig +short until the answer is not empty (a time-out or a
#                              SERVFAIL is tried again, every try logged on stderr); prints
#                              it, or fails after SECONDS (default 90) naming what it asked.
#                              One try waits 30 s: longer than the lab daemon's upstream
#                              time-out and its peers' negotiate_timeout
#
# Zones (TTL 60):
#   saas.test     app.saas.test -> 198.51.100.10, 2001:db8:100::10 (behind the hub: protected)
#                 alias.saas.test CNAME app.saas.test
#   public.test   www.public.test -> 192.0.2.4, 2001:db8::4 (plain)
#   partner.test  peer.partner.test -> 192.0.2.3, 2001:db8::3 (IKE peer)

_dns_zone() {
	local zone=$1
	shift
	cat <<EOF
\$ORIGIN $zone.
\$TTL 60
@	SOA	ns.public.test. hostmaster.public.test. 1 3600 600 86400 60
@	NS	ns.public.test.
EOF
	printf '%s\n' "$@"
}

dns_serve() {
	local dir=$LAB_TMP/ns
	mkdir -p "$dir"
	_dns_zone saas.test "app	A	$SRV4" "app	AAAA	$SRV6" "alias	CNAME	app" >"$dir/saas.test.zone"
	_dns_zone public.test "www	A	$WWW4" "www	AAAA	$WWW6" "ns	A	$NS4" "ns	AAAA	$NS6" \
		>"$dir/public.test.zone"
	_dns_zone partner.test "peer	A	$PEER4" "peer	AAAA	$PEER6" >"$dir/partner.test.zone"
	cat >"$dir/knot.conf" <<EOF
server:
    rundir: "$dir"
    listen: [ $NS4@53, $NS6@53 ]
database:
    storage: "$dir"
log:
  - target: stderr
    any: info
template:
  - id: default
    storage: "$dir"
    file: "%s.zone"
    semantic-checks: on
zone:
  - domain: saas.test
  - domain: public.test
  - domain: partner.test
EOF
	ip netns exec ns knotd -c "$dir/knot.conf" >"$LAB_OUT/knotd.log" 2>&1 &
	LAB_PIDS+=($!)
	# knotd binds its port 3-4 s after its start under TCG (14 s while the guest's name did not
	# resolve locally, guest/stage2.sh), more on a loaded machine. The socket first (a kdig
	# sent before it exists waits out its whole time-out), then an answer.
	wait_until 180 "knotd in ns to listen on udp/53" listening ns udp 53
	wait_until 180 "knotd in ns to answer www.public.test" \
		on ns kdig +short +timeout=2 +retry=0 @$NS4 www.public.test A
	lab_log "dns: knotd in ns serving saas.test, public.test, partner.test"
}

dns_ask() {
	on client dns-answer $ROUTER_LAN4 "$1" "${2:-A}"
}

_dns_answers_www() { on "$1" kdig +short +timeout=5 +retry=0 "@$2" www.public.test A | grep -qx "$WWW4"; }

dns_wait_server() {
	wait_until 120 "the DNS server at $2 to answer www.public.test (from $1)" _dns_answers_www "$1" "$2"
}

cat >"$LAB_TMP/bin/dns-answer" <<'EOF'
#!/bin/bash
# dns-answer SERVER NAME [TYPE] [SECONDS] — see lib/dns.sh.
server=$1 name=$2 type=${3:-A} limit=${4:-90}
deadline=$((SECONDS + limit)) try=0
while :; do
	try=$((try + 1))
	out=$(kdig +short +timeout=30 +retry=0 "@$server" "$name" "$type" 2>&1)
	if [ -n "$out" ] && ! grep -q '^;' <<<"$out"; then
		[ $try -eq 1 ] || echo "dns-answer: $name $type from $server answered on try $try" >&2
		echo "$out"
		exit 0
	fi
	echo "dns-answer: $name $type from $server, try $try: ${out:-an empty answer (SERVFAIL?)}" >&2
	if [ $SECONDS -ge $deadline ]; then
		echo "dns-answer: timed out after ${limit}s waiting for an answer to $name $type from $server" >&2
		exit 1
	fi
	sleep 0.5
done
EOF
chmod +x "$LAB_TMP/bin/dns-answer"
