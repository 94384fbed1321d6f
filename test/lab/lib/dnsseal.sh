# Running the dnsseal daemon inside a lab host.
#
#   dnsseal_built                 true when $LAB_DNSSEAL (default <repo>/dist/dnsseal) is executable
#   dnsseal_start HOST ARGS…      `dnsseal run ARGS…` in HOST; waits for its control socket;
#                                 returns non-zero (reason in DNSSEAL_ERROR) when it does not come up
#   dnsseal_ctl HOST ARGS…        a dnsseal command (list, status, down…) against HOST's daemon
#   dnsseal_kill HOST [SIGNAL]    signal the daemon (default TERM) and wait for it to exit
#
# The daemon enters HOST's network namespace with nsenter, not `ip netns exec` (which remounts
# /sys and so would hide the guest's /sys/fs/bpf and /sys/fs/cgroup: pins must survive a
# restart, and host mode attaches to cgroup v2), and gets its own mount namespace in which /run
# is a fresh tmpfs and /run/charon.vici points at HOST's lab charon (if one runs), so the
# daemon's default VICI socket reaches it. NB: host mode attaches to the guest's root cgroup,
# so its hooks see the sockets of every lab host.
# Its control socket is $LAB_TMP/HOST/dnsseal.sock (passed as --control); its log is
# $LAB_OUT/dnsseal-HOST.log (appended across restarts).

dnsseal_built() { [ -x "$LAB_DNSSEAL" ]; }

dnsseal_start() {
	local host=$1 dir=$LAB_TMP/$1
	shift
	mkdir -p "$dir"
	rm -f "$dir/dnsseal.sock"
	echo "---- $(cut -d' ' -f1 /proc/uptime): dnsseal run $*" >>"$LAB_OUT/dnsseal-$host.log"
	nsenter --net="/run/netns/$host" unshare -m --propagation private sh -c '
		set -e
		mount -t tmpfs tmpfs /run
		ln -s "$1/charon.vici" /run/charon.vici
		shift
		exec "$@"' sh "$dir" "$LAB_DNSSEAL" run --control "$dir/dnsseal.sock" "$@" \
		>>"$LAB_OUT/dnsseal-$host.log" 2>&1 &
	echo $! >"$dir/dnsseal.pid"
	LAB_PIDS+=($!)
	DNSSEAL_ERROR=
	poll_until 90 _dnsseal_ready "$host"
	case $? in
	0)
		lab_log "dnsseal: $host up (pid $(cat "$dir/dnsseal.pid"))"
		return 0
		;;
	2) DNSSEAL_ERROR="exited during start-up: $(_dnsseal_last_error "$host")" ;;
	*) DNSSEAL_ERROR="no control socket after 90 s: $(_dnsseal_last_error "$host")" ;;
	esac
	lab_log "dnsseal: $host: $DNSSEAL_ERROR"
	return 1
}

# _dnsseal_last_error HOST — the daemon's last error line (else its last line), for a reason.
_dnsseal_last_error() {
	local line
	line=$(grep -E 'level=(error|fatal)|"level":"(error|fatal)"' "$LAB_OUT/dnsseal-$1.log" | tail -n1)
	[ -n "$line" ] || line=$(tail -n1 "$LAB_OUT/dnsseal-$1.log")
	echo "$line"
}

# _dnsseal_ready HOST — 0: control socket present; 2: the daemon has exited; 1: not yet.
_dnsseal_ready() {
	local pid
	pid=$(cat "$LAB_TMP/$1/dnsseal.pid")
	if [ ! -e "/proc/$pid" ] || [ "$(cut -d' ' -f3 "/proc/$pid/stat")" = Z ]; then
		return 2
	fi
	test -S "$LAB_TMP/$1/dnsseal.sock"
}

dnsseal_ctl() {
	local host=$1
	shift
	on "$host" "$LAB_DNSSEAL" "$@" --control "$LAB_TMP/$host/dnsseal.sock"
}

dnsseal_kill() {
	local host=$1 sig=${2:-TERM} pid
	pid=$(cat "$LAB_TMP/$host/dnsseal.pid")
	kill "-$sig" "$pid" 2>/dev/null
	wait_until 30 "dnsseal in $host to exit" \
		sh -c "[ ! -e /proc/$pid ] || [ \"\$(cut -d' ' -f3 /proc/$pid/stat)\" = Z ]"
}
