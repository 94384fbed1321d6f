# One strongSwan charon per namespace, each in its own mount namespace, with its own
# strongswan.conf, VICI socket and swanctl directory (see DESIGN.md, lab notes).
#
#   charon_start HOST…            start charon in each HOST and wait for its VICI socket
#                                 (LAB_CHARON_OPTS: more `charon { }` settings, e.g. keep_alive = 2s;
#                                 LAB_CHARON_OPTS_HOST: for HOST only)
#   swan_conn NAME KEY=VALUE…     one `connections` entry (IKE + one CHILD_SA), see below
#   peer_transport_conn NAME LOCAL REMOTE [CERT]
#                                 the entry for peer.partner.test answering the router's
#                                 per-peer connection (transport mode)
#   swan_conf HOST                HOST's swanctl.conf from the entries on stdin (none:
#                                 credentials only); credentials come from pki/
#   swan_load HOST…               swanctl --load-all for each HOST
#   swan HOST ARGS…               swanctl against HOST's charon (e.g. swan hub --load-all)
#   charon_kill HOST [SIGNAL]     stop HOST's charon (default TERM) and wait for it to go
#
# The per-host directory is $LAB_TMP/HOST/ (strongswan.conf, swanctl/, charon.vici, charon.pid);
# charon's log goes to $LAB_OUT/charon-HOST.log so it comes back to the host even on a timeout.

LAB_CHARON=${LAB_CHARON:-/usr/lib/ipsec/charon}
LAB_PKI=${LAB_RUN:-/nonexistent}/pki
LAB_PLUGINS=/usr/lib/ipsec/plugins

# Algorithms: AES-GCM and ECDSA/ECP via the openssl plugin when it is installed
# (libstrongswan-standard-plugins), else what the base packages have. ESP runs in the kernel.
if [ -e "$LAB_PLUGINS/libstrongswan-openssl.so" ]; then
	LAB_IKE_PROPOSAL=${LAB_IKE_PROPOSAL:-aes256gcm16-prfsha256-ecp256}
else
	LAB_IKE_PROPOSAL=${LAB_IKE_PROPOSAL:-aes256-sha256-x25519}
fi
LAB_ESP_PROPOSAL=${LAB_ESP_PROPOSAL:-aes256gcm16}

# The identity (subjectAltName) in a host's certificate, e.g. $(lab_id hub) = hub.saas.test.
lab_id() { cat "$LAB_PKI/$1.id"; }

# The swanctl wrapper: `swanctl` inside `on HOST …` talks to HOST's charon.
cat >"$LAB_TMP/bin/swanctl" <<'WRAPPER'
#!/bin/sh
dir=/tmp/lab/${LAB_HOST:?swanctl wrapper: LAB_HOST not set}
export STRONGSWAN_CONF="$dir/strongswan.conf" SWANCTL_DIR="$dir/swanctl"
exec /usr/sbin/swanctl "$@" --uri "unix://$dir/charon.vici"
WRAPPER
chmod +x "$LAB_TMP/bin/swanctl"

_charon_conf() {
	local host=$1 dir=$LAB_TMP/$1
	cat >"$dir/strongswan.conf" <<CONF
# Lab charon for $host: only the plugins the lab needs; nothing grabs traffic or routes on
# its own (no kernel-libipsec, bypass-lan, farp, dhcp; no routes, no virtual IPs).
charon {
	load = random nonce aes sha1 sha2 hmac kdf gcm gmp curve25519 openssl pem pkcs1 pkcs8 x509 revocation constraints pubkey kernel-netlink socket-default vici
	install_routes = no
	install_virtual_ip = no
	retransmit_tries = 3
	retransmit_timeout = 2.0
	${LAB_CHARON_OPTS:-}
	$(v=LAB_CHARON_OPTS_$host; echo "${!v:-}")
	filelog {
		lab {
			path = $LAB_OUT/charon-$host.log
			time_format = %H:%M:%S
			ike_name = yes
			flush_line = yes
			default = 1
			ike = 2
			knl = 2
			cfg = 2
		}
	}
	syslog {
		daemon {
			default = -1
		}
	}
	plugins {
		vici {
			socket = unix://$dir/charon.vici
		}
		kernel-libipsec { load = no }
		bypass-lan { load = no }
		farp { load = no }
		dhcp { load = no }
	}
}
swanctl {
	load = pem pkcs1 pkcs8 x509 openssl gmp random nonce sha1 sha2 aes
}
CONF
}

# _charon_ready HOST — 0: the VICI socket exists; $LAB_GIVE_UP: charon has exited; 1: not yet.
_charon_ready() {
	local pid
	pid=$(cat "$LAB_TMP/$1/charon.pid")
	lab_gone "$pid" && return $LAB_GIVE_UP
	test -S "$LAB_TMP/$1/charon.vici"
}

charon_start() {
	local host dir
	for host in "$@"; do
		dir=$LAB_TMP/$host
		mkdir -p "$dir"/swanctl/{conf.d,x509,x509ca,private}
		_charon_conf "$host"
		rm -f "$dir/charon.vici"
		# Own mount namespace with a private /run: charon's pid file and anything else it puts
		# under /run stay per host.
		STRONGSWAN_CONF=$dir/strongswan.conf ip netns exec "$host" \
			unshare -m --propagation private sh -c 'mount -t tmpfs tmpfs /run && exec "$0"' \
			"$LAB_CHARON" >"$LAB_OUT/charon-$host.out" 2>&1 &
		echo $! >"$dir/charon.pid"
		LAB_PIDS+=($!)
	done
	for host in "$@"; do
		# A cheap test first (no process start), then one real VICI round trip.
		poll_until 60 _charon_ready "$host" ||
			lab_fail "charon in $host did not open its VICI socket: $(tail -n2 "$LAB_OUT/charon-$host.out" "$LAB_OUT/charon-$host.log" 2>/dev/null | tr '\n' ' ')"
		wait_until 60 "charon in $host to answer on VICI" on "$host" swanctl --stats
		lab_log "charon: $host up (pid $(cat "$LAB_TMP/$host/charon.pid"))"
	done
}

# swan_conn NAME KEY=VALUE… — one `connections` entry (stdout), for swan_conf:
#   local=ADDRS remote=ADDRS   IKE addresses (remote: default %any)
#   me=PKI them=PKI            this side's and the other side's pki names (identities: lab_id)
#   cert=PKI                   the certificate this side presents, when it is not ME's (the
#                              impostor presents its own while claiming peer.partner.test)
#   mode=tunnel|transport      (tunnel); local_ts= remote_ts= for tunnel mode (dynamic)
#   proposals= esp=            IKE ($LAB_IKE_PROPOSAL) and ESP ($LAB_ESP_PROPOSAL) proposals
#   mark=M                     mark_in, mark_out and set_mark_in = M (decrypted packets get the
#                              mark too, so they match the marked inbound policies)
#   start=ACTION               start_action (trap: a matching packet triggers IKE, never clear)
#   ike.KEY=VALUE child.KEY=VALUE  any other setting of the connection or of its CHILD_SA
#                              (e.g. ike.rekey_time=15s child.life_time=12s ike.mobike=yes)
# The CHILD_SA has the connection's name.
swan_conn() {
	local name=$1 kv local_addrs= remote_addrs=%any me= them= cert= mode=tunnel local_ts= remote_ts=
	local proposals=$LAB_IKE_PROPOSAL esp=$LAB_ESP_PROPOSAL mark= start= kv2
	local -a ike_extra=() child_extra=()
	shift
	for kv in "$@"; do
		case $kv in
		local=*) local_addrs=${kv#*=} ;;
		remote=*) remote_addrs=${kv#*=} ;;
		me=*) me=${kv#*=} ;;
		them=*) them=${kv#*=} ;;
		cert=*) cert=${kv#*=} ;;
		mode=*) mode=${kv#*=} ;;
		local_ts=*) local_ts=${kv#*=} ;;
		remote_ts=*) remote_ts=${kv#*=} ;;
		proposals=*) proposals=${kv#*=} ;;
		esp=*) esp=${kv#*=} ;;
		mark=*) mark=${kv#*=} ;;
		start=*) start=${kv#*=} ;;
		ike.*=*) ike_extra+=("${kv#ike.}") ;;
		child.*=*) child_extra+=("${kv#child.}") ;;
		*) lab_fail "swan_conn $name: unknown option '$kv'" ;;
		esac
	done
	[ -n "$local_addrs" ] && [ -n "$me" ] && [ -n "$them" ] ||
		lab_fail "swan_conn $name: local=, me= and them= are required"
	cat <<EOF
	$name {
		version = 2
		local_addrs = $local_addrs
		remote_addrs = $remote_addrs
		proposals = $proposals
$(for kv2 in "${ike_extra[@]}"; do printf '\t\t%s = %s\n' "${kv2%%=*}" "${kv2#*=}"; done)
		local {
			auth = pubkey
			certs = ${cert:-$me}.pem
			id = $(lab_id "$me")
		}
		remote {
			auth = pubkey
			id = $(lab_id "$them")
		}
		children {
			$name {
				mode = $mode
				esp_proposals = $esp
EOF
	[ -z "$local_ts" ] || echo "				local_ts = $local_ts"
	[ -z "$remote_ts" ] || echo "				remote_ts = $remote_ts"
	[ -z "$mark" ] || printf '\t\t\t\t%s = %s\n' mark_in "$mark" mark_out "$mark" set_mark_in "$mark"
	[ -z "$start" ] || echo "				start_action = $start"
	for kv2 in "${child_extra[@]}"; do printf '\t\t\t\t%s = %s\n' "${kv2%%=*}" "${kv2#*=}"; done
	printf '\t\t\t}\n\t\t}\n\t}\n'
}

# peer_transport_conn NAME LOCAL REMOTE [CERT] — the peer's side of a per-peer connection that
# dnsseal loads on the router: IKE from REMOTE (the router) to LOCAL, the peer authenticating
# with CERT (default peer; `impostor` holds a certificate for another name), transport mode.
# dnsseal offers charon's default proposal: answer it without an INVALID_KE round trip.
peer_transport_conn() {
	swan_conn "$1" local="$2" remote="$3" me=peer cert="${4:-peer}" them=router mode=transport \
		proposals="default, $LAB_IKE_PROPOSAL"
}

# swan_conf HOST — HOST's swanctl.conf: the `connections` entries on stdin (swan_conn's output;
# none: credentials only, as when dnsseal loads the connections over VICI), and the credentials
# put in place: the CA, HOST's certificate and key (HOST's pki name; override with LAB_CERT=name)
# and the intermediate CAs of its chain, if it has any.
swan_conf() {
	local host=$1 cert=${LAB_CERT:-$1} dir=$LAB_TMP/$1/swanctl im
	[ -f "$LAB_PKI/$cert.pem" ] || lab_fail "no certificate $LAB_PKI/$cert.pem (was make-pki.sh run?)"
	cp "$LAB_PKI/ca.pem" "$dir/x509ca/ca.pem"
	cp "$LAB_PKI/$cert.pem" "$dir/x509/$cert.pem"
	cp "$LAB_PKI/$cert.key" "$dir/private/$cert.key"
	# Intermediate CAs of a longer chain (make-pki.sh: CERT.im1.pem…), sent along in IKE_AUTH.
	for im in "$LAB_PKI/$cert".im*.pem; do
		[ ! -f "$im" ] || cp "$im" "$dir/x509ca/"
	done
	local entries
	entries=$(cat)
	if [ -n "$entries" ]; then
		printf 'connections {\n%s\n}\n' "$entries"
	fi >"$dir/swanctl.conf"
}

swan() {
	local host=$1
	shift
	on "$host" swanctl "$@"
}

# swan_load HOST… — swanctl --load-all for each HOST; fails the scenario when loading fails.
swan_load() {
	local host
	for host in "$@"; do
		swan "$host" --load-all --noprompt >"$LAB_TMP/$host/load.out" 2>&1 || {
			cat "$LAB_TMP/$host/load.out"
			lab_fail "swanctl --load-all on $host failed"
		}
	done
}

charon_kill() {
	lab_stop "$(cat "$LAB_TMP/$1/charon.pid")" "${2:-TERM}" "charon in $1"
}
