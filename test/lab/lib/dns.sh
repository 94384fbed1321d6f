# The authoritative DNS server for *.test, in namespace "ns" (192.0.2.53, 2001:db8::53).
#
#   dns_serve        start knotd with the zones below and wait until it answers
#   dns_ask Q TYPE   kdig from the client through its resolver (the router, 10.0.1.1)
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
	wait_until 30 "knotd in ns" on ns kdig +short +timeout=1 +retry=0 @$NS4 www.public.test A
	lab_log "dns: knotd in ns serving saas.test, public.test, partner.test"
}

dns_ask() {
	on client kdig +short +timeout=3 +retry=1 @$ROUTER_LAN4 "$1" "${2:-A}"
}
