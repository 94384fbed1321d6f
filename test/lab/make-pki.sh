#!/bin/bash
# Make the lab's test CA and host certificates with strongSwan's `pki`, at test time, into DIR.
#
#   make-pki.sh DIR
#
# ECDSA P-256 keys (needs the openssl plugin, package libstrongswan-standard-plugins); falls back
# to RSA 2048 with a printed note when this strongSwan cannot make ECDSA keys. DIR/keytype records
# which was used. Certificates are valid for 2 days; identities are DNS names (subjectAltName).
#
#   short name   identity              used as
#   router       router.lab.test       the router running dnsseal and its charon
#   hub          hub.saas.test         the tunnel hub gateway
#   peer         peer.partner.test     the transport/tunnel peer
#   impostor     other.partner.test    a valid certificate for the wrong name (identity tests)
#   hub-big      hub.saas.test         the hub's identity behind a long chain: CA -> big-im1 ->
#                                      big-im2 -> hub-big, RSA 4096 each, 40 subjectAltNames on
#                                      the leaf: an IKE_AUTH of ~6 kB that needs IKE fragmentation
#                                      on a 1280-byte path (hub-big.im1.pem, hub-big.im2.pem: the
#                                      intermediates the hub sends along; lib/charon.sh's swan_conf
#                                      installs them)
set -euo pipefail

dir=$1
mkdir -p "$dir"
cd "$dir"
command -v pki >/dev/null || { echo "lab: pki: strongSwan's pki not found: install strongswan-pki" >&2; exit 1; }
# Debian's pki probes a TPM on every call; keep its stderr for real errors only.
pki() { command pki "$@" 2> >(grep -v -e '^TPM 2.0' -e "^plugin 'tpm'" >&2); }

if pki --gen --type ecdsa --size 256 --outform pem >ca.key 2>/dev/null; then
	keytype=ecdsa
	gen() { pki --gen --type ecdsa --size 256 --outform pem; }
else
	echo "lab: pki: this strongSwan cannot make ECDSA keys (no openssl plugin: install" \
		"libstrongswan-standard-plugins); using RSA 2048" >&2
	keytype=rsa
	gen() { pki --gen --type rsa --size 2048 --outform pem; }
	gen >ca.key
fi
echo "$keytype" >keytype

pki --self --ca --lifetime 2 --in ca.key --type "$keytype" --outform pem \
	--dn "C=XX, O=dnsseal lab, CN=dnsseal lab CA" >ca.pem

while read -r short id; do
	gen >"$short.key"
	pki --pub --in "$short.key" --type "$keytype" |
		pki --issue --cacert ca.pem --cakey ca.key --type pub --lifetime 2 --outform pem \
			--dn "C=XX, O=dnsseal lab, CN=$id" --san "$id" --flag serverAuth >"$short.pem"
	echo "$id" >"$short.id"
done <<'HOSTS'
router router.lab.test
hub hub.saas.test
peer peer.partner.test
impostor other.partner.test
HOSTS

# The long chain (RSA 4096 is what large chains in the wild use; the key generation takes a few
# seconds on the host, not in the guest).
rsa() { pki --gen --type rsa --size 4096 --outform pem; }
rsa >big-im1.key
pki --pub --in big-im1.key --type rsa |
	pki --issue --cacert ca.pem --cakey ca.key --type pub --ca --lifetime 2 --outform pem \
		--dn "C=XX, O=dnsseal lab, OU=long chain, CN=dnsseal lab intermediate 1" >hub-big.im1.pem
rsa >big-im2.key
pki --pub --in big-im2.key --type rsa |
	pki --issue --cacert hub-big.im1.pem --cakey big-im1.key --type pub --ca --lifetime 2 --outform pem \
		--dn "C=XX, O=dnsseal lab, OU=long chain, CN=dnsseal lab intermediate 2" >hub-big.im2.pem
rsa >hub-big.key
sans=(--san hub.saas.test)
for i in $(seq 1 40); do sans+=(--san "alias-$i.hub.saas.test"); done
pki --pub --in hub-big.key --type rsa |
	pki --issue --cacert hub-big.im2.pem --cakey big-im2.key --type pub --lifetime 2 --outform pem \
		--dn "C=XX, O=dnsseal lab, OU=long chain, CN=hub.saas.test" "${sans[@]}" --flag serverAuth >hub-big.pem
echo hub.saas.test >hub-big.id
