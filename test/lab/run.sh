#!/bin/bash
# dnsseal kernel lab — host-side harness.
#
#   test/lab/run.sh [--list] [--repeat N] [SCENARIO…]
#       (make lab [SCENARIO="a b"], make lab-repeat N=3 [SCENARIO=…])
#
# Builds the initramfs (build/lab/), makes the test PKI, then boots QEMU (TCG) guests on
# Debian's kernel with the host root read-only over 9p. The scenarios share boots: each guest
# takes the next scenario from a queue, runs it, tears itself down to a clean state (checked)
# and takes the next (guest/stage2.sh); LAB_LANES guests run at a time. Each scenario's result,
# assertions, logs and captures come back through the writable 9p share:
#   build/lab/runs/<time>/<scenario>/   (build/lab/last -> the newest run; boot-L.N/: each
#                                        guest's console, timing and what it ran)
# --repeat N runs the whole list N times (round-R/<scenario>/) and ends with each scenario's
# pass count ("gateway-dnsseal 3/3") and times.
# A scenario that hangs its guest (no progress for LAB_TIMEOUT s) is reported FAIL by name; the
# guest is killed and a fresh one takes the rest of the queue. So is a guest whose teardown
# leaves something behind.
# Exit status: 0 when no scenario failed (SKIP is reported, never counted as a pass), 1 when a
# scenario failed or hung, 2 when the lab cannot run here (missing kernel, modules, QEMU).
# In CI (CI=true) a SKIP is a failure — privileged tests must run there — and so is not
# being root.
# The last line is "lab: … P passed, F failed, S skipped" (.ci/run counts it).
#
# Environment: LAB_KERNEL (a /boot/vmlinuz-* path), LAB_SMP (2), LAB_MEM (MiB, 1536),
# LAB_LANES (guests at a time, 2), LAB_ACCEL (tcg; kvm where /dev/kvm works — it does not on
# the build machine), LAB_TIMEOUT (seconds per scenario, 480), LAB_DNSSEAL (daemon binary,
# default dist/dnsseal), LAB_VERBOSE=1 (print every scenario's log, not only failed ones).
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
smp=${LAB_SMP:-2}
mem=${LAB_MEM:-1536}
boot_timeout=${LAB_TIMEOUT:-480}
lanes=${LAB_LANES:-2}
dnsseal=${LAB_DNSSEAL:-$repo/dist/dnsseal}
case ${LAB_ACCEL:-tcg} in
tcg) accel=(-accel tcg,thread=multi -cpu max) ;;
kvm) accel=(-accel kvm -cpu host) ;;
*) echo "lab: LAB_ACCEL must be tcg or kvm" >&2; exit 2 ;;
esac

say() { echo "lab: $*"; }
die() { echo "lab: $*" >&2; exit 2; }

# smoke first (it fails fast when the guest lacks something), then the rest by name.
all_scenarios() {
	(cd "$here/scenarios" && ls -- *.sh 2>/dev/null | sed 's/\.sh$//' | awk '$0 == "smoke" { print; next } { rest[++n] = $0 } END { for (i = 1; i <= n; i++) print rest[i] }')
}

if [ "${1:-}" = --list ]; then
	all_scenarios
	exit 0
fi
rounds=1
if [ "${1:-}" = --repeat ]; then
	rounds=${2:-}
	case $rounds in '' | *[!0-9]* | 0) die "--repeat takes a number of rounds (1 or more), not '$rounds'" ;; esac
	shift 2
fi
# In CI a skipped scenario is a failure: privileged tests must run there, not skip.
ci=
[ "${CI:-}" = true ] && ci=1

if [ "$(id -u)" != 0 ]; then
	# Privileged like the netns tests: the guest is handed the whole host root.
	if [ -n "$ci" ]; then
		echo "lab: FAIL: the kernel lab needs root, and CI (CI=true) must run it" >&2
		exit 1
	fi
	echo "lab: SKIP: the kernel lab needs root (CI runs it as root)"
	exit 0
fi

# ---- prerequisites -------------------------------------------------------------------------
qemu=$(command -v qemu-system-x86_64) || die "qemu-system-x86_64 not found: install qemu-system-x86"
[ "$(uname -m)" = x86_64 ] || die "the lab boots an amd64 guest; this host is $(uname -m)"

# The guest kernel: LAB_KERNEL, else the newest /boot/vmlinuz-* whose modules include ESP.
kernel=${LAB_KERNEL:-}
if [ -z "$kernel" ]; then
	for k in $(ls -1 /boot/vmlinuz-* 2>/dev/null | sort -V -r); do
		v=${k#/boot/vmlinuz-}
		if ls /lib/modules/"$v"/kernel/net/ipv4/esp4.ko* >/dev/null 2>&1; then
			kernel=$k
			break
		fi
	done
fi
[ -n "$kernel" ] || die "no /boot/vmlinuz-* with ESP modules (/lib/modules/<version>/kernel/net/ipv4/esp4.ko): install linux-image-amd64"
[ -r "$kernel" ] || die "$kernel is not readable"
kver=${kernel#/boot/vmlinuz-}
[ -d "/lib/modules/$kver" ] || die "$kernel has no modules in /lib/modules/$kver: reinstall its linux-image package"
# What the harness and the scenarios run (package in brackets).
for need in /usr/lib/ipsec/charon:strongswan-charon /usr/sbin/swanctl:strongswan-swanctl \
	pki:strongswan-pki tcpdump:tcpdump nft:nftables ip:iproute2 ss:iproute2 nstat:iproute2 \
	busybox:busybox-static cpio:cpio curl:curl knotd:knot kdig:knot-dnsutils bpftool:bpftool; do
	command -v "${need%%:*}" >/dev/null || die "${need%%:*} not found: install ${need#*:}"
done

# ---- build ----------------------------------------------------------------------------------
initrd=$repo/build/lab/initramfs-$kver.cpio.gz
"$here/build-initramfs.sh" "$kver" "$initrd" || die "could not build the initramfs"

# Keep the 10 newest runs.
ls -1d "$repo"/build/lab/runs/*/ 2>/dev/null | sort | head -n -9 | xargs -r rm -rf
run=$repo/build/lab/runs/$(date -u +%Y%m%d-%H%M%S)
[ ! -e "$run" ] || run=$run-$$
mkdir -p "$run"
ln -sfn "$run" "$repo/build/lab/last"
"$here/make-pki.sh" "$run/pki" || die "could not make the test PKI"
"$here/make-nss.sh" "$run/pki" hub peer || die "could not make the NSS databases for pluto (make-nss.sh)"

if [ $# -gt 0 ]; then
	scenarios=("$@")
else
	mapfile -t scenarios < <(all_scenarios)
fi
for s in "${scenarios[@]}"; do
	[ -f "$here/scenarios/$s.sh" ] || die "no scenario '$s' (have: $(all_scenarios | tr '\n' ' '))"
done

case $lanes in '' | *[!0-9]* | 0) die "LAB_LANES must be a number of guests (1 or more), not '$lanes'" ;; esac
say "kernel $kernel, $smp CPU(s), ${mem} MiB, ${LAB_ACCEL:-tcg}, ${boot_timeout}s per scenario; results in $run"
[ "$rounds" -eq 1 ] || say "$rounds rounds of ${#scenarios[@]} scenario(s)"

# ---- scenarios in shared boots, LAB_LANES guests at a time ----------------------------------
# The queue: one item a line, the item's results directory relative to $run ("SCENARIO", or
# "round-R/SCENARIO"). Every guest claims the next unclaimed item (mkdir in $run, atomic on this
# host), runs it, tears the guest down to its clean state and claims the next; see
# guest/stage2.sh. Within a round: smoke first (it fails fast when the guest lacks something),
# then the longest first by the newest earlier run's times, so that lanes end together.
prev_secs() {
	local d t v
	for d in $(ls -1d "$repo"/build/lab/runs/*/ 2>/dev/null | sort -r); do
		[ "${d%/}" != "$run" ] || continue
		for t in "$d$1/timing" "$d"round-*/"$1/timing"; do
			[ -f "$t" ] || continue
			v=$(awk '$1 == "scenario-start" { s = $2 } $1 == "scenario-end" { e = $2 } END { if (e != "") printf "%d\n", e - s }' "$t")
			[ -n "$v" ] || continue
			echo "$v"
			return
		done
	done
	echo 9999 # never timed: early
}
ordered=()
if [ "$lanes" -gt 1 ]; then
	mapfile -t ordered < <(for s in "${scenarios[@]}"; do
		if [ "$s" = smoke ]; then echo "99999 $s"; else echo "$(prev_secs "$s") $s"; fi
	done | sort -k1,1nr -s | awk '{ print $2 }')
else
	ordered=("${scenarios[@]}")
fi
# outdir ROUND SCENARIO — the item (results directory, relative to $run).
outdir() {
	if [ "$rounds" -eq 1 ]; then echo "$2"; else echo "round-$1/$2"; fi
}
: >"$run/queue"
for ((r = 1; r <= rounds; r++)); do
	[ "$rounds" -eq 1 ] || mkdir -p "$run/round-$r"
	for s in "${ordered[@]}"; do outdir "$r" "$s" >>"$run/queue"; done
done
items=$(wc -l <"$run/queue")
[ "$lanes" -le "$items" ] || lanes=$items

# unclaimed — true while an item of the queue has no results directory yet.
unclaimed() {
	local item
	while IFS= read -r item; do [ -d "$run/$item" ] || return 0; done <"$run/queue"
	return 1
}

# host_result ITEM LINE — the host's verdict for an item the guest could not finish.
host_result() {
	mkdir -p "$run/$1"
	[ -s "$run/$1/result" ] || echo "$2" >"$run/$1/result"
	: >"$run/$1/done"
}

# gone PID — true when PID has exited (a zombie not yet reaped has too).
gone() { [ ! -e "/proc/$1" ] || [ "$(cut -d' ' -f3 "/proc/$1/stat" 2>/dev/null)" = Z ]; }

# boot_guest BOOT — one guest on the queue, results directory $run/BOOT; a watchdog kills it
# when the item it runs (BOOT/current) has not changed for $boot_timeout s (or it claimed none
# in that time), and the item it hung in gets a FAIL with the console's last line.
# no_timer_check: under TCG on a loaded host the kernel's IO-APIC timer check can miss its
# ticks and panic ("IO-APIC + timer doesn't work!", seen with a load average of 18).
boot_guest() {
	local b=$1 bd=$run/$1 pid rc cur last= since=$SECONDS killed= reason
	mkdir -p "$bd"
	echo "start $(date +%s)" >"$bd/host-timing"
	timeout -k 10 "$((boot_timeout * (items + 1)))" "$qemu" \
		-machine q35 "${accel[@]}" -smp "$smp" -m "$mem" \
		-display none -monitor none -serial "file:$bd/console.log" \
		-no-reboot -nic none \
		-kernel "$kernel" -initrd "$initrd" \
		-append "console=ttyS0 quiet panic=-1 no_timer_check lab.queue=queue lab.boot=$b lab.repo=$repo lab.run=$run lab.dnsseal=$dnsseal lab.timeout=$((boot_timeout - 45))" \
		-fsdev local,id=hostroot,path=/,security_model=none,readonly=on,multidevs=remap \
		-device virtio-9p-pci,fsdev=hostroot,mount_tag=hostroot \
		-fsdev "local,id=labout,path=$run,security_model=none,multidevs=remap" \
		-device virtio-9p-pci,fsdev=labout,mount_tag=labout \
		-device virtio-rng-pci \
		</dev/null >"$bd/qemu.log" 2>&1 &
	# timeout puts QEMU in a process group of its own: stop that group when run.sh is stopped.
	pid=$!
	echo "$pid" >"$bd/pgid"
	while ! gone "$pid"; do
		sleep 1
		cur=$(cat "$bd/current" 2>/dev/null)
		if [ "$cur" != "$last" ]; then
			last=$cur since=$SECONDS
		elif [ $((SECONDS - since)) -ge "$boot_timeout" ] && [ "$cur" != end ]; then
			killed=$((SECONDS - since))
			kill -- "-$pid" 2>/dev/null
			break
		fi
	done
	wait "$pid"
	rc=$?
	echo "end $(date +%s) rc=$rc${killed:+ killed}" >>"$bd/host-timing"
	cur=$(cat "$bd/current" 2>/dev/null)
	cur=${cur#teardown }
	[ -n "$cur" ] && [ "$cur" != end ] || return 0
	[ ! -f "$run/$cur/done" ] || return 0
	if [ -n "$killed" ]; then
		reason="QEMU killed: no progress for ${killed}s (guest hung; last console line: $(grep -a . "$bd/console.log" 2>/dev/null | tail -n1 | tr -d '\r'))"
	else
		reason=$(grep -a -o 'LAB-STAGE1-FAIL: .*' "$bd/console.log" 2>/dev/null | head -n1)
		[ -n "$reason" ] || reason=$(grep -a -m1 -E 'Kernel panic|end Kernel panic' "$bd/console.log" 2>/dev/null)
		[ -n "$reason" ] || reason="QEMU exited with status $rc: $(tail -n2 "$bd/qemu.log" 2>/dev/null | tr '\n' ' ')"
	fi
	if [ -s "$run/$cur/result" ]; then
		# The scenario had its verdict; its teardown hung: the next items get a fresh boot.
		echo "teardown after $cur: $reason" >"$bd/dirty"
		: >"$run/$cur/done"
	else
		host_result "$cur" "FAIL no result from the guest ($b): $reason"
	fi
}

# lane L — boot guests on the queue until no item is left unclaimed; a guest that claimed
# nothing twice in a row (it cannot boot) ends the lane.
lane() {
	local l=$1 n=0 idle=0 b
	trap '[ -z "$b" ] || kill -- "-$(cat "$run/$b/pgid" 2>/dev/null)" 2>/dev/null; exit 130' INT TERM
	while unclaimed; do
		n=$((n + 1))
		b=boot-$l.$n
		boot_guest "$b"
		if [ -s "$run/$b/claimed" ]; then idle=0; else idle=$((idle + 1)); fi
		[ "$idle" -lt 2 ] || break
	done
}

declare -A verdict=() detail=() took=() where=() reported=()
failed=0

# collect ITEM KEY — read an item's verdict from its files.
collect() {
	local item=$1 k=$2 result t b
	result=$(head -n1 "$run/$item/result" 2>/dev/null)
	[ -n "$result" ] || result="FAIL no result"
	verdict[$k]=${result%% *}
	detail[$k]=${result#"${verdict[$k]}"}
	detail[$k]=${detail[$k]# }
	if [ "${verdict[$k]}" = SKIP ] && [ -n "$ci" ]; then
		detail[$k]="${detail[$k]} (a failure in CI: privileged tests must run there)"
	fi
	t=$run/$item/timing
	took[$k]=$(awk '$1 == "scenario-start" { s = $2 } $1 == "scenario-end" { e = $2 } END { if (e != "") printf "%d\n", e - s + 0.5; else print "?" }' "$t" 2>/dev/null)
	b=$(awk '$1 == "boot" { print $2 " #" $4 }' "$t" 2>/dev/null)
	where[$k]=${b:-not run}
}

# bad ROUND:SCENARIO — true when that run counts as failed (a SKIP does in CI).
bad() { [ "${verdict[$1]}" = FAIL ] || { [ "${verdict[$1]}" = SKIP ] && [ -n "$ci" ]; }; }

report() {
	local r=$1 s=$2 k=$1:$2 out name=$2 bd
	out=$run/$(outdir "$r" "$s")
	[ "$rounds" -eq 1 ] || name="$s #$r"
	printf 'lab: %-22s %-4s %4ss (%s)  %s\n' "$name" "${verdict[$k]}" "${took[$k]}" "${where[$k]}" "${detail[$k]}"
	if [ -f "$out/assertions" ] && { bad "$k" || [ -n "${LAB_VERBOSE:-}" ]; }; then
		sed 's/^/    /' "$out/assertions"
	fi
	if bad "$k" || [ -n "${LAB_VERBOSE:-}" ]; then
		echo "---- $s: scenario.log (last 80 lines) ----"
		tail -n 80 "$out/scenario.log" 2>/dev/null || echo "(none)"
		bd=$run/${where[$k]%% *}
		echo "---- $s: console of ${where[$k]%% *} (last 25 lines) ----"
		tail -n 25 "$bd/console.log" 2>/dev/null | tr -d '\r'
		local log
		for log in "$out"/charon-*.out "$out"/charon-*.log "$out"/dnsseal-*.log; do
			[ -f "$log" ] || continue
			echo "---- $s: $(basename "$log") (last 25 lines) ----"
			tail -n 25 "$log"
		done
		echo "---- end of $s (all files: $out) ----"
	fi
}

# report_ready — report every item that is done and not reported yet.
report_ready() {
	local r s k
	for ((r = 1; r <= rounds; r++)); do
		for s in "${scenarios[@]}"; do
			k=$r:$s
			[ -z "${reported[$k]:-}" ] && [ -f "$run/$(outdir "$r" "$s")/done" ] || continue
			reported[$k]=1
			collect "$(outdir "$r" "$s")" "$k"
			report "$r" "$s"
			bad "$k" && failed=$((failed + 1))
		done
	done
}

say "$lanes guest(s) at a time, scenarios share boots"
lane_pids=()
trap 'kill "${lane_pids[@]}" 2>/dev/null; wait; exit 130' INT TERM
lab_start=$SECONDS
for ((l = 1; l <= lanes; l++)); do
	lane "$l" &
	lane_pids+=($!)
done
lanes_running() {
	local p
	for p in "${lane_pids[@]}"; do gone "$p" || return 0; done
	return 1
}
while lanes_running; do
	report_ready
	sleep 2
done
wait
# Items no guest could claim (every boot of every lane failed before its first scenario).
while IFS= read -r item; do
	[ -f "$run/$item/done" ] && continue
	why=
	for bd in "$run"/boot-*/; do
		why=$(grep -a -o 'LAB-STAGE1-FAIL: .*' "$bd/console.log" 2>/dev/null | head -n1)
		[ -n "$why" ] || why=$(grep -a -m1 -E 'Kernel panic' "$bd/console.log" 2>/dev/null)
		[ -z "$why" ] || break
	done
	host_result "$item" "FAIL not run: no guest booted far enough to run it${why:+ ($why)}"
done <"$run/queue"
report_ready
wall=$((SECONDS - lab_start))
boots=$(ls -1d "$run"/boot-*/ 2>/dev/null | wc -l)

# ---- summary --------------------------------------------------------------------------------
echo
say "summary ($run)"
pass=0 skip=0
for s in "${scenarios[@]}"; do
	if [ "$rounds" -eq 1 ]; then
		printf '  %-22s %-4s %4ss  %s\n' "$s" "${verdict[1:$s]}" "${took[1:$s]}" "${detail[1:$s]}"
	fi
	n=0 times=
	for ((r = 1; r <= rounds; r++)); do
		case ${verdict[$r:$s]} in PASS) pass=$((pass + 1)) n=$((n + 1)) ;; SKIP) skip=$((skip + 1)) ;; esac
		times+=" ${took[$r:$s]}s"
	done
	if [ "$rounds" -gt 1 ]; then
		printf '  %-22s %d/%d  runs:%s\n' "$s" "$n" "$rounds" "$times"
		for ((r = 1; r <= rounds; r++)); do
			[ "${verdict[$r:$s]}" = PASS ] || printf '  %-22s   round %d: %s %s\n' "" "$r" "${verdict[$r:$s]}" "${detail[$r:$s]}"
		done
	fi
done
for bd in "$run"/boot-*/; do
	[ -d "$bd" ] || continue
	printf '  %-22s %s scenario(s)%s%s\n' "$(basename "$bd")" "$(wc -l <"$bd/claimed" 2>/dev/null || echo 0)" \
		"$(awk '$1 == "crypto-warm" { printf ", ready after %ds", $2 + 0.5 }' "$bd/timing" 2>/dev/null)" \
		"$([ -f "$bd/dirty" ] && echo ", not clean $(cat "$bd/dirty")")"
done
say "wall time $((wall / 60))m$((wall % 60))s, $boots boot(s), $lanes at a time"
total=$((rounds * ${#scenarios[@]}))
if [ "$rounds" -eq 1 ]; then
	say "$total scenario(s): $pass passed, $failed failed, $skip skipped"
else
	say "$rounds rounds of ${#scenarios[@]} scenario(s), $total runs: $pass passed, $failed failed, $skip skipped"
fi
[ $failed -eq 0 ]
