#!/bin/bash
# dnsseal kernel lab — stage 2, run by stage 1 (switch_root) as PID 1 on the overlay root.
#
# Prepares the guest (pseudo filesystems, modules, AES-GCM instantiated once), then runs
# scenarios, each under a bounded timeout, and powers off. Two ways:
#
#   lab.queue=FILE lab.boot=DIR   (run.sh) several scenarios in this one boot. FILE (in the
#       results share) lists items, one a line: "SCENARIO" or "round-R/SCENARIO", the item's
#       results directory relative to the share. Items are claimed in order by mkdir in the
#       share (atomic on the host, so two guests sharing the queue never run the same item);
#       each claimed item runs, then the guest is torn down to its state before the first
#       scenario (every process killed, namespaces deleted, root XFRM and nft flushed, bpffs
#       pins removed, cgroup attachments detached, a fresh /tmp/lab) and that state is checked.
#       When the check fails, the guest claims nothing more and writes DIR/dirty: run.sh boots
#       a fresh guest for the remaining items. DIR/current names the item running (or its
#       teardown) for run.sh's watchdog; DIR/claimed lists what this boot claimed.
#   lab.scenario=NAME   one scenario, results in the share's top directory (test/bpf/kernel61.sh).
#
# Per scenario (in its results directory):
#   result        PASS | FAIL <reason> | SKIP <reason>   (written by the scenario, or here)
#   scenario.log  the scenario's stdout/stderr
#   assertions    one line per assertion (see lib/eval.sh)
#   timing        the boot and position, guest uptime at scenario start and end, teardown
#   dmesg.log     the kernel's messages during the scenario
#   done          written last (run.sh reports the item once it is there)
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root LANG=C.UTF-8 TERM=dumb
share=/lab-out

uptime_s() { cut -d' ' -f1 /proc/uptime; }
say() { echo "LAB-STAGE2: $(uptime_s)s $*" >/dev/console; }
# Power off with a static busybox copied to tmpfs: once the kernel starts tearing down, files
# on the 9p root may no longer be readable, and PID 1 must not exit before the power is off.
finish() {
	say "powering off"
	sync
	if [ -x /run/lab/busybox ]; then
		exec /run/lab/busybox poweroff -f
	fi
	echo o >/proc/sysrq-trigger
	while :; do read -r -t 1 </dev/console; done
}
trap finish EXIT

scenario= queue= boot= repo= timeout=240 dnsseal=
for arg in $(cat /proc/cmdline); do
	case "$arg" in
	lab.scenario=*) scenario=${arg#*=} ;;
	lab.queue=*) queue=${arg#*=} ;;
	lab.boot=*) boot=${arg#*=} ;;
	lab.repo=*) repo=${arg#*=} ;;
	lab.timeout=*) timeout=${arg#*=} ;;
	lab.run=*) export LAB_RUN=${arg#*=} ;;
	lab.dnsseal=*) dnsseal=${arg#*=} ;;
	esac
done
# This boot's own files (timing, modprobe.err, dmesg before the first scenario).
bootout=$share
if [ -n "$queue" ]; then
	bootout=$share/${boot:-boot}
	mkdir -p "$bootout"
fi

echo "stage2 $(uptime_s)" >>"$bootout/timing"
say "started"

# The guest gets fresh tmpfs on /tmp and /run. A repository or daemon binary that lives there on
# the host (a CI clone in /tmp, say) must stay visible: keep the host's directories at /lab-host
# and bind them back after the tmpfs mounts.
mkdir -p /lab-host/tmp /lab-host/run
mount --bind /tmp /lab-host/tmp
mount --bind /run /lab-host/run
mount -t tmpfs -o mode=1777 tmpfs /tmp
mount -t tmpfs -o mode=0755 tmpfs /run
for keep in "$repo" "$(dirname "${dnsseal:-/}")"; do
	case "$keep" in
	"$repo"/*) ;; # inside the repository: visible with it
	/tmp/* | /run/*) mkdir -p "$keep" && mount --bind "/lab-host$keep" "$keep" ;;
	esac
done
mkdir -p /run/lab && cp "$(command -v busybox)" /run/lab/busybox 2>/dev/null
mkdir -p /run/lock /dev/pts /dev/shm /run/netns /tmp/lab
mount -t devpts devpts /dev/pts 2>/dev/null
mount -t tmpfs tmpfs /dev/shm
mount -t bpf bpf /sys/fs/bpf 2>/dev/null
mount -t cgroup2 cgroup2 /sys/fs/cgroup 2>/dev/null
mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null
hostname lab
# The guest's name resolves locally. knotd looks its host name up at start (getaddrinfo, for its
# identity); with "lab" in no file the lookup went to the host's nameserver, which no namespace
# can reach (the WAN hosts' default route ends at the sink): two 5 s resolver time-outs, ~11 s
# before every knotd answered (measured: knotd bound its port 10-11 s after its start, also with
# a warm page cache).
echo "127.0.1.1 lab" >>/etc/hosts
ip link set lo up

export LAB_REPO=$repo LAB_DIR=$repo/test/lab
export LAB_DNSSEAL=${dnsseal:-$repo/dist/dnsseal}

# Modules every scenario uses; the rest is loaded on demand by the kernel through modprobe.
modprobe -a veth bridge esp4 esp6 xfrm_user xfrm4_tunnel xfrm6_tunnel tunnel4 tunnel6 \
	gcm aesni_intel seqiv echainiv nf_tables cls_bpf act_bpf sch_ingress virtio_rng \
	2>"$bootout/modprobe.err" || say "modprobe reported: $(tr '\n' ' ' <"$bootout/modprobe.err")"

# Instantiate AES-GCM for ESP once, here: the kernel self-tests an algorithm the first time it
# is used, which under TCG takes seconds — inside the first IKE exchange of a scenario that
# would eat a bounded negotiation wait (dnsseal's 2 s before-answer) and skew timings.
key=0x$(printf '%02x' $(seq 1 36) | tr -d '\n')
ip xfrm state add src 192.0.2.250 dst 192.0.2.251 proto esp spi 0x1 mode transport \
	aead 'rfc4106(gcm(aes))' "$key" 128 2>>"$bootout/modprobe.err" && ip xfrm state flush
echo "crypto-warm $(uptime_s)" >>"$bootout/timing"

# run_scenario NAME OUT — the scenario under `timeout`, its results in OUT.
run_scenario() {
	local name=$1 out=$2 script=$LAB_DIR/scenarios/$1.sh rc
	export LAB_OUT=$out LAB_SCENARIO=$name
	if [ ! -f "$script" ]; then
		echo "FAIL no scenario script $script in the guest" >"$out/result"
		return
	fi
	echo "scenario-start $(uptime_s)" >>"$out/timing"
	say "running scenario $name (timeout ${timeout}s)"
	timeout -k 5 "$timeout" bash "$script" >"$out/scenario.log" 2>&1
	rc=$?
	echo "scenario-end $(uptime_s) rc=$rc" >>"$out/timing"
	say "scenario $name exited with $rc"
	if [ ! -s "$out/result" ]; then
		case $rc in
		124 | 137) echo "FAIL scenario timed out after ${timeout}s in the guest" >"$out/result" ;;
		0) echo "FAIL scenario exited 0 without writing a result" >"$out/result" ;;
		*) echo "FAIL scenario exited with status $rc before its assertions" >"$out/result" ;;
		esac
	fi
	dmesg -c >"$out/dmesg.log" 2>/dev/null
}

if [ -z "$queue" ]; then
	if [ -z "$scenario" ]; then
		echo "FAIL neither lab.scenario= nor lab.queue= on the kernel command line" >"$share/result"
		exit
	fi
	run_scenario "$scenario" "$share"
	exit
fi

# ---- several scenarios in this boot -------------------------------------------------------

# What is left of a scenario, all but PID 1 (this shell) and kernel threads. Builtins only: a
# forked child of this shell would count itself.
_leftover_pids() {
	local p c
	LEFTOVER=()
	for p in /proc/[0-9]*; do
		p=${p#/proc/}
		[ "$p" = 1 ] || [ "$p" = "$BASHPID" ] && continue
		c=
		read -r -d '' c 2>/dev/null <"/proc/$p/cmdline"
		[ -n "$c" ] && LEFTOVER+=("$p") # empty: a kernel thread or a zombie
	done
}

# What a clean guest has, taken before the first scenario: BPF programs, links in the root
# namespace (lo), cgroup attachments, named namespaces, pins, XFRM and nft in the root namespace.
# Few processes (each costs ~0.1-0.3 s under TCG): globs where a directory tells.
_count() { # _count PATTERN LINE… — how many LINEs match the extended regex PATTERN
	local re=$1 n=0 l
	shift
	for l in "$@"; do [[ $l =~ $re ]] && n=$((n + 1)); done
	echo "$n"
}
_state() {
	local a
	mapfile -t a <<<"$(bpftool prog show 2>/dev/null)"
	echo "progs $(_count '^[0-9]+:' "${a[@]}")"
	mapfile -t a <<<"$(bpftool cgroup show /sys/fs/cgroup 2>/dev/null)"
	echo "cgroup $(_count '^[0-9]+ ' "${a[@]}")"
	a=(/sys/class/net/*)
	echo "links ${#a[@]}"
	a=(/run/netns/* /sys/fs/bpf/*)
	echo "netns+pins $(_count '[^*]$' "${a[@]}")"
	mapfile -t a <<<"$(printf 'xfrm state\nxfrm policy\n' | ip -batch - 2>&1; nft list ruleset 2>&1)"
	echo "xfrm+nft ${#a[@]}"
}

# teardown — back to the clean state; prints what is still different (nothing: clean).
teardown() {
	local i t id
	for i in 1 2 3 4 5 6 7 8 9 10; do
		_leftover_pids
		[ ${#LEFTOVER[@]} -eq 0 ] && break
		kill -KILL "${LEFTOVER[@]}" 2>/dev/null
		sleep 0.5
	done
	_leftover_pids
	[ ${#LEFTOVER[@]} -eq 0 ] || echo "processes left: $(for i in "${LEFTOVER[@]}"; do tr '\0' ' ' <"/proc/$i/cmdline"; echo -n '; '; done)"
	ip -all netns delete 2>/dev/null
	rm -f /run/netns/* 2>/dev/null
	ip xfrm state flush
	ip xfrm policy flush
	nft flush ruleset
	rm -rf /sys/fs/bpf/* 2>/dev/null
	# Attachments that were not pinned links (those went with their pins).
	bpftool cgroup show /sys/fs/cgroup 2>/dev/null | while read -r id t _; do
		case $id in [0-9]*) bpftool cgroup detach /sys/fs/cgroup "$t" id "$id" ;; esac
	done
	umount -l /tmp/lab 2>/dev/null
	rm -rf /tmp/lab
	mkdir -p /tmp/lab
	# Programs and namespaces go once their last reference has: wait for it (at most 60 s).
	for i in $(seq 120); do
		[ "$(_state)" = "$CLEAN" ] && return 0
		sleep 0.5
	done
	echo "clean: $CLEAN | now: $(_state)" | tr '\n' ' '
}

CLEAN=$(_state)
echo "$CLEAN" >"$bootout/clean-state"
dmesg -c >"$bootout/dmesg.log" 2>/dev/null
n=0
while IFS= read -r item <&3; do
	[ -n "$item" ] || continue
	mkdir "$share/$item" 2>/dev/null || continue # another boot has it
	n=$((n + 1))
	echo "$item" >>"$bootout/claimed"
	echo "$item" >"$bootout/current"
	echo "boot $boot position $n" >"$share/$item/timing"
	mount -t tmpfs -o mode=0755 tmpfs /tmp/lab
	run_scenario "${item##*/}" "$share/$item" </dev/null
	echo "teardown $item" >"$bootout/current"
	dirty=$(teardown 2>>"$bootout/teardown.err" </dev/null)
	echo "teardown-end $(uptime_s)${dirty:+ dirty: $dirty}" >>"$share/$item/timing"
	: >"$share/$item/done"
	if [ -n "$dirty" ]; then
		say "not clean after $item: $dirty"
		echo "after $item: $dirty" >"$bootout/dirty"
		break
	fi
done 3<"$share/$queue"
echo "end" >"$bootout/current"
