# Packet captures, written straight to the results share as $LAB_OUT/HOST-IFACE.pcap.
#
#   capture_start HOST IFACE [FILTER…]   start tcpdump and wait until it listens
#   capture_stop                         stop every capture (evaltest does this itself)
#   capture_files HOST                   the pcap files taken on HOST
#
# Snap length 256: headers are what the assertions look at.

LAB_CAPTURES=()

capture_start() {
	local host=$1 dev=$2 file err
	shift 2
	file=$LAB_OUT/$host-$dev.pcap
	err=$LAB_TMP/tcpdump-$host-$dev.err
	on "$host" tcpdump -i "$dev" -n -U -s 256 -Z root -w "$file" "$@" 2>"$err" &
	LAB_CAPTURES+=("$!:$host:$file")
	LAB_PIDS+=($!)
	wait_until 20 "tcpdump on $host:$dev" grep -q 'listening on' "$err"
}

capture_stop() {
	local c pid
	for c in "${LAB_CAPTURES[@]}"; do
		pid=${c%%:*}
		kill -INT "$pid" 2>/dev/null
	done
	for c in "${LAB_CAPTURES[@]}"; do
		pid=${c%%:*}
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
