#!/usr/bin/env bash
# Session resumption and renegotiation (openssl s_client / s_server, one server process per
# case so its ticket key and session cache survive between the two connections):
#   TLS 1.3 PSK resumption (ticket), TLS 1.2 session-ID resumption (-no_ticket), TLS 1.2
#   ticket resumption: two connections in one capture, the second "resumed": true;
#   TLS 1.2 client-initiated renegotiation ("R" in s_client command mode), with and without
#   resumption on renegotiation: data before and after the new handshake decrypts.
# shellcheck source=tests/pcap/lib.sh disable=SC2154
. "$(dirname "$0")/lib.sh"
need_root_netns
pki
net_setup

# name | protocol options for both sides | extra client options | version | IANA suite
cases=(
    "tls13-psk|-tls1_3 -ciphersuites TLS_AES_128_GCM_SHA256||TLS 1.3|TLS_AES_128_GCM_SHA256"
    "tls12-sessid|-tls1_2 -cipher ECDHE-RSA-AES128-GCM-SHA256|-no_ticket|TLS 1.2|TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"
    "tls12-ticket|-tls1_2 -cipher ECDHE-RSA-CHACHA20-POLY1305||TLS 1.2|TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256"
    "tls12-sessid-cbc|-tls1_2 -cipher AES128-SHA|-no_ticket -no_etm|TLS 1.2|TLS_RSA_WITH_AES_128_CBC_SHA"
)
for c in "${cases[@]}"; do
    IFS='|' read -r cname popt copt ver iana <<<"$c"
    new_case "$cname"
    # shellcheck disable=SC2206
    popt=($popt)
    # shellcheck disable=SC2206
    copt=($copt)
    payload_bin "$d/cp1" 30000
    payload_bin "$d/sp1" 50000
    payload_bin "$d/cp2" 20000
    payload_bin "$d/sp2" 60000
    cap_start "$d/cap.pcap" || continue
    ossl_srv "$d" 2 rsa "${popt[@]}" -alpn h2 || {
        cap_stop
        continue
    }
    ossl_cli "$d" 1 -- "${popt[@]}" "${copt[@]}" -alpn h2 -nocommands -sess_out "$d/sess"
    ossl_cli "$d" 2 -- "${popt[@]}" "${copt[@]}" -alpn h2 -nocommands -sess_in "$d/sess"
    srv_wait
    cap_stop
    check_peers "$d" 2 || continue
    eve_std "$ver" "$iana" h2
    # A resumed TLS 1.3 session has no certificate; TLS 1.2 resumption has none either.
    mm_check "$name" "$d" 2 "${EVE[@]:0:3}" "${EVE[@]:6}" "tls.get('alpn') == 'h2'" \
        "tls.get('sni') == '$CERT_SUBJECT_CN'" \
        "1:tls.get('resumed') is False" "1:'$CERT_SUBJECT_CN' in str(tls.get('subject'))" \
        "2:tls.get('resumed') is True"
done

# Renegotiation: the client sends cpa, then "R" (renegotiate) alone in one read, then cpb.
feed_reneg() {
    local d=$1 i=$2
    cat "$d/cpa"
    sleep 0.7
    printf 'R\n'
    sleep 0.7
    cat "$d/cpb"
    wait_size "$d/co$i" "$(fsize "$d/sp$i")" 30
    sleep 0.1
}
for c in "reneg-gcm|ECDHE-RSA-AES128-GCM-SHA256|TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256|" \
    "reneg-cbc-full|AES256-SHA|TLS_RSA_WITH_AES_256_CBC_SHA|-no_resumption_on_reneg"; do
    IFS='|' read -r cname cipher iana sopt <<<"$c"
    new_case "$cname"
    payload_hex "$d/cpa" 30000
    payload_hex "$d/cpb" 40000
    cat "$d/cpa" "$d/cpb" >"$d/cp1"
    payload_bin "$d/sp1" 50000
    cap_start "$d/cap.pcap" || continue
    # shellcheck disable=SC2086
    ossl_srv "$d" 1 rsa -tls1_2 -cipher "$cipher" -client_renegotiation $sopt || {
        cap_stop
        continue
    }
    ossl_cli "$d" 1 feed_reneg -- -tls1_2 -cipher "$cipher"
    srv_wait
    cap_stop
    check_peers "$d" 1 || continue
    if ! grep -q RENEGOTIATING "$d/cli1.err"; then
        t_fail "$name" "HARNESS: s_client did not renegotiate: $(tail -c 300 "$d/cli1.err")"
        continue
    fi
    if [ "$(grep -c '^CLIENT_RANDOM' "$d/keys.log")" != 2 ]; then
        t_fail "$name" "HARNESS: expected 2 CLIENT_RANDOM lines (2 handshakes) in keys.log"
        continue
    fi
    eve_std "TLS 1.2" "$iana"
    mm_check "$name" "$d" 1 "${EVE[@]}"
done
t_finish
