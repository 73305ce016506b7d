#!/usr/bin/env bash
# A ClientHello spread over several TLS records AND several TCP segments: s_client
# -max_send_frag 512 with a large ALPN list (the ClientHello is ~2 KB) on veths with MTU 576
# (MSS 536); the server also fragments its flight into 512-byte records.
# shellcheck source=tests/pcap/lib.sh disable=SC2154
. "$(dirname "$0")/lib.sh"
need_root_netns
pki
net_setup 576
M=$MMTLS_SRCDIR/scripts/pcap-mangle.py
alpn=$(for i in $(seq 1 90); do printf 'proto-%02d-padding-xx,' "$i"; done)h2

for spec in "tls13|ecdsa|-tls1_3 -ciphersuites TLS_AES_256_GCM_SHA384|TLS 1.3|TLS_AES_256_GCM_SHA384" \
    "tls12|rsa|-tls1_2 -cipher ECDHE-RSA-AES128-GCM-SHA256|TLS 1.2|TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256" \
    "tls12-cbc|rsa|-tls1_2 -cipher AES128-SHA256|TLS 1.2|TLS_RSA_WITH_AES_128_CBC_SHA256"; do
    IFS='|' read -r cname cert opts ver iana <<<"$spec"
    # shellcheck disable=SC2206
    opts=($opts)
    new_case "split-ch-$cname"
    payload_bin "$d/cp1" 20000
    payload_bin "$d/sp1" 30000
    cap_start "$d/cap.pcap" || continue
    ossl_srv "$d" 1 "$cert" "${opts[@]}" -alpn h2 -max_send_frag 512 || {
        cap_stop
        continue
    }
    ossl_cli "$d" 1 -- "${opts[@]}" -alpn "$alpn" -max_send_frag 512 -nocommands
    srv_wait
    cap_stop
    check_peers "$d" 1 || continue
    # The first record of the client stream: 16 03 01 <len 2> 01 <handshake length 3>.
    head=$($PY "$M" --streams "$d/cap.pcap" | $PY -c 'import json,sys; print(json.loads(sys.stdin.readline())["c2s_head"])')
    rlen=$((16#${head:6:4}))
    hlen=$((16#${head:12:6}))
    if [ "$rlen" -gt 512 ] || [ "$hlen" -le 1500 ]; then
        t_fail "$name" "HARNESS: ClientHello of $hlen bytes in a first record of $rlen bytes"
        continue
    fi
    eve_std "$ver" "$iana" h2
    mm_check "$name" "$d" 1 "${EVE[@]}"
done
t_finish
