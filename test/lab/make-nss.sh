#!/bin/bash
# NSS databases for Libreswan's pluto (scenarios libreswan-*, test/lab/lib/libreswan.sh), made on
# the host right after make-pki.sh (under TCG the four tool starts cost the guest 10-40 s):
#
#   make-nss.sh DIR NAME…
#
# DIR/nss-NAME/: an empty-password NSS database with the lab CA (nickname lab-ca, trusted for
# peers) and NAME's certificate and key from DIR (nickname NAME, imported as PKCS#12). Needs
# certutil and pk12util (libnss3-tools) and openssl; without them it says so and makes nothing
# (the libreswan scenarios then SKIP with the reason).
set -euo pipefail

dir=$1
shift
for tool in certutil pk12util openssl; do
	command -v "$tool" >/dev/null || { echo "lab: make-nss: $tool not found (make deps: libnss3-tools, openssl); no NSS databases for pluto" >&2; exit 0; }
done
for name in "$@"; do
	db=$dir/nss-$name
	rm -rf "$db" && mkdir -p "$db"
	certutil -N -d "sql:$db" --empty-password
	certutil -A -d "sql:$db" -n lab-ca -t CT,, -a -i "$dir/ca.pem"
	openssl pkcs12 -export -name "$name" -inkey "$dir/$name.key" -in "$dir/$name.pem" \
		-passout pass: -out "$db/$name.p12"
	pk12util -i "$db/$name.p12" -d "sql:$db" -W '' -K '' >/dev/null
	rm -f "$db/$name.p12"
done
