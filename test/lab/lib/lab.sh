# dnsseal kernel lab — the guest-side library every scenario sources first.
#
#   . "$LAB_DIR/lib/lab.sh"
#
# Environment (set by guest/stage2.sh): LAB_DIR (this directory's parent), LAB_OUT (writable
# results share), LAB_RUN (the host's per-run directory, read-only here: pki/), LAB_REPO,
# LAB_DNSSEAL (path of the daemon binary), LAB_SCENARIO.
# Outcomes: lab_fail / lab_skip write $LAB_OUT/result and exit; evaltest (lib/eval.sh) writes
# PASS or FAIL from the assertions.

set -u
: "${LAB_DIR:?run scenarios through the lab harness (make lab)}" "${LAB_OUT:?}"

LAB_TMP=/tmp/lab
mkdir -p "$LAB_TMP/bin"
# Small tools the host may not have (the Makefile does not install iputils): busybox's.
for _tool in ping ping6 httpd nc; do
	[ -e "$LAB_TMP/bin/$_tool" ] || ln -s "$(command -v busybox)" "$LAB_TMP/bin/$_tool"
done

# No subprocess: under TCG every exec costs ~60-100 ms, and this runs for every line.
lab_log() {
	local up _
	read -r up _ </proc/uptime
	echo "[$up] $*"
}

# lab_fail REASON — the scenario could not reach its assertions: FAIL with the reason.
lab_fail() {
	lab_log "FAIL: $*"
	echo "FAIL $*" >"$LAB_OUT/result"
	exit 1
}

# lab_skip REASON — the scenario cannot run yet (e.g. the daemon is not built): SKIP, never PASS.
lab_skip() {
	lab_log "SKIP: $*"
	echo "SKIP $*" >"$LAB_OUT/result"
	exit 77
}

# on HOST CMD… — run CMD in HOST's network namespace ("lab" = the guest's root namespace).
# LAB_HOST tells the helpers in $LAB_TMP/bin (swanctl) which host they act for.
on() {
	local host=$1
	shift
	if [ "$host" = lab ]; then
		LAB_HOST=$host PATH="$LAB_TMP/bin:$PATH" "$@"
	else
		# nsenter, not `ip netns exec`: that one also unshares the mount namespace and remounts
		# /sys (~0.7 s per call under TCG, against ~0.1 s); no lab command reads the
		# namespace's /sys/class/net (iproute2, tc, tcpdump and bpftool use netlink/ioctl).
		LAB_HOST=$host PATH="$LAB_TMP/bin:$PATH" nsenter --net="/run/netns/$host" "$@"
	fi
}

# poll_until SECONDS CMD… — run CMD every 0.2 s until it succeeds (0), gives up (status
# $LAB_GIVE_UP, 99: "will never succeed", e.g. the process it waits for has exited) or SECONDS of
# wall clock have passed (1), however slowly CMD runs. Any other status is "not yet": grep, [
# and ping use 2 for what is only not-yet here (a file not created yet, an empty count). The
# output of the last try is kept in $LAB_TMP/poll.out (wait_until quotes it on a time-out).
LAB_GIVE_UP=99
poll_until() {
	local deadline=$((SECONDS + $1)) rc
	shift
	while :; do
		"$@" >"$LAB_TMP/poll.out" 2>&1
		rc=$?
		[ $rc -eq 0 ] && return 0
		[ $rc -eq $LAB_GIVE_UP ] && return $LAB_GIVE_UP
		[ "$SECONDS" -lt "$deadline" ] || return 1
		sleep 0.2
	done
}

# wait_until SECONDS DESCRIPTION CMD… — poll_until, failing the scenario when CMD does not
# succeed in time ("timed out after Ns waiting for DESCRIPTION", with CMD's last output) or
# gives up ($LAB_GIVE_UP). Logs how long the wait took, so slow steps show in scenario.log.
# Under TCG on a shared machine anything can take ten times its usual time: be generous.
wait_until() {
	local limit=$1 what=$2 start=$SECONDS rc last
	shift 2
	poll_until "$limit" "$@"
	rc=$?
	if [ $rc -ne 0 ]; then
		last=$(tail -n 3 "$LAB_TMP/poll.out" 2>/dev/null | tr '\n' ' ')
		[ $rc -eq $LAB_GIVE_UP ] && lab_fail "gave up after $((SECONDS - start))s waiting for $what${last:+ (last output: $last)}"
		lab_fail "timed out after ${limit}s waiting for $what${last:+ (last output: $last)}"
	fi
	lab_log "waited $((SECONDS - start))s for $what"
}

# lab_gone PID — true when PID has exited (gone, or a zombie waiting for this shell to reap it).
lab_gone() { [ ! -e "/proc/$1" ] || [ "$(cut -d' ' -f3 "/proc/$1/stat" 2>/dev/null)" = Z ]; }

# lab_stop PID SIGNAL DESCRIPTION — signal PID and wait (60 s) until it has exited.
lab_stop() {
	kill "-$2" "$1" 2>/dev/null
	wait_until 60 "$3 to exit" lab_gone "$1"
	wait "$1" 2>/dev/null
	return 0
}

# Background processes the lab started, stopped (TERM, then KILL) when the scenario exits.
LAB_PIDS=()
lab_bg() {
	"$@" &
	LAB_PIDS+=($!)
}
lab_cleanup() {
	local pid
	for pid in "${LAB_PIDS[@]}"; do kill "$pid" 2>/dev/null; done
}
trap lab_cleanup EXIT

. "$LAB_DIR/lib/topology.sh"
. "$LAB_DIR/lib/charon.sh"
. "$LAB_DIR/lib/capture.sh"
. "$LAB_DIR/lib/services.sh"
. "$LAB_DIR/lib/dns.sh"
. "$LAB_DIR/lib/dnsseal.sh"
. "$LAB_DIR/lib/flow.sh"
. "$LAB_DIR/lib/tunnel.sh"
. "$LAB_DIR/lib/gateway.sh"
. "$LAB_DIR/lib/host.sh"
. "$LAB_DIR/lib/eval.sh"
