# Libreswan's pluto as the other side of a dnsseal channel (scenarios libreswan-hub,
# libreswan-peer). Source it after lib/lab.sh.
#
# Debian's `libreswan` package conflicts with strongswan-libcharon and strongswan-starter, so it
# is never installed: test/lab/libreswan.mk downloads the package file and unpacks it with
# `dpkg -x` into build/libreswan/root (make lab does it); the guest sees the host's root, so
# it runs pluto, addconn and whack from there. Its library dependencies (libnss3-tools, libevent,
# libunbound…) are in the Makefile's APT_LAB.
#
#   libreswan_require             SKIP the scenario (pending, with the reason) unless unpacked
#   libreswan_conn NAME KEY=VALUE…  one `conn` section (stdout), see below
#   pluto_start HOST              HOST's NSS database (a copy of pki/nss-HOST: the lab CA, HOST's
#                                 certificate and key; make-nss.sh), ipsec.conf from the `conn`
#                                 sections on stdin; pluto in HOST, waits for its control
#                                 socket, adds the connections
#   pluto_whack HOST ARGS…        whack against HOST's pluto
#   libreswan_hub_setup           gateway_setup with pluto on the hub (below)
#   libreswan_peer_setup          host_peer_setup with pluto on the peer (below)
#   no_clear_between NAME A B     evaltest lines: no clear TCP, UDP or echo between A and B
#   the command `lswan ARGS…`     whack inside `on HOST …` (for evaltest: `HOST::lswan --trafficstatus`)
#
# Per host: $LAB_TMP/HOST/ (ipsec.conf, ipsec.secrets, nss/, ipsec.d/, run/pluto.ctl);
# pluto's log is $LAB_OUT/pluto-HOST.log (plutodebug none; a scenario may set LAB_PLUTODEBUG=base
# before pluto_start for the debug lines, ~0.6 MB a boot).

LAB_LIBRESWAN=${LAB_LIBRESWAN:-$LAB_REPO/build/libreswan/root}
LIBRESWAN_BIN=$LAB_LIBRESWAN/usr/libexec/ipsec

libreswan_require() {
	[ -x "$LIBRESWAN_BIN/pluto" ] ||
		lab_skip "pending: $LIBRESWAN_BIN/pluto is not unpacked (make libreswan; make lab does it)"
	[ -d "$LAB_PKI/nss-hub" ] ||
		lab_skip "pending: no NSS databases in pki/ (make-nss.sh needs libnss3-tools and openssl: make deps)"
}

# The whack wrapper: `lswan` inside `on HOST …` talks to HOST's pluto.
cat >"$LAB_TMP/bin/lswan" <<WRAPPER
#!/bin/sh
exec "$LIBRESWAN_BIN/whack" --ctlsocket "/tmp/lab/\${LAB_HOST:?lswan: LAB_HOST not set}/run/pluto.ctl" "\$@"
WRAPPER
chmod +x "$LAB_TMP/bin/lswan"

# libreswan_conn NAME KEY=VALUE… — a `conn` section: left is this host.
#   left=ADDR right=ADDR       IKE addresses (right: default %any)
#   me=PKI them=PKI            this side's and the other side's pki names; the IDs are the FQDNs
#                              (@name, the certificates' subjectAltName) — strongSwan sends an
#                              FQDN ID for a DNS name, Libreswan would send the subject DN
#   type=tunnel|transport      (tunnel)
#   leftsubnet= rightsubnet=   tunnel mode selectors (one each: Libreswan 4 puts one subnet pair
#                              in a CHILD_SA, see test/lab/README.md)
#   ike= esp=                  proposals: AES-GCM-256 with the SHA-256 PRF and curve25519 or
#                              P-256 (dnsseal offers charon's `default` proposal, whose key
#                              exchange guess is curve25519: accepting it saves the INVALID_KE
#                              round trip); ESP AES-GCM-256
#   pfs=                       (no: dnsseal's default ESP proposal has no key exchange, so the
#                              CHILD_SA rekeys it starts carry none; the lab's SAs do not rekey)
#   auto=add|start             (add: answer only)
#   other KEY=VALUE            passed as they are (narrowing=yes, salifetime=…)
libreswan_conn() {
	local name=$1 kv key left= right=%any me= them= type=tunnel
	local ike=aes_gcm256-sha2_256-dh31+dh19 esp=aes_gcm256 pfs=no auto=add extra=()
	shift
	for kv in "$@"; do
		key=${kv%%=*}
		case $key in
		left) left=${kv#*=} ;;
		right) right=${kv#*=} ;;
		me) me=${kv#*=} ;;
		them) them=${kv#*=} ;;
		type) type=${kv#*=} ;;
		ike) ike=${kv#*=} ;;
		esp) esp=${kv#*=} ;;
		pfs) pfs=${kv#*=} ;;
		auto) auto=${kv#*=} ;;
		*)
			[ "$key" != "$kv" ] || lab_fail "libreswan_conn $name: not KEY=VALUE: '$kv'"
			extra+=("$kv")
			;;
		esac
	done
	[ -n "$left" ] && [ -n "$me" ] && [ -n "$them" ] ||
		lab_fail "libreswan_conn $name: left=, me= and them= are required"
	cat <<EOF
conn $name
	ikev2=yes
	type=$type
	left=$left
	right=$right
	leftid=@$(lab_id "$me")
	rightid=@$(lab_id "$them")
	leftcert=$me
	leftsendcert=always
	authby=ecdsa
	ike=$ike
	esp=$esp
	pfs=$pfs
	leftupdown=%disabled
	auto=$auto
EOF
	for kv in "${extra[@]}"; do printf '\t%s\n' "$kv"; done
	echo
}

# _pluto_nss HOST — a copy of HOST's NSS database (pki/nss-HOST, made on the host by
# make-nss.sh: the lab CA and HOST's certificate and key); pluto opens it read-write.
_pluto_nss() {
	rm -rf "$LAB_TMP/$1/nss"
	cp -r "$LAB_PKI/nss-$1" "$LAB_TMP/$1/nss" || lab_fail "no NSS database $LAB_PKI/nss-$1 (make-nss.sh)"
}

# _pluto_ready HOST — 0: control socket there; $LAB_GIVE_UP: pluto has exited; 1: not yet.
_pluto_ready() {
	lab_gone "$(cat "$LAB_TMP/$1/pluto.pid")" && return $LAB_GIVE_UP
	test -S "$LAB_TMP/$1/run/pluto.ctl"
}

pluto_start() {
	local host=$1 dir=$LAB_TMP/$1
	[ -f "$LAB_PKI/$host.pem" ] || lab_fail "no certificate $LAB_PKI/$host.pem (was make-pki.sh run?)"
	mkdir -p "$dir/run" "$dir/ipsec.d"
	_pluto_nss "$host"
	: >"$dir/ipsec.secrets"
	{
		printf 'config setup\n'
		printf '\t%s\n' "logfile=$LAB_OUT/pluto-$host.log" logappend=yes "plutodebug=${LAB_PLUTODEBUG:-none}" dnssec-enable=no \
			"nssdir=$dir/nss" "ipsecdir=$dir/ipsec.d" "secretsfile=$dir/ipsec.secrets" "dumpdir=$dir/run"
		echo
		cat
	} >"$dir/ipsec.conf"
	rm -f "$dir/run/pluto.ctl"
	# Own mount namespace with a private /run, as for charon; pluto insists on finding addconn at
	# its built-in path /usr/libexec/ipsec, so the unpacked /usr/libexec is mounted there.
	ip netns exec "$host" unshare -m --propagation private sh -c '
		mount -t tmpfs tmpfs /run && mount --bind "$0" /usr/libexec && exec "$@"' "$LAB_LIBRESWAN/usr/libexec" \
		"$LIBRESWAN_BIN/pluto" --nofork --config "$dir/ipsec.conf" --rundir "$dir/run" \
		--nssdir "$dir/nss" --secretsfile "$dir/ipsec.secrets" --ipsecdir "$dir/ipsec.d" \
		--logfile "$LAB_OUT/pluto-$host.log" --no-dnssec >"$LAB_OUT/pluto-$host.out" 2>&1 &
	echo $! >"$dir/pluto.pid"
	LAB_PIDS+=($!)
	poll_until 60 _pluto_ready "$host" ||
		lab_fail "pluto in $host did not open its control socket: $(tail -n3 "$LAB_OUT/pluto-$host.out" "$LAB_OUT/pluto-$host.log" 2>/dev/null | tr '\n' ' ')"
	wait_until 60 "pluto in $host to answer whack" pluto_whack "$host" --status
	on "$host" "$LIBRESWAN_BIN/addconn" --config "$dir/ipsec.conf" --ctlsocket "$dir/run/pluto.ctl" \
		--autoall >"$dir/addconn.out" 2>&1 || {
		cat "$dir/addconn.out"
		lab_fail "addconn on $host failed"
	}
	lab_log "pluto: $host up (pid $(cat "$dir/pluto.pid")), connections added"
}

pluto_whack() {
	local host=$1
	shift
	on "$host" lswan "$@"
}

# libreswan_hub_setup — gateway_setup with Libreswan on the hub: topology, knotd, charon on the
# router (credentials only: dnsseal loads the tunnel over VICI), pluto on the hub answering
# router.lab.test for LAN4 <-> 0.0.0.0/0 (one subnet pair: of dnsseal's TSi LAN4+LAN6 /
# TSr 0.0.0.0/0+::/0, pluto picks the IPv4 pair), httpd on srv and www.
libreswan_hub_setup() {
	topo_up
	dns_serve
	charon_start router
	swan_conf router </dev/null
	swan_load router
	libreswan_conn router left=$HUB4 me=hub them=router leftsubnet=0.0.0.0/0 rightsubnet=$LAN4 |
		pluto_start hub
	http_serve srv "hello from srv"
	http_serve www "hello from www"
}

# libreswan_peer_setup — host_peer_setup with Libreswan on the peer: pluto answers the router's
# per-peer connections (transport mode) over IPv4 and IPv6.
libreswan_peer_setup() {
	topo_up
	dns_serve
	charon_start router
	swan_conf router </dev/null
	swan_load router
	{
		libreswan_conn router4 left=$PEER4 right=$ROUTER4 me=peer them=router type=transport
		libreswan_conn router6 left=$PEER6 right=$ROUTER6 me=peer them=router type=transport
	} | pluto_start peer
	http_serve peer "hello from peer"
	http_serve www "hello from www"
}

# no_clear_between NAME A B — evaltest lines: capture NAME holds not one TCP, UDP or ICMP echo
# packet between A and B in either direction (IKE shows as isakmp, ESP as ESP, IPv6 neighbour
# discovery as ICMP6 neighbor …: none of them matches).
no_clear_between() {
	local ip=IP a=${2//./\\.} b=${3//./\\.}
	case $2 in *:*) ip=IP6 ;; esac
	echo "$1::tcpdump::$ip ($a|$b)(\\.[0-9]+)? > ($a|$b)(\\.[0-9]+)?: (Flags|UDP|ICMP echo|ICMP6, echo)::NO"
}
