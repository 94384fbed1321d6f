#!/bin/bash
# dnsseal kernel lab — stage 2, run by stage 1 (switch_root) as PID 1 on the overlay root.
#
# Prepares the guest (pseudo filesystems, modules), runs the scenario named by lab.scenario=
# with a bounded timeout, and powers off. Results go to /lab-out (the writable 9p share):
#   result        PASS | FAIL <reason> | SKIP <reason>   (written by the scenario, or here)
#   scenario.log  the scenario's stdout/stderr
#   assertions    one line per assertion (see lib/eval.sh)
#   timing        guest uptime at the milestones
#   *.pcap        captures
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root LANG=C.UTF-8 TERM=dumb
out=/lab-out

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

echo "stage2 $(uptime_s)" >>"$out/timing"
say "started"

scenario= repo= timeout=240 dnsseal=
for arg in $(cat /proc/cmdline); do
	case "$arg" in
	lab.scenario=*) scenario=${arg#*=} ;;
	lab.repo=*) repo=${arg#*=} ;;
	lab.timeout=*) timeout=${arg#*=} ;;
	lab.run=*) export LAB_RUN=${arg#*=} ;;
	lab.dnsseal=*) dnsseal=${arg#*=} ;;
	esac
done

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
mkdir -p /run/lock /dev/pts /dev/shm /run/netns
mount -t devpts devpts /dev/pts 2>/dev/null
mount -t tmpfs tmpfs /dev/shm
mount -t bpf bpf /sys/fs/bpf 2>/dev/null
mount -t cgroup2 cgroup2 /sys/fs/cgroup 2>/dev/null
mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null
hostname lab
ip link set lo up

export LAB_REPO=$repo LAB_DIR=$repo/test/lab LAB_OUT=$out LAB_SCENARIO=$scenario
export LAB_DNSSEAL=${dnsseal:-$repo/dist/dnsseal}

script=$LAB_DIR/scenarios/$scenario.sh
if [ ! -f "$script" ]; then
	echo "FAIL no scenario script $script in the guest" >"$out/result"
	exit
fi

# Modules every scenario uses; the rest is loaded on demand by the kernel through modprobe.
modprobe -a veth bridge esp4 esp6 xfrm_user xfrm4_tunnel xfrm6_tunnel tunnel4 tunnel6 \
	gcm aesni_intel seqiv echainiv nf_tables cls_bpf act_bpf sch_ingress virtio_rng \
	2>"$out/modprobe.err" || say "modprobe reported: $(tr '\n' ' ' <"$out/modprobe.err")"

# Instantiate AES-GCM for ESP once, here: the kernel self-tests an algorithm the first time it
# is used, which under TCG takes seconds — inside the first IKE exchange of a scenario that
# would eat a bounded negotiation wait (dnsseal's 2 s before-answer) and skew timings.
key=0x$(printf '%02x' $(seq 1 36) | tr -d '\n')
ip xfrm state add src 192.0.2.250 dst 192.0.2.251 proto esp spi 0x1 mode transport \
	aead 'rfc4106(gcm(aes))' "$key" 128 2>>"$out/modprobe.err" && ip xfrm state flush
echo "crypto-warm $(uptime_s)" >>"$out/timing"

echo "scenario-start $(uptime_s)" >>"$out/timing"
say "running scenario $scenario (timeout ${timeout}s)"
timeout -k 5 "$timeout" bash "$script" >"$out/scenario.log" 2>&1
rc=$?
echo "scenario-end $(uptime_s) rc=$rc" >>"$out/timing"
say "scenario $scenario exited with $rc"

if [ ! -s "$out/result" ]; then
	case $rc in
	124 | 137) echo "FAIL scenario timed out after ${timeout}s in the guest" >"$out/result" ;;
	0) echo "FAIL scenario exited 0 without writing a result" >"$out/result" ;;
	*) echo "FAIL scenario exited with status $rc before its assertions" >"$out/result" ;;
	esac
fi
dmesg >"$out/dmesg.log" 2>/dev/null
