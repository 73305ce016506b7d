#!/usr/bin/env bash
# TCP-level robustness on real captures: scripts/pcap-mangle.py rewrites a capture's
# segmentation (segments reordered within a window, duplicated, retransmitted merged with the
# next one, split into 1-10 byte pieces; seq/ack consistent, byte streams unchanged - the
# script checks that itself) and the mangled capture must decrypt to exactly the same dumps.
# Also: pcapng input, a capture read from stdin (-r -), a "tcpdump -i any" capture (Linux
# cooked SLL2 link type) and an IPv6 connection.
# shellcheck source=tests/pcap/lib.sh disable=SC2154
. "$(dirname "$0")/lib.sh"
need_root_netns
pki
net_setup
MANGLE=$MMTLS_SRCDIR/scripts/pcap-mangle.py

# gen NAME IFACE CONNECT PROTO-OPTS... - one capture of one connection in case dir $d.
gen() {
    local cname=$1 ifc=$2 conn=$3
    shift 3
    new_case "$cname"
    payload_bin "$d/cp1" 60000
    payload_bin "$d/sp1" 100000
    cap_start "$d/cap.pcap" "$ifc" || return 1
    ossl_srv "$d" 1 rsa "$@" || {
        cap_stop
        return 1
    }
    T_CONNECT=$conn ossl_cli "$d" 1 -- "$@" -nocommands
    srv_wait
    cap_stop
    check_peers "$d" 1
}

# variants NAME EVE... - the original, mangled (pcap and pcapng, two seeds, one heavy), stdin.
variants() {
    local base=$1 v
    shift
    mm_check "$base" "$d" 1 "$@"
    for v in "seed1::--seed 1" "seed2-pcapng:.pcapng:--seed 2 --pcapng" \
        "heavy::--seed 3 --split 0.6 --dup 0.3 --merge 0.3 --window 8"; do
        IFS=: read -r vname ext opts <<<"$v"
        # shellcheck disable=SC2086
        if ! $PY "$MANGLE" $opts "$d/cap.pcap" "$d/cap-$vname.pcap$ext" 2>"$d/mangle-$vname.err"; then
            t_fail "$base-$vname" "HARNESS: pcap-mangle.py failed: $(cat "$d/mangle-$vname.err")"
            continue
        fi
        MM_CAP=$d/cap-$vname.pcap$ext MM_OUT=$d/mm-$vname mm_check "$base-$vname" "$d" 1 "$@"
    done
    MM_CAP=- MM_OUT=$d/mm-stdin mm_check "$base-stdin" "$d" 1 "$@"
}

if gen v4-tls13 "$VETH_S" "$S_IP:$S_PORT" -tls1_3 -ciphersuites TLS_AES_128_GCM_SHA256; then
    eve_std "TLS 1.3" TLS_AES_128_GCM_SHA256
    variants "$name" "${EVE[@]}"
fi
if gen v4-tls12-cbc-any any "$S_IP:$S_PORT" -tls1_2 -cipher ECDHE-RSA-AES256-SHA384; then
    if [ "$(tcpdump -r "$d/cap.pcap" 2>&1 | head -1 | grep -o 'LINUX_SLL2')" != LINUX_SLL2 ]; then
        t_log "note: tcpdump -i any did not write LINUX_SLL2: $(tcpdump -r "$d/cap.pcap" 2>&1 | head -1)"
    fi
    eve_std "TLS 1.2" TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384
    variants "$name" "${EVE[@]}"
fi
if gen v6-tls13 "$VETH_S" "[$S_IP6]:$S_PORT" -tls1_3 -ciphersuites TLS_CHACHA20_POLY1305_SHA256; then
    eve_std "TLS 1.3" TLS_CHACHA20_POLY1305_SHA256
    variants "$name" "${EVE[@]}" "e.get('src_ip') == '$C_IP6'" "e.get('dest_ip') == '$S_IP6'"
fi
t_finish
