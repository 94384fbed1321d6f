# A long-running probe flow: one ping every 0.5 s from a lab host, its replies logged with the
# phases of the scenario between them, so assertions can count replies per phase.
#
#   flow_start HOST DEST [PING_ARGS…]  ping DEST from HOST in the background ($LAB_FLOW, default
#                                      $LAB_OUT/flow.log); waits for nothing
#   flow_phase NAME                    a phase starts now (a line "phase NAME" in the log)
#   flow_replies PHASE                 the replies logged since the last "phase PHASE"
#   flow_wait PHASE N SECONDS          until N replies came since PHASE; status 1 (and a log
#                                      line) when they did not in SECONDS
#   flow_stop                          SIGINT the ping and wait until it has exited (its
#                                      summary written)
#
# For evaltest lines (they run in `bash -c`, where these functions do not exist), two commands
# in $LAB_TMP/bin:
#   flow-between A [B]                 the log from "phase A" up to "phase B" (or to the end)
#   flow-gaps                          "gaps N": how often the echo sequence skips a number
#   flow-lost [PHASE]                  "lost N of M": requests without a reply between the first
#                                      and the last reply since PHASE (default: the whole flow)

LAB_FLOW=${LAB_FLOW:-$LAB_OUT/flow.log}
LAB_FLOW_PID=

cat >"$LAB_TMP/bin/flow-between" <<EOF
#!/bin/sh
if [ -n "\${2:-}" ]; then
	exec sed -n "/^phase \$1\\\$/,/^phase \$2\\\$/p" "$LAB_FLOW"
fi
exec sed -n "/^phase \$1\\\$/,\\\$p" "$LAB_FLOW"
EOF
cat >"$LAB_TMP/bin/flow-gaps" <<EOF
#!/bin/sh
sed -n 's/.*seq=\([0-9]*\).*/\1/p' "$LAB_FLOW" |
	awk 'NR > 1 && \$1 != prev + 1 { gaps++ } { prev = \$1 } END { print "gaps", gaps + 0 }'
EOF
{
	printf '#!/bin/sh\nflow=%s\n' "$LAB_FLOW"
	cat <<'SCRIPT'
# flow-lost [PHASE]: "lost N of M", see lib/flow.sh
if [ -n "${1:-}" ]; then sed -n "/^phase $1\$/,\$p" "$flow"; else cat "$flow"; fi | sed -n 's/.*seq=\([0-9]*\).*/\1/p' | sort -nu |
	awk 'NR == 1 { lo = $1 } { hi = $1; n++ } END { print "lost", (n ? hi - lo + 1 - n : 0), "of", (n ? hi - lo + 1 : 0) }'
SCRIPT
} >"$LAB_TMP/bin/flow-lost"
chmod +x "$LAB_TMP/bin/flow-between" "$LAB_TMP/bin/flow-gaps" "$LAB_TMP/bin/flow-lost"

flow_start() {
	local host=$1 dest=$2
	shift 2
	[ -z "$LAB_FLOW_PID" ] || lab_fail "flow_start: a flow is already running (pid $LAB_FLOW_PID)"
	# Not through on(): `ip netns exec` execs ping, so $! is ping itself (flow_stop signals it).
	ip netns exec "$host" "$LAB_TMP/bin/ping" -i 0.5 "$@" "$dest" >>"$LAB_FLOW" 2>&1 &
	LAB_FLOW_PID=$!
	LAB_PIDS+=($!)
	lab_log "flow: $host -> $dest (pid $LAB_FLOW_PID, log $LAB_FLOW)"
}

flow_phase() {
	echo "phase $1" >>"$LAB_FLOW"
	lab_log "phase $1"
}

flow_replies() {
	sed -n "/^phase $1\$/,\$p" "$LAB_FLOW" | grep -c 'bytes from'
}

_flow_has() { [ "$(flow_replies "$1")" -ge "$2" ]; }

flow_wait() {
	local phase=$1 n=$2 limit=$3 start=$SECONDS
	if poll_until "$limit" _flow_has "$phase" "$n"; then
		lab_log "flow: $n replies in phase $phase after $((SECONDS - start))s"
		return 0
	fi
	lab_log "flow: only $(flow_replies "$phase") of $n replies in phase $phase after ${limit}s"
	return 1
}

flow_stop() {
	[ -n "$LAB_FLOW_PID" ] || return 0
	lab_stop "$LAB_FLOW_PID" INT "the flow's ping"
	LAB_FLOW_PID=
}
