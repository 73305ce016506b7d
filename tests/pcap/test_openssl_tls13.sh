#!/usr/bin/env bash
# TLS 1.3 between openssl s_client and s_server, one capture per cipher suite (RSA and ECDSA
# certificates, SNI, ALPN): both plaintext directions byte-exact and the eve.json tls fields.
# shellcheck source=tests/pcap/lib.sh disable=SC2154
. "$(dirname "$0")/lib.sh"
need_root_netns
pki
net_setup

for spec in TLS_AES_128_GCM_SHA256:rsa TLS_AES_256_GCM_SHA384:ecdsa \
    TLS_CHACHA20_POLY1305_SHA256:rsa TLS_AES_128_CCM_SHA256:ecdsa TLS_AES_128_CCM_8_SHA256:rsa; do
    cs=${spec%%:*}
    cert=${spec#*:}
    new_case "tls13-$cs-$cert"
    payload_bin "$d/cp1" 70000
    payload_bin "$d/sp1" 150000
    cap_start "$d/cap.pcap" || continue
    ossl_srv "$d" 1 "$cert" -tls1_3 -ciphersuites "$cs" -alpn h2,http/1.1 || {
        cap_stop
        continue
    }
    ossl_cli "$d" 1 -- -tls1_3 -ciphersuites "$cs" -alpn h2,http/1.1 -nocommands
    srv_wait
    cap_stop
    check_peers "$d" 1 || continue
    eve_std "TLS 1.3" "$cs" h2
    mm_check "$name" "$d" 1 "${EVE[@]}" "tls.get('resumed') is False" \
        "tls.get('early_data') is False" "tls.get('records_toserver', 0) > 0" \
        "tls.get('records_toclient', 0) > 0" "tls.get('plain_bytes_toserver') == 70000" \
        "tls.get('plain_bytes_toclient') == 150000"
done
t_finish
