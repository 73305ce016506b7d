#!/usr/bin/env bash
# TLS 1.3 KeyUpdate (RFC 8446 section 4.6.3): s_client in command mode gets a line "k" (update
# its sending keys, no request) and later "K" (update and request the peer's update) between
# hex payload chunks; the server sends more data after the request so its own KeyUpdate is
# followed by data.  Both dumps byte-exact (the command lines are not data) and the eve
# key_updates counters in the right directions.
# shellcheck source=tests/pcap/lib.sh disable=SC2154
. "$(dirname "$0")/lib.sh"
need_root_netns
pki
net_setup

feed_ku() {
    local d=$1 i=$2
    cat "$d/cpa"
    sleep 0.6
    printf 'k\n'
    sleep 0.6
    cat "$d/cpb"
    sleep 0.6
    printf 'K\n'
    sleep 0.6
    cat "$d/cpc"
    wait_size "$d/co$i" "$(fsize "$d/sp$i")" 30
    sleep 0.1
}
feed_srv_ku() {
    local d=$1
    cat "$d/spa"
    # All the client's data (sent after its "K") has arrived: the server's KeyUpdate is due.
    wait_size "$d/so" "$(fsize "$d/cp1")" 30
    sleep 0.2
    cat "$d/spb"
    wait_file "$d/c1.done" 30
    sleep 0.2
}

for cs in TLS_AES_128_GCM_SHA256 TLS_AES_256_GCM_SHA384 TLS_CHACHA20_POLY1305_SHA256; do
    new_case "keyupdate-$cs"
    payload_hex "$d/cpa" 20000
    payload_hex "$d/cpb" 30000
    payload_hex "$d/cpc" 25000
    cat "$d/cpa" "$d/cpb" "$d/cpc" >"$d/cp1"
    payload_bin "$d/spa" 40000
    payload_bin "$d/spb" 35000
    cat "$d/spa" "$d/spb" >"$d/sp1"
    cap_start "$d/cap.pcap" || continue
    SRV_FEED=feed_srv_ku ossl_srv "$d" 1 rsa -tls1_3 -ciphersuites "$cs" || {
        cap_stop
        continue
    }
    ossl_cli "$d" 1 feed_ku -- -tls1_3 -ciphersuites "$cs"
    srv_wait
    cap_stop
    check_peers "$d" 1 || continue
    if [ "$(grep -c KEYUPDATE "$d/cli1.err")" != 2 ]; then
        t_fail "$name" "HARNESS: s_client did not do 2 key updates: $(tail -c 300 "$d/cli1.err")"
        continue
    fi
    eve_std "TLS 1.3" "$cs"
    # The key log as the client wrote it (this OpenSSL logs the updated secrets with the
    # non-standard labels CLIENT_TRAFFIC_SECRET_N / SERVER_TRAFFIC_SECRET_N: a reader must
    # at least skip them), and without those lines (the engine derives the updates itself).
    mm_check "$name" "$d" 1 "${EVE[@]}" "tls.get('key_updates_toserver') == 2" \
        "tls.get('key_updates_toclient', 0) >= 1"
    grep -v '^[A-Z]*_TRAFFIC_SECRET_N ' "$d/keys.log" >"$d/keys-noN.log"
    MM_KEYS=$d/keys-noN.log MM_OUT=$d/mm-noN mm_check "$name-derived" "$d" 1 "${EVE[@]}" \
        "tls.get('key_updates_toserver') == 2" "tls.get('key_updates_toclient', 0) >= 1"
done
t_finish
