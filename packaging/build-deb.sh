#!/bin/sh
# Builds the Debian package from an already-built executable, with dpkg-deb only (no network,
# no debhelper, no fakeroot: --root-owner-group). The texts that come from the code — the
# systemd unit and the default configuration — are printed by the executable itself
# (`install-unit --print`, `config-default`), so the package carries exactly what the binary
# embeds.
#
#   packaging/build-deb.sh --binary dist/dnsseal --out build/package \
#       [--version V] [--arch A] [--host-binary B] [--man FILE] [--compress xz|gzip|zstd|none]
#
# --host-binary runs on this machine and prints the texts (default: --binary itself, which
# must then run here). Prints the path of the .deb.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
binary='' out='' version='' arch='' host='' man='' compress=xz
maintainer=${DEB_MAINTAINER:-dnsseal maintainers <root@localhost>}
while [ $# -gt 0 ]; do
	case "$1" in
	--binary) binary=$2 ;;
	--out) out=$2 ;;
	--version) version=$2 ;;
	--arch) arch=$2 ;;
	--host-binary) host=$2 ;;
	--man) man=$2 ;;
	--compress) compress=$2 ;;
	*) echo "build-deb: unknown argument $1" >&2; exit 1 ;;
	esac
	shift 2
done
[ -n "$binary" ] && [ -n "$out" ] || { echo "build-deb: --binary and --out are required" >&2; exit 1; }
[ -x "$binary" ] || { echo "build-deb: $binary is not an executable (make build)" >&2; exit 1; }
host=${host:-$binary}
version=${version:-$(sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' "$repo/package.json")}
arch=${arch:-$(dpkg --print-architecture)}

mkdir -p "$out"
stage=$(mktemp -d "$out/.deb-XXXXXX")
trap 'rm -rf "$stage"' EXIT
chmod 755 "$stage"

install -d -m 755 "$stage/DEBIAN" "$stage/usr/sbin" "$stage/lib/systemd/system" "$stage/etc/dnsseal" \
	"$stage/etc/default" "$stage/usr/share/dnsseal" "$stage/usr/share/doc/dnsseal"
# a hard link when the tree is on the same file system: the executable is ~100 MB
ln "$binary" "$stage/usr/sbin/dnsseal" 2>/dev/null || cp "$binary" "$stage/usr/sbin/dnsseal"
chmod 755 "$stage/usr/sbin/dnsseal"

"$host" install-unit --systemd --binary /usr/sbin/dnsseal --print > "$stage/lib/systemd/system/dnsseal.service"
"$host" config-default > "$stage/etc/dnsseal/dnsseal.yaml"
install -m 644 "$here/debian/default" "$stage/etc/default/dnsseal"
install -m 644 "$repo/monitoring/grafana/dnsseal.json" "$repo/monitoring/prometheus/dnsseal-alerts.yaml" \
	"$repo/monitoring/prometheus/dnsseal-alerts.test.yaml" "$stage/usr/share/dnsseal/"
install -m 644 "$repo/README.md" "$stage/usr/share/doc/dnsseal/README.md"
install -m 644 "$here/debian/copyright" "$stage/usr/share/doc/dnsseal/copyright"
if [ -n "$man" ]; then
	install -d -m 755 "$stage/usr/share/man/man8"
	gzip -9n < "$man" > "$stage/usr/share/man/man8/dnsseal.8.gz"
	chmod 644 "$stage/usr/share/man/man8/dnsseal.8.gz"
fi
chmod 644 "$stage/lib/systemd/system/dnsseal.service" "$stage/etc/dnsseal/dnsseal.yaml"

for s in postinst prerm postrm; do install -m 755 "$here/debian/$s" "$stage/DEBIAN/$s"; done
printf '%s\n' /etc/dnsseal/dnsseal.yaml /etc/default/dnsseal > "$stage/DEBIAN/conffiles"
glibc=$(objdump -T "$binary" 2>/dev/null | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -1)
size=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
sed -e "s/@VERSION@/$version/" -e "s/@ARCH@/$arch/" -e "s/@SIZE@/$size/" -e "s/@MAINTAINER@/$maintainer/" \
	-e "s/@GLIBC@/${glibc:-2.17}/" "$here/debian/control.in" > "$stage/DEBIAN/control"
(cd "$stage" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | LC_ALL=C sort -z | xargs -0 md5sum) > "$stage/DEBIAN/md5sums"
chmod 644 "$stage/DEBIAN/control" "$stage/DEBIAN/conffiles" "$stage/DEBIAN/md5sums"

deb="$out/dnsseal_${version}_${arch}.deb"
case "$compress" in
none) zopt='-Znone' ;;
gzip) zopt='-Zgzip -z9' ;;
xz) zopt='-Zxz -z6' ;;
zstd) zopt='-Zzstd -z19' ;;
*) echo "build-deb: --compress xz|gzip|zstd|none" >&2; exit 1 ;;
esac
# shellcheck disable=SC2086
dpkg-deb --root-owner-group $zopt --build "$stage" "$deb" >/dev/null
echo "$deb"
