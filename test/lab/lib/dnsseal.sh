# Running the dnsseal daemon inside a lab host.
#
#   dnsseal_built                 true when $LAB_DNSSEAL (default <repo>/dist/dnsseal) is executable
#   dnsseal_require [OBJ…]        SKIP the scenario (pending, with the reason) unless the daemon
#                                 and build/OBJ.bpf.o for each OBJ (default: dnsseal) are built
#   dnsseal_start HOST ARGS…      `dnsseal run ARGS…` in HOST; waits until it runs (control
#                                 socket, "dnsseal running") and its DNS listener answers a probe
#                                 (www.public.test, through the upstream); returns non-zero
#                                 (reason in DNSSEAL_ERROR) when it does not come up
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
# The upstream time-out is $LAB_UPSTREAM_TIMEOUT ms (10000; the daemon's default is 2000): the
# upstream is knotd in the same guest, and under TCG on a loaded machine a first answer through
# a freshly started daemon has taken more than 2 s — that measures the machine, not dnsseal.
# ARGS come after it and may override it.

LAB_UPSTREAM_TIMEOUT=${LAB_UPSTREAM_TIMEOUT:-10000}

dnsseal_built() { [ -x "$LAB_DNSSEAL" ]; }

dnsseal_require() {
	local obj
	dnsseal_built || lab_skip "pending: $LAB_DNSSEAL is not built (make build)"
	for obj in "${@:-dnsseal}"; do
		[ -f "$LAB_REPO/build/$obj.bpf.o" ] || lab_skip "pending: build/$obj.bpf.o is not built (make bpf)"
	done
}

dnsseal_start() {
	local host=$1 dir=$LAB_TMP/$1 log=$LAB_OUT/dnsseal-$1.log from listen
	shift
	mkdir -p "$dir"
	rm -f "$dir/dnsseal.sock"
	echo "---- $(cut -d' ' -f1 /proc/uptime): dnsseal run $*" >>"$log"
	from=$(($(wc -l <"$log") + 1))
	nsenter --net="/run/netns/$host" unshare -m --propagation private sh -c '
		set -e
		mount -t tmpfs tmpfs /run
		ln -s "$1/charon.vici" /run/charon.vici
		shift
		exec "$@"' sh "$dir" "$LAB_DNSSEAL" run --control "$dir/dnsseal.sock" \
		--upstream-timeout "$LAB_UPSTREAM_TIMEOUT" "$@" >>"$log" 2>&1 &
	echo $! >"$dir/dnsseal.pid"
	LAB_PIDS+=($!)
	DNSSEAL_ERROR=
	# The daemon's first start under TCG takes ~10 s (a 100 MB executable), more when loaded.
	poll_until 180 _dnsseal_ready "$host" "$from"
	case $? in
	0) ;;
	"$LAB_GIVE_UP")
		DNSSEAL_ERROR="exited during start-up: $(_dnsseal_last_error "$host")"
		lab_log "dnsseal: $host: $DNSSEAL_ERROR"
		return 1
		;;
	*)
		DNSSEAL_ERROR="timed out after 180s waiting for its control socket and \"dnsseal running\": $(_dnsseal_last_error "$host")"
		lab_log "dnsseal: $host: $DNSSEAL_ERROR"
		return 1
		;;
	esac
	# The listener: the first UDP address of the "dnsseal running" line of this start.
	listen=$(tail -n "+$from" "$log" | sed -n 's/.*msg="dnsseal running".* listen="udp:\/\/\([^,"]*\).*/\1/p' | tail -n1)
	if [ -z "$listen" ]; then
		DNSSEAL_ERROR="no udp listener in its \"dnsseal running\" line"
		lab_log "dnsseal: $host: $DNSSEAL_ERROR"
		return 1
	fi
	lab_log "dnsseal: $host running (pid $(cat "$dir/dnsseal.pid")), DNS on $listen"
	# A first answer through the upstream, before any step asserts on one.
	dns_wait_server "$host" "$listen"
	lab_log "dnsseal: $host up"
}

# _dnsseal_last_error HOST — the daemon's last error line (else its last line), for a reason.
_dnsseal_last_error() {
	local line
	line=$(grep -E 'level=(error|fatal)|"level":"(error|fatal)"' "$LAB_OUT/dnsseal-$1.log" | tail -n1)
	[ -n "$line" ] || line=$(tail -n1 "$LAB_OUT/dnsseal-$1.log")
	echo "$line"
}

# _dnsseal_ready HOST FROM — 0: control socket present and "dnsseal running" logged at or after
# line FROM of its log; $LAB_GIVE_UP: the daemon has exited; 1: not yet.
_dnsseal_ready() {
	local pid
	pid=$(cat "$LAB_TMP/$1/dnsseal.pid")
	lab_gone "$pid" && return $LAB_GIVE_UP
	test -S "$LAB_TMP/$1/dnsseal.sock" &&
		tail -n "+$2" "$LAB_OUT/dnsseal-$1.log" | grep -q 'msg="dnsseal running"'
}

dnsseal_ctl() {
	local host=$1
	shift
	on "$host" "$LAB_DNSSEAL" "$@" --control "$LAB_TMP/$host/dnsseal.sock"
}

dnsseal_kill() {
	lab_stop "$(cat "$LAB_TMP/$1/dnsseal.pid")" "${2:-TERM}" "dnsseal in $1"
}
