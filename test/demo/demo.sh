#!/bin/bash
# dnsseal demo (root): a self-contained gateway in three network namespaces on this machine.
#
#   client (100.64.1.2) ── lan0 ── router: dnsseal gateway, charon ── wan0 ── net: knot, servers
#
# The client resolves through dnsseal on the router. secure.demo.test is protected (channel
# `hub`, a tunnel to 192.0.2.1), www.demo.test is not. The demo shows both names resolving,
# `dnsseal list`, counters moving (`dnsseal status`, the metrics endpoint), the leak guard
# dropping clear packets to the protected address (this kernel has no ESP, so there is no SA:
# nothing may leave in clear) while a tcpdump on the WAN veth sees none, and the unprotected
# name's traffic passing in clear. Everything stays inside the namespaces (100.64.0.0/10 and
# documentation addresses only); everything is removed on exit, failure or Ctrl-C.
#
# Usage: test/demo/demo.sh [--yes]     (--yes, or no terminal: no pauses between steps)
# Env:   DNSSEAL=path (default dist/dnsseal), DEMO_PREFIX (namespace prefix, default dsdemo-)
# Lines starting with "DEMO:" are the results (test/demo/demo.test.ts reads them).
set -u
set -o pipefail

REPO=$(cd "$(dirname "$0")/../.." && pwd)
DNSSEAL=${DNSSEAL:-$REPO/dist/dnsseal}
P=${DEMO_PREFIX:-dsdemo-}
C=${P}client R=${P}router N=${P}net
PIN_ROOT=/sys/fs/bpf/dnsseal
PROT=secure.demo.test PROT4=203.0.113.10
OPEN=www.demo.test OPEN4=203.0.113.20
HUB4=192.0.2.1
CLIENT4=100.64.1.2 LAN4=100.64.1.1 WAN4=100.64.2.1 NET4=100.64.2.2
PAUSE=1
[ "${1:-}" = --yes ] || [ ! -t 0 ] && PAUSE=0
DIR=
FAILED=0

if [ -t 1 ]; then B=$'\033[1m' E=$'\033[0m'; else B= E=; fi
say() { printf '\n%s==> %s%s\n' "$B" "$*" "$E"; }
result() { echo "DEMO: $*"; }
fail() {
	echo "DEMO: FAIL $*" >&2
	FAILED=1
	exit 1
}
pause() { [ "$PAUSE" = 1 ] && read -r -p '    (Enter for the next step) ' _ </dev/tty; true; }
show() { echo "\$ $*" | sed "s#$DIR#\$DEMO#g; s#$DNSSEAL#dnsseal#g; s#^\\$ in_ns #\$ ip netns exec #" >&2; }
run() { # show a command (on stderr, so pipes and captures see only its output), then run it
	show "$@"
	"$@"
}
in_ns() { ip netns exec "$@"; }
ctl() { "$DNSSEAL" "$@" --control "$DIR/control.sock"; }

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	say "cleanup"
	if [ -n "$DIR" ]; then
		[ -f "$DIR/tcpdump.pid" ] && kill "$(cat "$DIR/tcpdump.pid")" 2>/dev/null
		if [ -f "$DIR/dnsseal.pid" ] && kill -0 "$(cat "$DIR/dnsseal.pid")" 2>/dev/null; then
			# `dnsseal down` asks the running daemon to stop and remove its kernel state
			if ! ctl down >"$DIR/down.out" 2>&1; then
				echo "    dnsseal down (daemon) failed: $(cat "$DIR/down.out"); stopping it with SIGTERM"
				result "down-via-daemon failed: $(tr '\n' ' ' <"$DIR/down.out")"
			fi
			kill -TERM "$(cat "$DIR/dnsseal.pid")" 2>/dev/null
			for _ in $(seq 50); do kill -0 "$(cat "$DIR/dnsseal.pid")" 2>/dev/null || break; sleep 0.1; done
			kill -KILL "$(cat "$DIR/dnsseal.pid")" 2>/dev/null
		fi
		# with no daemon, `dnsseal down` detaches the programs and removes the pinned maps —
		# only if they are still the ones this demo's daemon made (same pin inode): the pin
		# root is machine-wide, and another dnsseal may have started since
		if [ -x "$DNSSEAL" ] && [ -f "$DIR/pins.inode" ] && [ "$(stat -c %i "$PIN_ROOT/maps/dnsseal_dests4" 2>/dev/null)" = "$(cat "$DIR/pins.inode")" ]; then
			"$DNSSEAL" down --control "$DIR/control.sock" 2>&1 | sed 's/^/    /'
		elif [ -e "$PIN_ROOT" ]; then
			echo "    $PIN_ROOT is not this demo's (another dnsseal made it): left alone"
		fi
		for f in charon knot; do
			[ -f "$DIR/$f.pid" ] && kill "$(cat "$DIR/$f.pid")" 2>/dev/null
		done
		sleep 0.2
	fi
	# Everything started in the demo's namespaces (knotd, charon, tcpdump, …) goes with them:
	# a recorded $! can be a subshell, so kill by namespace, not by pid file.
	local ns_pids
	ns_pids=$(for ns in "$C" "$R" "$N"; do ip netns pids "$ns" 2>/dev/null; done)
	if [ -n "$ns_pids" ]; then
		kill $ns_pids 2>/dev/null
		for _ in $(seq 30); do kill -0 $ns_pids 2>/dev/null || break; sleep 0.1; done
		kill -KILL $ns_pids 2>/dev/null
	fi
	local left_procs=0
	for pid in $ns_pids; do kill -0 "$pid" 2>/dev/null && left_procs=$((left_procs + 1)); done
	for ns in "$C" "$R" "$N"; do ip netns del "$ns" 2>/dev/null; done
	[ -n "$DIR" ] && rm -rf "$DIR"
	local left_ns left_pins=0
	left_ns=$(ip netns list | grep -c "^$P" || true)
	[ -d "$PIN_ROOT" ] && left_pins=$(find "$PIN_ROOT" -mindepth 1 2>/dev/null | wc -l)
	result "cleanup netns-left=$left_ns pins-left=$left_pins procs-left=$left_procs"
	[ "$FAILED" = 0 ] && [ "$rc" = 0 ] && result "done" || result "exit $rc"
	exit "$rc"
}

# ---- preflight (nothing created yet) ----
[ "$(id -u)" = 0 ] || { echo "demo: needs root (network namespaces, eBPF, tc)" >&2; exit 2; }
for b in ip nsenter unshare knotd tcpdump dig ping curl /usr/lib/ipsec/charon; do
	command -v "$b" >/dev/null || [ -x "$b" ] || { echo "demo: missing $b (make deps)" >&2; exit 2; }
done
[ -x "$DNSSEAL" ] || { echo "demo: $DNSSEAL is not built (make build)" >&2; exit 2; }
if [ -e "$PIN_ROOT" ]; then
	echo "demo: $PIN_ROOT exists: a dnsseal runs on this machine (or a previous run left state; \`dnsseal down\` removes it). The demo uses the same pin root and will not touch it." >&2
	exit 2
fi
ip netns list | grep -q "^$P" && { echo "demo: namespaces ${P}* exist already (another demo running?)" >&2; exit 2; }

trap cleanup EXIT
trap 'echo; echo "demo: interrupted"; exit 130' INT TERM
DIR=$(mktemp -d /tmp/dnsseal-demo.XXXXXX)

# ---- topology ----
say "1. topology: $C — $R — $N (veth, 100.64.0.0/10; servers on documentation addresses)"
for ns in "$C" "$R" "$N"; do ip netns add "$ns" || fail "ip netns add $ns"; done
ip link add lan0 netns "$R" type veth peer name eth0 netns "$C" || fail "veth lan"
ip link add wan0 netns "$R" type veth peer name eth0 netns "$N" || fail "veth wan"
in_ns "$C" sh -e -c "ip link set lo up; ip link set eth0 up; ip addr add $CLIENT4/24 dev eth0; ip route add default via $LAN4" || fail "client setup"
in_ns "$R" sh -e -c "ip link set lo up; ip link set lan0 up; ip link set wan0 up
	ip addr add $LAN4/24 dev lan0; ip addr add $WAN4/24 dev wan0; ip route add default via $NET4
	sysctl -qw net.ipv4.ip_forward=1" || fail "router setup"
in_ns "$N" sh -e -c "ip link set lo up; ip link set eth0 up; ip addr add $NET4/24 dev eth0
	ip addr add $PROT4/32 dev lo; ip addr add $OPEN4/32 dev lo; ip addr add $HUB4/32 dev lo
	ip route add 100.64.1.0/24 via $WAN4" || fail "net setup"
echo "    client $CLIENT4 → router $LAN4 | $WAN4 → net $NET4 (knot), $PROT4 ($PROT), $OPEN4 ($OPEN), hub $HUB4"

# ---- authoritative DNS and servers on the net side ----
mkdir -p "$DIR/knot/db"
cat >"$DIR/knot/demo.test.zone" <<EOF
\$ORIGIN demo.test.
\$TTL 300
@       SOA  ns.demo.test. hostmaster.demo.test. 1 3600 600 86400 300
@       NS   ns
ns      A    $NET4
secure  A    $PROT4
www     A    $OPEN4
EOF
cat >"$DIR/knot/knot.conf" <<EOF
server:
    rundir: "$DIR/knot"
    listen: $NET4@53
database:
    storage: "$DIR/knot/db"
log:
  - target: stderr
    any: error
zone:
  - domain: demo.test.
    storage: "$DIR/knot"
    file: "demo.test.zone"
EOF
in_ns "$N" knotd -c "$DIR/knot/knot.conf" >"$DIR/knot.log" 2>&1 &
echo $! >"$DIR/knot.pid"
for i in $(seq 50); do in_ns "$N" dig +short +time=1 +tries=1 @"$NET4" "$OPEN" A >/dev/null 2>&1 && break; sleep 0.1; done
in_ns "$N" dig +short +time=1 +tries=1 @"$NET4" "$OPEN" A | grep -qx "$OPEN4" || fail "knot did not come up: $(cat "$DIR/knot.log")"

# ---- strongSwan on the router (dnsseal loads the hub tunnel over VICI) ----
mkdir -p "$DIR/charon"
cat >"$DIR/charon/strongswan.conf" <<EOF
charon {
	load = random nonce aes sha1 sha2 hmac kdf gcm gmp curve25519 openssl pem pkcs1 pkcs8 x509 pubkey kernel-netlink socket-default vici
	install_routes = no
	install_virtual_ip = no
	retransmit_tries = 1
	filelog {
		demo {
			path = $DIR/charon/charon.log
			default = 1
		}
	}
	syslog {
		daemon {
			default = -1
		}
	}
	plugins {
		vici {
			socket = unix://$DIR/charon/charon.vici
		}
		kernel-libipsec { load = no }
		bypass-lan { load = no }
		farp { load = no }
		dhcp { load = no }
	}
}
EOF
STRONGSWAN_CONF=$DIR/charon/strongswan.conf in_ns "$R" unshare -m --propagation private \
	sh -c 'mount -t tmpfs tmpfs /run && exec /usr/lib/ipsec/charon' >"$DIR/charon/charon.out" 2>&1 &
echo $! >"$DIR/charon.pid"
for i in $(seq 100); do [ -S "$DIR/charon/charon.vici" ] && break; sleep 0.1; done
[ -S "$DIR/charon/charon.vici" ] || fail "charon did not open its VICI socket: $(tail -n3 "$DIR/charon/charon.out")"

# ---- dnsseal on the router ----
say "2. dnsseal in gateway mode on the router (eBPF data path, tunnel channel to the hub $HUB4)"
FLAGS=(run --mode gateway --datapath ebpf --lan lan0 --wan wan0 --listen "$LAN4:53" --upstream "$NET4"
	--channel "hub=tunnel:$HUB4,identity=hub.demo.test" --protect "$PROT=hub"
	--vici-socket "$DIR/charon/charon.vici" --metrics 127.0.0.1:9153 --control "$DIR/control.sock" --log-level info)
echo "\$ nsenter --net=/run/netns/$R dnsseal ${FLAGS[*]}" | sed "s#$DIR#\$DEMO#g"
# nsenter, not ip netns exec: that remounts /sys and would hide the pins under /sys/fs/bpf
nsenter --net="/run/netns/$R" "$DNSSEAL" "${FLAGS[@]}" >"$DIR/dnsseal.log" 2>&1 &
echo $! >"$DIR/dnsseal.pid"
for i in $(seq 150); do
	[ -S "$DIR/control.sock" ] && break
	kill -0 "$(cat "$DIR/dnsseal.pid")" 2>/dev/null || break
	sleep 0.1
done
if [ ! -S "$DIR/control.sock" ]; then
	echo "    dnsseal did not start; its log:"
	sed 's/^/    | /' "$DIR/dnsseal.log"
	fail "dnsseal did not start: $(grep -E 'level=error' "$DIR/dnsseal.log" | tail -n1)"
fi
grep -E 'datapath|dnsseal running' "$DIR/dnsseal.log" | sed 's/^/    | /'
stat -c %i "$PIN_ROOT/maps/dnsseal_dests4" >"$DIR/pins.inode" 2>/dev/null || rm -f "$DIR/pins.inode"
result "daemon started datapath=$(grep -o 'datapath=[a-z]*' "$DIR/dnsseal.log" | tail -n1 | cut -d= -f2)"
# the WAN capture runs from here to the end
in_ns "$R" tcpdump -i wan0 -n -U -w "$DIR/wan.pcap" >"$DIR/tcpdump.log" 2>&1 &
echo $! >"$DIR/tcpdump.pid"
for i in $(seq 50); do grep -q listening "$DIR/tcpdump.log" && break; sleep 0.1; done
pause

# ---- names ----
say "3. the client resolves both names through dnsseal ($LAN4)"
p=$(run in_ns "$C" dig +short +time=2 +tries=1 @"$LAN4" "$PROT" A | tail -n1)
echo "    $p"
o=$(run in_ns "$C" dig +short +time=2 +tries=1 @"$LAN4" "$OPEN" A | tail -n1)
echo "    $o"
result "resolved $PROT=$p $OPEN=$o"
[ "$p" = "$PROT4" ] && [ "$o" = "$OPEN4" ] || fail "resolution through dnsseal"
pause

say "4. dnsseal list: the protected address is in the kernel map (it was before the client got it)"
show dnsseal list
ctl list | tee "$DIR/list.out"
grep -q "$PROT4" "$DIR/list.out" && grep -q hub "$DIR/list.out" && result "protected-registered $PROT4 channel=hub"
grep -q "$OPEN4" "$DIR/list.out" && result "unprotected-registered $OPEN4 (unexpected)"
pause

say "5. counters: dnsseal status and the metrics endpoint"
show dnsseal status
ctl status | grep -E '^(dnsseal |entries |map |data path |queries )|^  (answer|protected|servfail) ' | head -n 24
metrics() { in_ns "$R" curl -s --max-time 3 http://127.0.0.1:9153/metrics; }
q1=$(metrics | awk '/^dnsseal_proxy_queries_total/ {s+=$2} END {print s+0}')
in_ns "$C" dig +short +time=2 +tries=1 @"$LAN4" "$OPEN" A >/dev/null
in_ns "$C" dig +short +time=2 +tries=1 @"$LAN4" "$PROT" A >/dev/null
q2=$(metrics | awk '/^dnsseal_proxy_queries_total/ {s+=$2} END {print s+0}')
show "curl -s http://127.0.0.1:9153/metrics | grep dnsseal_proxy_queries_total   (in $R; before and after two more queries)"
result "queries-total before=$q1 after=$q2"
pause

# ---- traffic ----
say "6. traffic to the protected address: no SA exists (no ESP in this kernel), so nothing may leave in clear"
x1=$(awk '$1 == "XfrmOutNoStates" {print $2}' <(in_ns "$R" cat /proc/net/xfrm_stat))
g1=$(metrics | awk '/^dnsseal_datapath_guard_drops_total/ {s+=$2} END {print s+0}')
run in_ns "$C" ping -c 3 -W 1 "$PROT4" | grep -E 'transmitted' | sed 's/^/    /'
show in_ns "$C" bash -c "'echo leak >/dev/udp/$PROT4/9'"
in_ns "$C" bash -c "echo leak >/dev/udp/$PROT4/9"
show in_ns "$C" timeout 2 bash -c "'exec 3<>/dev/tcp/$PROT4/80'"
in_ns "$C" timeout 2 bash -c "exec 3<>/dev/tcp/$PROT4/80" >/dev/null 2>&1 || echo "    no connection (timed out)"
echo "    the router itself sends too: its own packets are not marked, so no XFRM policy takes them"
echo "    and only the leak guard on wan0 stands between them and the wire (ping sees ENOBUFS)"
show in_ns "$R" ping -c 3 -W 1 "$PROT4"
in_ns "$R" ping -c 3 -W 1 "$PROT4" >"$DIR/ping.out" 2>&1
grep transmitted "$DIR/ping.out" | sed 's/^/    /'
echo "    ($(grep -c 'No buffer space' "$DIR/ping.out") × \"sendmsg: No buffer space available\": dropped on the way out)"
sleep 0.5
g2=$(metrics | awk '/^dnsseal_datapath_guard_drops_total/ {s+=$2} END {print s+0}')
x2=$(awk '$1 == "XfrmOutNoStates" {print $2}' <(in_ns "$R" cat /proc/net/xfrm_stat))
show "curl -s http://127.0.0.1:9153/metrics | grep -E 'guard_drops|marked_packets'   (in $R)"
metrics | grep -E '^dnsseal_datapath_(guard_drops|marked_packets)_total' | sed 's/^/    /'
echo "    the client's packets were marked for channel hub and met charon's trap policy, which holds"
echo "    them while no SA exists (XfrmOutNoStates $x1 → $x2); the router's own went to the guard:"
show "ip -n $R xfrm policy | grep -c 'mark'"
echo "    $(in_ns "$R" ip xfrm policy | grep -c mark) XFRM policies select on the mark"
result "xfrm-no-state before=$x1 after=$x2"
result "guard-drops before=$g1 after=$g2 delta=$((g2 - g1))"
pause

say "6b. the XFRM policies disappear (as if strongSwan were gone): the client's marked packets now meet the guard"
run in_ns "$R" ip xfrm policy flush
echo "    $(in_ns "$R" ip xfrm policy | grep -c mark) XFRM policies left"
run in_ns "$C" ping -c 3 -W 1 "$PROT4" | grep transmitted | sed 's/^/    /'
sleep 0.5
g3=$(metrics | awk '/^dnsseal_datapath_guard_drops_total/ {s+=$2} END {print s+0}')
metrics | grep -E '^dnsseal_datapath_(guard_drops|marked_packets)_total' | sed 's/^/    /'
result "guard-drops-without-xfrm before=$g2 after=$g3 delta=$((g3 - g2))"
pause

say "7. the unprotected name's traffic passes in clear"
run in_ns "$C" ping -c 2 -W 1 "$OPEN4" | grep -E 'transmitted' | sed 's/^/    /'
show in_ns "$C" timeout 2 bash -c "'exec 3<>/dev/tcp/$OPEN4/80'"
in_ns "$C" timeout 2 bash -c "exec 3<>/dev/tcp/$OPEN4/80" 2>&1 | grep -m1 -o 'Connection refused' | sed 's/^/    /; s/$/ (the server answered: no listener on :80)/'
sleep 0.5
kill -INT "$(cat "$DIR/tcpdump.pid")" 2>/dev/null
for i in $(seq 30); do kill -0 "$(cat "$DIR/tcpdump.pid")" 2>/dev/null || break; sleep 0.1; done
rm -f "$DIR/tcpdump.pid"
to_prot=$(tcpdump -r "$DIR/wan.pcap" -n "dst host $PROT4" 2>/dev/null | wc -l)
to_open=$(tcpdump -r "$DIR/wan.pcap" -n "dst host $OPEN4" 2>/dev/null | wc -l)
echo "\$ tcpdump -r wan.pcap 'dst host $PROT4' | wc -l   → $to_prot"
echo "\$ tcpdump -r wan.pcap 'dst host $OPEN4' | wc -l   → $to_open"
tcpdump -r "$DIR/wan.pcap" -n "dst host $OPEN4" 2>/dev/null | head -n 3 | sed 's/^/    /'
result "wan-clear-packets-to-protected $to_prot"
result "wan-clear-packets-to-unprotected $to_open"
[ "$to_prot" = 0 ] || fail "clear packets to the protected address left the router"
[ "$to_open" -gt 0 ] || fail "the unprotected traffic did not pass"
[ $((g2 - g1)) -gt 0 ] || fail "the guard dropped nothing"
[ $((g3 - g2)) -gt 0 ] || fail "the guard dropped none of the client's packets without XFRM policies"
pause
exit 0
