#!/bin/bash
# Runs the eBPF data path tests on Debian 12's kernel (6.1: no tcx, so the clsact path; an older
# verifier) inside a kernel-lab guest: the lab's initramfs and QEMU line (test/lab), the host root
# over 9p, and a shadow repo in build/bpf61/ whose only scenario runs `bun test` on the eBPF tests.
#
#   test/bpf/kernel61.sh [bun test paths…]     (root; LAB_KERNEL, LAB_TIMEOUT=1200, LAB_MEM=2048)
# Exit 0 when the guest reports PASS. Output: build/bpf61/out/{result,bun.log,console.log}.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
kernel=${LAB_KERNEL:-$(ls -1 /boot/vmlinuz-6.1.* 2>/dev/null | sort -V | tail -n1)}
[ -n "$kernel" ] || { echo "kernel61: SKIP: no /boot/vmlinuz-6.1.*"; exit 0; }
[ "$(id -u)" = 0 ] || { echo "kernel61: SKIP: needs root"; exit 0; }
kver=${kernel#/boot/vmlinuz-}
timeout_s=${LAB_TIMEOUT:-1200}
tests=("$@")
[ ${#tests[@]} -gt 0 ] || tests=(test/bpf test/datapath/ebpf test/netns/gateway-datapath.test.ts test/netns/host-datapath.test.ts test/netns/iface-watch.test.ts)

initrd=$repo/build/lab/initramfs-$kver.cpio.gz
"$repo/test/lab/build-initramfs.sh" "$kver" "$initrd"

work=$repo/build/bpf61
shadow=$work/repo
out=$work/out
rm -rf "$shadow" "$out"
mkdir -p "$shadow/test/lab/scenarios" "$out"
for e in "$repo"/* "$repo"/.[!.]*; do
	case ${e##*/} in test | build) ;; *) ln -sr "$e" "$shadow/${e##*/}" ;; esac
done
mkdir -p "$shadow/build" && ln -sr "$repo/build/dnsseal.bpf.o" "$shadow/build/dnsseal.bpf.o"
# the intercept object too, for test/intercept (its helper would try to compile on the read-only root)
[ ! -e "$repo/build/intercept.bpf.o" ] || ln -sr "$repo/build/intercept.bpf.o" "$shadow/build/intercept.bpf.o"
for e in "$repo"/test/*; do [ "${e##*/}" = lab ] || ln -sr "$e" "$shadow/test/${e##*/}"; done
for e in "$repo"/test/lab/*; do [ "${e##*/}" = scenarios ] || ln -sr "$e" "$shadow/test/lab/${e##*/}"; done
cat >"$shadow/test/lab/scenarios/bpf61.sh" <<EOF_SCENARIO
#!/bin/bash
cd "\$LAB_REPO"
export HOME=/tmp
uname -r
if node_modules/.bin/bun test --timeout 120000 ${tests[*]} >"\$LAB_OUT/bun.log" 2>&1; then
	echo "PASS \$(grep -E '^ [0-9]+ pass' "\$LAB_OUT/bun.log" | tr -d ' ') on \$(uname -r)" >"\$LAB_OUT/result"
else
	echo "FAIL \$(grep -E '^ [0-9]+ (pass|fail)' "\$LAB_OUT/bun.log" | tr -d ' ' | tr '\n' ' ')on \$(uname -r)" >"\$LAB_OUT/result"
fi
EOF_SCENARIO

echo "kernel61: booting $kernel (TCG), up to ${timeout_s}s"
timeout -k 10 "$timeout_s" qemu-system-x86_64 \
	-machine q35 -accel tcg,thread=multi -cpu max -smp "${LAB_SMP:-2}" -m "${LAB_MEM:-2048}" \
	-display none -monitor none -serial "file:$out/console.log" -no-reboot -nic none \
	-kernel "$kernel" -initrd "$initrd" \
	-append "console=ttyS0 quiet panic=-1 lab.scenario=bpf61 lab.repo=$shadow lab.run=$out lab.timeout=$((timeout_s - 60))" \
	-fsdev local,id=hostroot,path=/,security_model=none,readonly=on,multidevs=remap \
	-device virtio-9p-pci,fsdev=hostroot,mount_tag=hostroot \
	-fsdev "local,id=labout,path=$out,security_model=none,multidevs=remap" \
	-device virtio-9p-pci,fsdev=labout,mount_tag=labout \
	-device virtio-rng-pci </dev/null >"$out/qemu.log" 2>&1 || true
result=$(head -n1 "$out/result" 2>/dev/null || echo "FAIL no result (see $out/console.log)")
echo "kernel61: $result"
grep -E '^\((fail|skip)\)|skipping' "$out/bun.log" 2>/dev/null | head -40 || true
[ "${result%% *}" = PASS ]
