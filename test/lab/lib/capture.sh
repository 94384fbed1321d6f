# Packet captures, written straight to the results share as $LAB_OUT/NAME.pcap.
#
#   capture_start NAME HOST IFACE [FILTER…]  tcpdump on HOST's IFACE; waits until it listens.
#                                            NAME is what assertions use: NAME::tcpdump::…
#   capture_stop                             stop every capture (evaltest does this itself)
#   capture_files NAME                       the pcap files taken under NAME
#
# The router's WAN side is captured on the wire, at the bridge port "p-router" in "net"
# (conventionally NAME "wan"): a capture on the router's own wan device would also show the
# packets XFRM decrypted there, re-injected on that device, which never crossed the wire.
# Snap length 256: headers are what the assertions look at.

LAB_CAPTURES=()

capture_start() {
	local name=$1 host=$2 dev=$3 file err
	shift 3
	file=$LAB_OUT/$name.pcap
	err=$LAB_TMP/tcpdump-$name.err
	: >"$err" # exists before the background tcpdump's redirection has run
	# Not through on(): `ip netns exec` execs tcpdump, so $! is tcpdump itself.
	ip netns exec "$host" tcpdump -i "$dev" -n -U -s 256 -Z root -w "$file" "$@" 2>"$err" &
	LAB_CAPTURES+=("$!:$name:$file")
	LAB_PIDS+=($!)
	wait_until 60 "tcpdump on $host:$dev to listen" grep -q 'listening on' "$err"
	lab_log "capture: $name = $host:$dev${*:+ ($*)}"
}

# Each tcpdump first drains what the kernel already holds for it: stop once no capture file has
# grown for 0.3 s (at most 10 s, for a flow that is still running). A tcpdump starved of CPU
# under TCG otherwise loses the last packets of a scenario when SIGINT ends its loop.
_capture_settle() {
	local c rest sizes last='' deadline=$((SECONDS + 10))
	while [ "$SECONDS" -lt "$deadline" ]; do
		sizes=''
		for c in "${LAB_CAPTURES[@]}"; do
			rest=${c#*:}
			sizes+="$(stat -c %s "${rest#*:}" 2>/dev/null || echo 0) "
		done
		[ "$sizes" = "$last" ] && return 0
		last=$sizes
		sleep 0.3
	done
	lab_log "capture: files still growing after 10 s; stopping anyway"
}

capture_stop() {
	local c pid deadline=$((SECONDS + 30))
	[ "${#LAB_CAPTURES[@]}" -gt 0 ] || return 0
	_capture_settle
	for c in "${LAB_CAPTURES[@]}"; do
		kill -INT "${c%%:*}" 2>/dev/null
	done
	for c in "${LAB_CAPTURES[@]}"; do
		pid=${c%%:*}
		while ! lab_gone "$pid"; do
			if [ "$SECONDS" -ge "$deadline" ]; then
				lab_log "capture: tcpdump $pid did not stop on SIGINT; killing it"
				kill -KILL "$pid" 2>/dev/null
				break
			fi
			sleep 0.2
		done
		wait "$pid" 2>/dev/null
	done
}

capture_files() {
	local c rest
	for c in "${LAB_CAPTURES[@]}"; do
		rest=${c#*:}
		[ "${rest%%:*}" = "$1" ] && echo "${rest#*:}"
	done
}
