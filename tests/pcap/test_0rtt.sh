#!/usr/bin/env bash
# TLS 1.3 0-RTT: s_server -early_data; the first connection saves the session, the second
# sends early data (s_client -early_data FILE) and then its normal data.
#   - full key log: the early data decrypts and leads the c2s dump (when the server accepted
#     it: s_server -quiet writes the early data it read before the rest);
#   - key log without CLIENT_EARLY_TRAFFIC_SECRET: the session reports "early_data_skipped"
#     and everything after the early data still decrypts.
# shellcheck source=tests/pcap/lib.sh disable=SC2154
. "$(dirname "$0")/lib.sh"
need_root_netns
pki
net_setup

for cs in TLS_AES_128_GCM_SHA256 TLS_AES_256_GCM_SHA384 TLS_CHACHA20_POLY1305_SHA256; do
    new_case "0rtt-$cs"
    payload_bin "$d/cp1" 20000
    payload_bin "$d/sp1" 30000
    payload_bin "$d/early" 3000
    payload_bin "$d/cp2" 25000
    payload_bin "$d/sp2" 40000
    cap_start "$d/cap.pcap" || continue
    ossl_srv "$d" 2 rsa -tls1_3 -ciphersuites "$cs" -early_data || {
        cap_stop
        continue
    }
    ossl_cli "$d" 1 -- -tls1_3 -ciphersuites "$cs" -nocommands -sess_out "$d/sess"
    ossl_cli "$d" 2 -- -tls1_3 -ciphersuites "$cs" -nocommands -sess_in "$d/sess" \
        -early_data "$d/early"
    srv_wait
    cap_stop
    check_peers "$d" 2 noserver || continue
    if cat "$d/cp1" "$d/early" "$d/cp2" | cmp -s - "$d/so"; then
        accepted=1
        cat "$d/early" "$d/cp2" >"$d/exp_c2s2"
    elif cat "$d/cp1" "$d/cp2" | cmp -s - "$d/so"; then
        accepted=0
        t_log "$name: the server rejected the early data; checking the rejected case only"
    else
        t_fail "$name" "HARNESS: the server received $(fsize "$d/so") bytes, neither" \
            "with nor without the early data"
        continue
    fi
    if ! grep -q '^CLIENT_EARLY_TRAFFIC_SECRET' "$d/keys.log"; then
        t_fail "$name" "HARNESS: no CLIENT_EARLY_TRAFFIC_SECRET in the client key log"
        continue
    fi
    eve=("tls.get('version') == 'TLS 1.3'" "tls.get('cipher_suite') == '$cs'"
        "1:tls.get('resumed') is False" "2:tls.get('resumed') is True"
        "1:tls.get('early_data') is False")
    if [ "$accepted" = 1 ]; then
        eve+=("2:tls.get('early_data') is True")
    fi
    # Full key log.
    mm_check "$name" "$d" 2 "${eve[@]}" "tls.get('key_status') == 'decrypted'" "not errs"
    # Without the early traffic secret.
    grep -v '^CLIENT_EARLY_TRAFFIC_SECRET' "$d/keys.log" >"$d/keys-noearly.log"
    cp "$d/cp2" "$d/exp_c2s2"
    if [ "$accepted" = 1 ]; then
        eve+=("2:'early_data_skipped' in errs" "1:not errs")
    else
        eve+=("tls.get('key_status') == 'decrypted'" "not errs")
    fi
    MM_KEYS=$d/keys-noearly.log MM_OUT=$d/mm-noearly mm_check "$name-noearly" "$d" 2 "${eve[@]}" \
        "tls.get('plain_bytes_toclient', 0) > 0"
done
t_finish
