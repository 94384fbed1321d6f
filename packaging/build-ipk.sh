#!/bin/sh
# Builds the OpenWrt package (.ipk) from an already-built musl executable, with tar and gzip
# only. The layout is what OpenWrt's ipkg-build writes and opkg reads: a gzip'd tar holding
# ./debian-binary ("2.0"), ./data.tar.gz (the files, from /) and ./control.tar.gz (control,
# conffiles, postinst, prerm, postrm), every entry owned by 0:0.
# The procd init script and the default configuration are printed by --host-binary (an
# executable that runs here, built from the same source): the musl one may be for another
# architecture.
#
#   packaging/build-ipk.sh --binary dist/dnsseal-linux-arm64-musl --arch aarch64_generic \
#       --out build/package [--version V] [--host-binary dist/dnsseal]
#
# --arch is OpenWrt's package architecture (x86_64, aarch64_generic, aarch64_cortex-a53, …:
# the device's `opkg print-architecture`). IPK_GZIP (default -9) is gzip's level. Prints the
# path of the .ipk.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
binary='' out='' version='' arch='' host=''
maintainer=${DEB_MAINTAINER:-dnsseal maintainers <root@localhost>}
while [ $# -gt 0 ]; do
	case "$1" in
	--binary) binary=$2 ;;
	--out) out=$2 ;;
	--version) version=$2 ;;
	--arch) arch=$2 ;;
	--host-binary) host=$2 ;;
	*) echo "build-ipk: unknown argument $1" >&2; exit 1 ;;
	esac
	shift 2
done
[ -n "$binary" ] && [ -n "$out" ] && [ -n "$arch" ] || { echo "build-ipk: --binary, --arch and --out are required" >&2; exit 1; }
[ -f "$binary" ] || { echo "build-ipk: $binary does not exist (make dist)" >&2; exit 1; }
host=${host:-$repo/dist/dnsseal}
[ -x "$host" ] || { echo "build-ipk: $host is not an executable (make build)" >&2; exit 1; }
version=${version:-$(sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' "$repo/package.json")}

mkdir -p "$out"
stage=$(mktemp -d "$out/.ipk-XXXXXX")
trap 'rm -rf "$stage"' EXIT
data=$stage/data
ctrl=$stage/control
install -d -m 755 "$data/usr/sbin" "$data/etc/init.d" "$data/etc/dnsseal" "$ctrl"
ln "$binary" "$data/usr/sbin/dnsseal" 2>/dev/null || cp "$binary" "$data/usr/sbin/dnsseal"
chmod 755 "$data/usr/sbin/dnsseal"
"$host" install-unit --openwrt --binary /usr/sbin/dnsseal --print > "$data/etc/init.d/dnsseal"
chmod 755 "$data/etc/init.d/dnsseal"
"$host" config-default > "$data/etc/dnsseal/dnsseal.yaml"
chmod 644 "$data/etc/dnsseal/dnsseal.yaml"

size=$(du -sb "$data" | cut -f1)
sed -e "s/@VERSION@/$version/" -e "s/@ARCH@/$arch/" -e "s/@SIZE@/$size/" -e "s/@MAINTAINER@/$maintainer/" \
	"$here/openwrt/control.in" > "$ctrl/control"
echo /etc/dnsseal/dnsseal.yaml > "$ctrl/conffiles"
for s in postinst prerm postrm; do install -m 755 "$here/openwrt/$s" "$ctrl/$s"; done
chmod 644 "$ctrl/control" "$ctrl/conffiles"

tarz() { # DIR OUT: a reproducible, root-owned gzip'd tar of DIR's contents
	(cd "$1" && tar --format=gnu --numeric-owner --owner=0 --group=0 --sort=name \
		--mtime="@${SOURCE_DATE_EPOCH:-0}" -cf - .) | gzip "${IPK_GZIP:--9}" -n > "$2"
}
tarz "$data" "$stage/data.tar.gz"
tarz "$ctrl" "$stage/control.tar.gz"
echo 2.0 > "$stage/debian-binary"
ipk="$out/dnsseal_${version}_${arch}.ipk"
(cd "$stage" && tar --format=gnu --numeric-owner --owner=0 --group=0 --mtime="@${SOURCE_DATE_EPOCH:-0}" \
	-cf - ./debian-binary ./data.tar.gz ./control.tar.gz) | gzip "${IPK_GZIP:--9}" -n > "$ipk"
echo "$ipk"
