#!/usr/bin/env bash
# TLS 1.2 / 1.1 / 1.0 between openssl s_client and s_server: AEAD suites (GCM, ChaCha20-Poly1305,
# CCM, CCM_8), CBC suites with and without encrypt-then-MAC (RFC 7366), RSA key exchange and
# ECDHE, RSA and ECDSA certificates; 3DES when this OpenSSL still has it.
# shellcheck source=tests/pcap/lib.sh disable=SC2154
. "$(dirname "$0")/lib.sh"
need_root_netns
pki
net_setup

# cipher  certificate  protocol-option  etm|noetm
cases=(
    "ECDHE-RSA-AES128-GCM-SHA256 rsa tls1_2 etm"
    "ECDHE-RSA-AES256-GCM-SHA384 rsa tls1_2 etm"
    "ECDHE-RSA-CHACHA20-POLY1305 rsa tls1_2 etm"
    "ECDHE-ECDSA-AES128-CCM ecdsa tls1_2 etm"
    "ECDHE-ECDSA-AES128-CCM8 ecdsa tls1_2 etm"
    "AES128-SHA rsa tls1_2 etm"
    "AES128-SHA rsa tls1_2 noetm"
    "AES256-SHA256 rsa tls1_2 etm"
    "AES256-SHA256 rsa tls1_2 noetm"
    "ECDHE-RSA-AES256-SHA384 rsa tls1_2 etm"
    "ECDHE-RSA-AES256-SHA384 rsa tls1_2 noetm"
    "ECDHE-ECDSA-AES256-SHA ecdsa tls1_2 noetm"
    "AES128-SHA rsa tls1_1 etm"
    "AES128-SHA rsa tls1_1 noetm"
    "AES128-SHA rsa tls1 etm"
    "ECDHE-RSA-AES256-SHA rsa tls1 noetm"
    "DES-CBC3-SHA rsa tls1_2 noetm"
)

for c in "${cases[@]}"; do
    read -r cipher cert proto etm <<<"$c"
    clist=$cipher
    case $proto in
    tls1_2) ver="TLS 1.2" ;;
    tls1_1) ver="TLS 1.1" clist="$cipher:@SECLEVEL=0" ;;
    tls1) ver="TLS 1.0" clist="$cipher:@SECLEVEL=0" ;;
    esac
    [ "$cipher" = DES-CBC3-SHA ] && clist="$cipher:@SECLEVEL=0"
    iana=$(openssl ciphers -stdname "$clist" 2>/dev/null | awk -v c="$cipher" '$3 == c {print $1}')
    if [ -z "$iana" ]; then
        t_log "skip $cipher: not available in this OpenSSL"
        continue
    fi
    new_case "$proto-$cipher-$etm"
    payload_bin "$d/cp1" 40000
    payload_bin "$d/sp1" 90000
    noetm=()
    [ "$etm" = noetm ] && noetm=(-no_etm)
    cap_start "$d/cap.pcap" || continue
    ossl_srv "$d" 1 "$cert" "-$proto" -cipher "$clist" -alpn h2,http/1.1 || {
        cap_stop
        continue
    }
    ossl_cli "$d" 1 -- "-$proto" -cipher "$clist" -alpn http/1.1 -nocommands "${noetm[@]}"
    srv_wait
    cap_stop
    check_peers "$d" 1 || continue
    eve_std "$ver" "$iana" http/1.1
    mm_check "$name" "$d" 1 "${EVE[@]}" "tls.get('resumed') is False" \
        "tls.get('plain_bytes_toserver') == 40000" "tls.get('plain_bytes_toclient') == 90000"
done
t_finish
