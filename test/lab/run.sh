#!/bin/bash
# dnsseal kernel lab — host-side harness.
#
#   test/lab/run.sh [--list] [--repeat N] [SCENARIO…]
#       (make lab [SCENARIO="a b"], make lab-repeat N=3 [SCENARIO=…])
#
# Builds the initramfs (build/lab/), makes the test PKI, then boots one QEMU (TCG) guest per
# scenario on Debian's kernel with the host root read-only over 9p, and collects each
# scenario's result, assertions, logs and captures from its writable 9p share:
#   build/lab/runs/<time>/<scenario>/   (build/lab/last -> the newest run)
# --repeat N runs the whole list N times in a row (round-R/<scenario>/) and ends with each
# scenario's pass count ("gateway-dnsseal 3/3") and boot times.
# Exit status: 0 when no scenario failed (SKIP is reported, never counted as a pass), 1 when a
# scenario failed or hung, 2 when the lab cannot run here (missing kernel, modules, QEMU).
# In CI (CI=true) a SKIP is a failure — privileged tests must run there — and so is not
# being root.
# The last line is "lab: … P passed, F failed, S skipped" (.ci/run counts it).
#
# Environment: LAB_KERNEL (a /boot/vmlinuz-* path), LAB_SMP (2), LAB_MEM (MiB, 1536),
# LAB_ACCEL (tcg; kvm where /dev/kvm works — it does not on the build machine),
# LAB_TIMEOUT (seconds per boot, 480), LAB_DNSSEAL (daemon binary, default dist/dnsseal),
# LAB_VERBOSE=1 (print every scenario's log, not only failed ones).
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
smp=${LAB_SMP:-2}
mem=${LAB_MEM:-1536}
boot_timeout=${LAB_TIMEOUT:-480}
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

say "kernel $kernel, $smp CPU(s), ${mem} MiB, ${LAB_ACCEL:-tcg}, ${boot_timeout}s per boot; results in $run"
[ "$rounds" -eq 1 ] || say "$rounds rounds of ${#scenarios[@]} scenario(s)"

# ---- one boot per scenario -----------------------------------------------------------------
qemu_pgid=
trap '[ -z "$qemu_pgid" ] || kill -- "-$qemu_pgid" 2>/dev/null; exit 130' INT TERM
# Keyed by "ROUND:SCENARIO".
declare -A verdict=() detail=() took=() booted=()
failed=0

# outdir ROUND SCENARIO — where that boot's results go.
outdir() {
	if [ "$rounds" -eq 1 ]; then echo "$run/$2"; else echo "$run/round-$1/$2"; fi
}

# no_timer_check: under TCG on a loaded host the kernel's IO-APIC timer check can miss its
# ticks and panic ("IO-APIC + timer doesn't work!", seen with a load average of 18).
boot() {
	local r=$1 s=$2 k=$1:$2 out start rc
	out=$(outdir "$r" "$s")
	mkdir -p "$out"
	start=$(date +%s%N)
	timeout -k 10 "$boot_timeout" "$qemu" \
		-machine q35 "${accel[@]}" -smp "$smp" -m "$mem" \
		-display none -monitor none -serial "file:$out/console.log" \
		-no-reboot -nic none \
		-kernel "$kernel" -initrd "$initrd" \
		-append "console=ttyS0 quiet panic=-1 no_timer_check lab.scenario=$s lab.repo=$repo lab.run=$run lab.dnsseal=$dnsseal lab.timeout=$((boot_timeout - 45))" \
		-fsdev local,id=hostroot,path=/,security_model=none,readonly=on,multidevs=remap \
		-device virtio-9p-pci,fsdev=hostroot,mount_tag=hostroot \
		-fsdev "local,id=labout,path=$out,security_model=none,multidevs=remap" \
		-device virtio-9p-pci,fsdev=labout,mount_tag=labout \
		-device virtio-rng-pci \
		</dev/null >"$out/qemu.log" 2>&1 &
	# timeout puts QEMU in a process group of its own: stop that group when run.sh is stopped.
	qemu_pgid=$!
	wait "$qemu_pgid"
	rc=$?
	qemu_pgid=
	took[$k]=$((($(date +%s%N) - start + 500000000) / 1000000000))
	booted[$k]=$(awk '$1 == "stage2" { print $2 }' "$out/timing" 2>/dev/null)

	local result reason
	result=$(head -n1 "$out/result" 2>/dev/null)
	if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
		result="FAIL QEMU killed after ${boot_timeout}s (guest hung; last console line: $(grep -a . "$out/console.log" 2>/dev/null | tail -n1 | tr -d '\r'))"
	elif [ -z "$result" ]; then
		reason=$(grep -a -o 'LAB-STAGE1-FAIL: .*' "$out/console.log" 2>/dev/null | head -n1)
		[ -n "$reason" ] || reason=$(grep -a -m1 -E 'Kernel panic|end Kernel panic' "$out/console.log" 2>/dev/null)
		[ -n "$reason" ] || reason="QEMU exited with status $rc: $(tail -n2 "$out/qemu.log" 2>/dev/null | tr '\n' ' ')"
		result="FAIL no result from the guest: $reason"
	fi
	verdict[$k]=${result%% *}
	detail[$k]=${result#"${verdict[$k]}"}
	detail[$k]=${detail[$k]# }
	if [ "${verdict[$k]}" = SKIP ] && [ -n "$ci" ]; then
		detail[$k]="${detail[$k]} (a failure in CI: privileged tests must run there)"
	fi
}

# bad ROUND:SCENARIO — true when that boot counts as failed (a SKIP does in CI).
bad() { [ "${verdict[$1]}" = FAIL ] || { [ "${verdict[$1]}" = SKIP ] && [ -n "$ci" ]; }; }

report() {
	local r=$1 s=$2 k=$1:$2 out name=$2
	out=$(outdir "$r" "$s")
	[ "$rounds" -eq 1 ] || name="$s #$r"
	printf 'lab: %-22s %-4s %4ss (guest booted in %ss)  %s\n' "$name" "${verdict[$k]}" \
		"${took[$k]}" "${booted[$k]:-?}" "${detail[$k]}"
	if [ -f "$out/assertions" ] && { bad "$k" || [ -n "${LAB_VERBOSE:-}" ]; }; then
		sed 's/^/    /' "$out/assertions"
	fi
	if bad "$k" || [ -n "${LAB_VERBOSE:-}" ]; then
		echo "---- $s: scenario.log (last 80 lines) ----"
		tail -n 80 "$out/scenario.log" 2>/dev/null || echo "(none)"
		echo "---- $s: console (last 25 lines) ----"
		tail -n 25 "$out/console.log" 2>/dev/null | tr -d '\r'
		local log
		for log in "$out"/charon-*.out "$out"/charon-*.log "$out"/dnsseal-*.log; do
			[ -f "$log" ] || continue
			echo "---- $s: $(basename "$log") (last 25 lines) ----"
			tail -n 25 "$log"
		done
		echo "---- end of $s (all files: $out) ----"
	fi
}

for ((r = 1; r <= rounds; r++)); do
	for s in "${scenarios[@]}"; do
		if [ "$rounds" -eq 1 ]; then say "booting scenario $s"; else say "round $r/$rounds: booting scenario $s"; fi
		boot "$r" "$s"
		report "$r" "$s"
		bad "$r:$s" && failed=$((failed + 1))
	done
done

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
		printf '  %-22s %d/%d  boots:%s\n' "$s" "$n" "$rounds" "$times"
		for ((r = 1; r <= rounds; r++)); do
			[ "${verdict[$r:$s]}" = PASS ] || printf '  %-22s   round %d: %s %s\n' "" "$r" "${verdict[$r:$s]}" "${detail[$r:$s]}"
		done
	fi
done
total=$((rounds * ${#scenarios[@]}))
if [ "$rounds" -eq 1 ]; then
	say "$total scenario(s): $pass passed, $failed failed, $skip skipped"
else
	say "$rounds rounds of ${#scenarios[@]} scenario(s), $total boots: $pass passed, $failed failed, $skip skipped"
fi
[ $failed -eq 0 ]
