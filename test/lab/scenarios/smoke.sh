#!/bin/bash
# smoke: the guest booted on the host root and has what the build machine's kernel lacks:
# ESP with AES-GCM in XFRM, veth, nf_tables, tc BPF. No network topology.
. "$LAB_DIR/lib/lab.sh"

key=0x$(printf '%02x' $(seq 1 36) | tr -d '\n') # AES-256 key + 4-byte salt
evaltest <<EOF_EVAL
lab::uname -r::^6\.::YES
lab::grep -E '^(esp4|esp6|xfrm_user|veth|nf_tables|cls_bpf|sch_ingress) ' /proc/modules::Live::7
lab::ip xfrm state add src 192.0.2.1 dst 192.0.2.2 proto esp spi 0x100 mode tunnel aead 'rfc4106(gcm(aes))' $key 128 && ip xfrm state::aead rfc4106\(gcm\(aes\)\)::1
lab::grep -A6 '^name *: rfc4106(gcm(aes))' /proc/crypto::selftest *: passed::YES
lab::$LAB_CHARON --version 2>&1 || ls -l $LAB_CHARON::charon|strongSwan::YES
EOF_EVAL
