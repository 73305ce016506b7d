#!/usr/bin/env bash
# GnuTLS peers (key log through SSLKEYLOGFILE): gnutls-cli against gnutls-serv --echo for
# TLS 1.3 AES-GCM / ChaCha20 and TLS 1.2 GCM / CBC (with and without encrypt-then-MAC), and
# the cross-implementation pairs gnutls-cli -> openssl s_server and s_client -> gnutls-serv.
# shellcheck source=tests/pcap/lib.sh disable=SC2154
. "$(dirname "$0")/lib.sh"
need_root_netns
need_cmd gnutls-cli gnutls-serv
pki
net_setup

V13="NORMAL:-VERS-ALL:+VERS-TLS1.3:-CIPHER-ALL"
V12="NORMAL:-VERS-ALL:+VERS-TLS1.2:-CIPHER-ALL:-KX-ALL:+ECDHE-RSA"
# name | priority | version | IANA suite | server (gnutls|openssl) | client (gnutls|openssl)
cases=(
    "g13-aes128gcm|$V13:+AES-128-GCM|TLS 1.3|TLS_AES_128_GCM_SHA256|gnutls|gnutls"
    "g13-aes256gcm|$V13:+AES-256-GCM|TLS 1.3|TLS_AES_256_GCM_SHA384|gnutls|gnutls"
    "g13-chacha|$V13:+CHACHA20-POLY1305|TLS 1.3|TLS_CHACHA20_POLY1305_SHA256|gnutls|gnutls"
    "g12-aes128gcm|$V12:+AES-128-GCM|TLS 1.2|TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256|gnutls|gnutls"
    "g12-aes256gcm|$V12:+AES-256-GCM|TLS 1.2|TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384|gnutls|gnutls"
    "g12-cbc-etm|$V12:+AES-128-CBC:-MAC-ALL:+SHA1|TLS 1.2|TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA|gnutls|gnutls"
    "g12-cbc-noetm|$V12:+AES-256-CBC:-MAC-ALL:+SHA1:%NO_ETM|TLS 1.2|TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA|gnutls|gnutls"
    "g12-rsa-cbc256|NORMAL:-VERS-ALL:+VERS-TLS1.2:-CIPHER-ALL:-KX-ALL:+RSA:+AES-128-CBC:-MAC-ALL:+SHA256|TLS 1.2|TLS_RSA_WITH_AES_128_CBC_SHA256|gnutls|gnutls"
    "x-gcli-ossl13|$V13:+CHACHA20-POLY1305|TLS 1.3|TLS_CHACHA20_POLY1305_SHA256|openssl|gnutls"
    "x-gcli-ossl12|$V12:+AES-128-GCM|TLS 1.2|TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256|openssl|gnutls"
    "x-scli-gserv13|$V13:+AES-256-GCM|TLS 1.3|TLS_AES_256_GCM_SHA384|gnutls|openssl"
    "x-scli-gserv12|$V12:+AES-256-GCM|TLS 1.2|TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384|gnutls|openssl"
)

for c in "${cases[@]}"; do
    IFS='|' read -r cname prio ver iana server client <<<"$c"
    new_case "$cname"
    payload_hex "$d/cp1" 50000
    if [ "$server" = gnutls ]; then
        cp "$d/cp1" "$d/sp1" # an echo server
    else
        payload_bin "$d/sp1" 80000
    fi
    cap_start "$d/cap.pcap" || continue
    if [ "$server" = gnutls ]; then
        srv_start_nostdin "$d" gnutls-serv --echo --crlf -a -p "$S_PORT" --priority "$prio" \
            --alpn h2 --x509certfile "$T_PKI/rsa.crt" --x509keyfile "$T_PKI/rsa.key" || {
            cap_stop
            continue
        }
    else
        ossl_srv "$d" 1 rsa -alpn h2 || {
            cap_stop
            continue
        }
    fi
    if [ "$client" = gnutls ]; then
        SSLKEYLOGFILE=$d/keys.log cli_run "$d" 1 -- gnutls-cli -p "$S_PORT" \
            --x509cafile "$T_PKI/ca.crt" --sni-hostname "$CERT_SUBJECT_CN" \
            --verify-hostname "$CERT_SUBJECT_CN" --priority "$prio" --alpn h2 \
            --logfile "$d/gnutls-cli.log" "$S_IP"
    else
        case $ver in
        "TLS 1.3") vopt=(-tls1_3 -ciphersuites "$iana") ;;
        *) vopt=(-tls1_2) ;;
        esac
        ossl_cli "$d" 1 -- "${vopt[@]}" -alpn h2 -nocommands
    fi
    if [ "$server" = gnutls ]; then
        srv_wait kill
        cap_stop
        check_peers "$d" 1 noserver || continue
    else
        srv_wait
        cap_stop
        check_peers "$d" 1 || continue
    fi
    eve_std "$ver" "$iana" h2
    mm_check "$name" "$d" 1 "${EVE[@]}"
done
t_finish
