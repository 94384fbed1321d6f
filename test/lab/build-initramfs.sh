#!/bin/bash
# Build the lab's initramfs: static busybox, the stage-1 init, and the kernel modules needed to
# reach the host root over virtio-9p with an overlay on top (dependencies resolved from
# modules.dep, in load order). Rebuilt only when an input changes.
#
#   build-initramfs.sh KERNEL_RELEASE OUTPUT.cpio.gz
set -euo pipefail

kver=$1
out=$2
here=$(cd "$(dirname "$0")" && pwd)
moddir=/lib/modules/$kver
busybox=$(command -v busybox || true)

die() { echo "lab: initramfs: $*" >&2; exit 1; }

[ -f "$moddir/modules.dep" ] || die "$moddir/modules.dep missing: install linux-image-amd64 (modules for $kver)"
[ -n "$busybox" ] || die "busybox not found: install busybox-static"
file -L "$busybox" 2>/dev/null | grep -q 'statically linked' ||
	ldd "$busybox" 2>&1 | grep -q 'not a dynamic executable' ||
	die "$busybox is not statically linked: install busybox-static"

# The modules stage 1 loads; their dependencies are added from modules.dep.
wanted=(virtio_pci 9pnet_virtio 9p overlay)

declare -A path_of=() deps_of=() seen=()
while IFS= read -r line; do
	ko=${line%%:*}
	name=${ko##*/}
	name=${name%.ko*}
	path_of[${name//-/_}]=$ko
	deps_of[${name//-/_}]=${line#*:}
done <"$moddir/modules.dep"

order=()
add_module() {
	local name=${1//-/_} dep depname
	[ -z "${seen[$name]:-}" ] || return 0
	seen[$name]=1
	if [ -z "${path_of[$name]:-}" ]; then
		# Built into the kernel: nothing to load.
		grep -qE "/${name//_/[-_]}\.ko" "$moddir/modules.builtin" 2>/dev/null && return 0
		die "module $name not found in $moddir (neither loadable nor built in)"
	fi
	for dep in ${deps_of[$name]}; do
		depname=${dep##*/}
		add_module "${depname%.ko*}"
	done
	order+=("${path_of[$name]}")
}
for m in "${wanted[@]}"; do add_module "$m"; done

# Rebuild only when the inputs change.
stamp=$(
	{
		echo "$kver"
		sha256sum "$here/initramfs/init" "$busybox" "$0"
		for ko in "${order[@]}"; do stat -c '%n %s %Y' "$moddir/$ko"; done
	} | sha256sum | cut -c1-16
)
if [ -f "$out" ] && [ "$(cat "$out.stamp" 2>/dev/null)" = "$stamp" ]; then
	exit 0
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp"/{bin,dev,proc,sys,tmp,modules}
cp "$busybox" "$tmp/bin/busybox"
for applet in sh mount insmod switch_root cat cut grep sleep wc tr mkdir poweroff echo; do
	ln -s busybox "$tmp/bin/$applet"
done
install -m 0755 "$here/initramfs/init" "$tmp/init"
: >"$tmp/modules.order"
for ko in "${order[@]}"; do
	base=${ko##*/}
	case "$base" in
	*.ko) cp "$moddir/$ko" "$tmp/modules/$base" ;;
	*.ko.xz) xz -dc "$moddir/$ko" >"$tmp/modules/${base%.xz}"; base=${base%.xz} ;;
	*.ko.zst) zstd -qdc "$moddir/$ko" >"$tmp/modules/${base%.zst}"; base=${base%.zst} ;;
	*.ko.gz) gzip -dc "$moddir/$ko" >"$tmp/modules/${base%.gz}"; base=${base%.gz} ;;
	*) die "unknown module format: $ko" ;;
	esac
	echo "$base" >>"$tmp/modules.order"
done
# /dev/console must exist before devtmpfs is mounted, or early output is lost.
mknod -m 600 "$tmp/dev/console" c 5 1 2>/dev/null || true

mkdir -p "$(dirname "$out")"
# Another harness may build the same file at the same time: write aside, then rename.
(cd "$tmp" && find . -print0 | cpio --null -o -H newc --quiet | gzip -1) >"$out.tmp.$$"
mv "$out.tmp.$$" "$out"
echo "$stamp" >"$out.stamp.$$"
mv "$out.stamp.$$" "$out.stamp"
echo "lab: initramfs built: $out (${#order[@]} modules: $(tr '\n' ' ' <"$tmp/modules.order"))"
