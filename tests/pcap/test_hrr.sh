#!/usr/bin/env bash
# TLS 1.3 HelloRetryRequest (RFC 8446 section 4.1.4): the server accepts only P-256, the client
# offers a key share for X25519 first -> HRR, a second ClientHello, then the handshake; the
# transcript hash restarts with message_hash, so a wrong HRR handling breaks the key schedule
# only in the engine's own Finished checks - the application data must still decrypt.
# shellcheck source=tests/pcap/lib.sh disable=SC2154
. "$(dirname "$0")/lib.sh"
need_root_netns
pki
net_setup
HRR_RANDOM=cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c

for spec in TLS_AES_128_GCM_SHA256:P-256 TLS_AES_256_GCM_SHA384:P-384 \
    TLS_CHACHA20_POLY1305_SHA256:P-256; do
    cs=${spec%%:*}
    grp=${spec#*:}
    new_case "hrr-$cs-$grp"
    payload_bin "$d/cp1" 30000
    payload_bin "$d/sp1" 50000
    cap_start "$d/cap.pcap" || continue
    ossl_srv "$d" 1 ecdsa -tls1_3 -ciphersuites "$cs" -groups "$grp" -alpn h2 || {
        cap_stop
        continue
    }
    ossl_cli "$d" 1 -- -tls1_3 -ciphersuites "$cs" -groups "X25519:$grp" -alpn h2 -nocommands
    srv_wait
    cap_stop
    check_peers "$d" 1 || continue
    if ! cap_has "$d/cap.pcap" "$HRR_RANDOM"; then
        t_fail "$name" "HARNESS: no HelloRetryRequest in the capture"
        continue
    fi
    eve_std "TLS 1.3" "$cs" h2
    mm_check "$name" "$d" 1 "${EVE[@]}"
done
t_finish
