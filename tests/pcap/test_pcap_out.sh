#!/usr/bin/env bash
# --pcap-out: decrypted sessions exported as plaintext TCP flows.  nginx serves files over
# HTTPS (TLS 1.3 over IPv4, TLS 1.2 over IPv6); curl makes real HTTP/1.1 requests on one
# keep-alive connection (GETs and a POST with a 5000-byte body) and writes its key log
# (SSLKEYLOGFILE).  mmtlsd reads the capture with --pcap-out, then:
#   - tests/pcap/pcapout_check.py re-parses the file on its own: pcap header, checksums,
#     handshake, sequence/acknowledgement numbers, segment sizes, FIN or RST end, monotonic
#     timestamps; the payload of each direction equals mmtlsd's --dump-plaintext output;
#   - tshark reads it with checksum validation on and reports no expert warning or error, and
#     its HTTP fields (method, URI, host, status codes) are those curl sent and nginx logged;
#   - mmtlsd reads the exported file back: no TLS session, the flows counted as plain TCP.
# Then: --inspect-depth (skipped bytes become a sequence gap, never fake bytes), no key log
# (nothing exported, counted), a blocked session (RST), default port mapping, a write error.
# shellcheck source=tests/pcap/lib.sh disable=SC2154
. "$(dirname "$0")/lib.sh"
need_root_netns
need_cmd nginx curl tshark
pki
net_setup 1500

CHECK=$MMTLS_SRCDIR/tests/pcap/pcapout_check.py
www=$T_WORK/www
mkdir -p "$www"
printf 'hello from the index page\n' >"$www/index.html"
payload_bin "$www/big.bin" 200000
payload_hex "$www/mid.txt" 3000
payload_bin "$T_WORK/post.bin" 5000
HOST=server.test:$S_PORT
NGINX_ROOT=$www

# curl_run D ADDR TLSARGS... - GET /index.html /big.bin /mid.txt, then POST /upload, on one
# connection (curl reuses it across --next); key log D/keys.log.
curl_run() {
    local d=$1 addr=$2
    shift 2
    local common=(-sS --http1.1 --cacert "$T_PKI/ca.crt" --resolve "$HOST:$addr" "$@")
    SSLKEYLOGFILE=$d/keys.log ip netns exec "$NS_C" timeout -k 5 60 curl "${common[@]}" \
        -w '%{http_code}\n' \
        -o "$d/r1" "https://$HOST/index.html" -o "$d/r2" "https://$HOST/big.bin" \
        -o "$d/r3" "https://$HOST/mid.txt" \
        --next "${common[@]}" -w '%{http_code}\n' --data-binary "@$T_WORK/post.bin" \
        -o "$d/r4" "https://$HOST/upload" >"$d/codes" 2>"$d/curl.err"
}

# make_case NAME ADDR TLSARGS... - capture one curl run against nginx into $d/cap.pcap.
make_case() {
    new_case "$1"
    local addr=$2
    shift 2
    cap_start "$d/cap.pcap" || return 1
    nginx_start "$d" || {
        cap_stop
        return 1
    }
    curl_run "$d" "$addr" "$@" || t_fail "$name" "HARNESS: curl failed: $(head -c 400 "$d/curl.err")"
    sleep 0.3
    srv_wait kill
    cap_stop || return 1
    # The peers themselves got the files.
    cmp -s "$d/r1" "$www/index.html" && cmp -s "$d/r2" "$www/big.bin" &&
        cmp -s "$d/r3" "$www/mid.txt" || {
        t_fail "$name" "HARNESS: curl did not receive the files"
        return 1
    }
    [ -s "$d/keys.log" ] || {
        t_fail "$name" "HARNESS: curl wrote no key log"
        return 1
    }
}

# run_po D OUT ARGS... - mmtlsd on D/cap.pcap with --pcap-out OUT/out.pcap and a plaintext dump.
run_po() {
    local d=$1 out=$2
    shift 2
    run_mmtlsd "$d/cap.pcap" "$out" --pcap-out "$out/out.pcap" "$@"
    mm_ok "$name" "$out"
}

# po_check OUT - pcapout_check.py on OUT/out.pcap; its per-connection lines in OUT/conns.
po_check() {
    local out=$1
    mkdir -p "$out/po"
    $PY "$CHECK" "$out/out.pcap" "$out/po" >"$out/conns" 2>"$out/po.err" || {
        t_fail "$name" "pcapout_check: $(head -c 1200 "$out/po.err")"
        return 1
    }
}

# po_same_as_dump OUT - each exported direction equals the --dump-plaintext file.
po_same_as_dump() {
    local out=$1 cport rest
    while read -r cport rest; do
        cmp_dump "${name}[port $cport c2s]" "$(dump_file "$out" "$cport" c2s)" "$out/po/$cport.c2s"
        cmp_dump "${name}[port $cport s2c]" "$(dump_file "$out" "$cport" s2c)" "$out/po/$cport.s2c"
    done <"$out/conns"
}

# tshark_expert OUT [ALLOWED-REGEX] - no expert warning or error (checksums validated), other
# than lines matching ALLOWED-REGEX.
tshark_expert() {
    local out=$1 allow=${2:-'^$'}
    tshark -r "$out/out.pcap" -o tcp.check_checksum:TRUE -o ip.check_checksum:TRUE \
        -q -z expert,warn >"$out/expert.txt" 2>"$out/tshark.all"
    grep -v 'Running as user "root"' "$out/tshark.all" >"$out/tshark.err"
    if [ -s "$out/tshark.err" ]; then
        t_fail "$name" "tshark: $(head -c 400 "$out/tshark.err")"
    fi
    # Entries are the indented lines under "Errors (N)" / "Warns (N)" headings.
    awk '/^(Errors|Warns) \(/ {on = 1; next} /^[A-Z][a-z]+ \(/ {on = 0} on && /^ +[0-9]/' \
        "$out/expert.txt" | grep -Ev "$allow" >"$out/expert.bad"
    if [ -s "$out/expert.bad" ]; then
        t_fail "$name" "tshark expert info: $(head -c 800 "$out/expert.bad")"
        return 1
    fi
}

# tshark_http D OUT SERVER_PORT - HTTP requests and responses as tshark dissects them.
tshark_http() {
    local d=$1 out=$2 port=$3
    tshark -r "$out/out.pcap" -Y http.request -T fields -e http.request.method \
        -e http.request.uri -e http.host -e tcp.dstport >"$out/http_req.txt" 2>/dev/null
    tshark -r "$out/out.pcap" -Y http.response -T fields -e http.response.code \
        >"$out/http_resp.txt" 2>/dev/null
    printf '%s\t%s\t%s\t%s\n' GET /index.html "$HOST" "$port" GET /big.bin "$HOST" "$port" \
        GET /mid.txt "$HOST" "$port" POST /upload "$HOST" "$port" >"$out/want_req.txt"
    awk '{print $3}' "$d/access.log" >"$out/want_resp.txt"
    cmp -s "$out/want_req.txt" "$out/http_req.txt" ||
        t_fail "$name" "tshark HTTP requests: $(tr '\t\n' ' |' <"$out/http_req.txt");" \
            "sent: $(tr '\t\n' ' |' <"$out/want_req.txt")"
    cmp -s "$out/want_resp.txt" "$out/http_resp.txt" ||
        t_fail "$name" "tshark HTTP status codes: $(tr '\n' ' ' <"$out/http_resp.txt");" \
            "nginx logged: $(tr '\n' ' ' <"$out/want_resp.txt")"
    # curl saw the same codes as nginx logged
    cmp -s "$d/codes" "$out/want_resp.txt" ||
        t_fail "$name" "HARNESS: curl codes $(tr '\n' ' ' <"$d/codes") vs nginx log"
}

# readback OUT NFLOWS - mmtlsd reads the exported file: plain TCP, no TLS, no errors.
readback() {
    local out=$1 n=$2
    timeout -k 5 60 "$MMTLSD" -r "$out/out.pcap" -l "$out/rb" >"$out/rb.log" 2>&1 || {
        t_fail "$name" "mmtlsd on the exported pcap: exit $?: $(tail -c 400 "$out/rb.log")"
        return 1
    }
    grep -q "mmtlsd: 0 TLS sessions:.* $n TCP flows not TLS" "$out/rb.log" &&
        grep -q "mmtlsd: errors: none" "$out/rb.log" ||
        t_fail "$name" "mmtlsd on the exported pcap: $(tr '\n' ' ' <"$out/rb.log")"
}

# full_checks D PORT IPV - the checks of a fully decrypted export (server port mapped to PORT).
full_checks() {
    local d=$1 port=$2 ipv=$3
    local out=$d/po
    have_mmtlsd || return 0
    run_po "$d" "$out" --keylog "$d/keys.log" --pcap-out-port "$S_PORT:$port" || return 1
    po_check "$out" || return 1
    po_same_as_dump "$out"
    [ "$(wc -l <"$out/conns")" -ge 1 ] || t_fail "$name" "no connection exported"
    awk -v p="$port" -v v="$ipv" '$2 != p || $3 != v || $6 != 0 || $7 != 0 || $8 != "fin"' \
        "$out/conns" | grep -q . &&
        t_fail "$name" "connections (cport sport ipv c2s s2c gaps gaps end): $(tr '\n' '|' <"$out/conns")"
    # The application data is there: the POST body and the big file, whole.
    $PY - "$out/po" "$T_WORK/post.bin" "$www/big.bin" <<'EOF' || t_fail "$name" "payload check (above)"
import glob, sys
c2s = b"".join(open(f, "rb").read() for f in sorted(glob.glob(sys.argv[1] + "/*.c2s")))
s2c = b"".join(open(f, "rb").read() for f in sorted(glob.glob(sys.argv[1] + "/*.s2c")))
ok = open(sys.argv[2], "rb").read() in c2s and open(sys.argv[3], "rb").read() in s2c
ok = ok and b"\x16\x03" not in c2s[:2] and c2s.startswith(b"GET /index.html HTTP/1.1\r\n")
if not ok:
    print("    exported c2s starts %r; POST body/big file present: %s/%s" % (c2s[:40],
          open(sys.argv[2], "rb").read() in c2s, open(sys.argv[3], "rb").read() in s2c),
          file=sys.stderr)
sys.exit(0 if ok else 1)
EOF
    grep -q "pcap-out $out/out.pcap: $(wc -l <"$out/conns") sessions written" "$out/log" ||
        t_fail "$name" "summary: $(grep pcap-out "$out/log")"
    tshark_expert "$out"
    tshark_http "$d" "$out" "$port"
    readback "$out" "$(wc -l <"$out/conns")"
}

# 1. TLS 1.3 over IPv4, server port 4433 shown as 80.
make_case tls13-v4 "$S_IP" --tlsv1.3 && full_checks "$d" 80 4
v4=$d

# 2. TLS 1.2 over IPv6, 4433 shown as 8080 (tshark dissects 8080 as HTTP too).
make_case tls12-v6 "[$S_IP6]" --tlsv1.2 --tls-max 1.2 && full_checks "$d" 8080 6
v6=$d

if have_mmtlsd && [ -s "$v4/cap.pcap" ]; then
    # 3. Inspection depth: the rest of each response is skipped without decryption; the
    # export has what was decrypted (= the dump) and a sequence gap where bytes are missing.
    new_case depth
    out=$d/po
    cp "$v4/cap.pcap" "$d/cap.pcap"
    if run_po "$d" "$out" --keylog "$v4/keys.log" --inspect-depth 16384 \
        --pcap-out-port "$S_PORT:80" && po_check "$out"; then
        po_same_as_dump "$out"
        awk '$7 < 1 || $6 != 0 || $8 != "fin"' "$out/conns" | grep -q . &&
            t_fail "$name" "want s2c gaps: $(tr '\n' '|' <"$out/conns")"
        [ "$(awk '{s += $5} END {print s}' "$out/conns")" -lt 200000 ] ||
            t_fail "$name" "the skipped bytes were exported?"
        grep -Eq "[1-9][0-9]* gaps\)" "$out/log" || t_fail "$name" "no gap counted: $(grep pcap-out "$out/log")"
        # tshark sees capture loss there, nothing else (no checksum or malformed errors).
        tshark_expert "$out" "not captured|ACKed segment that wasn't captured|Continuation|\
Unreassembled|Connection finish|reassembl"
        grep -q "not captured" "$out/expert.txt" ||
            t_fail "$name" "tshark does not see the gap: $(head -c 600 "$out/expert.txt")"
        readback "$out" "$(wc -l <"$out/conns")"
    fi

    # 3b. Capture loss (two full-sized frames of the download deleted): the records the engine
    # could not frame are missing from the export as a sequence gap, the rest is intact.
    new_case loss
    out=$d/po
    lost=$(tshark -r "$v4/cap.pcap" -Y 'frame.len > 1000' -T fields -e frame.number 2>/dev/null |
        sed -n '30,31p' | tr '\n' ' ')
    # shellcheck disable=SC2086
    editcap "$v4/cap.pcap" "$d/cap.pcap" $lost >/dev/null 2>&1 || t_fail "$name" "HARNESS: editcap"
    if run_po "$d" "$out" --keylog "$v4/keys.log" --pcap-out-port "$S_PORT:80" &&
        po_check "$out"; then
        po_same_as_dump "$out"
        awk '$7 != 1 || $6 != 0 || $8 != "fin"' "$out/conns" | grep -q . &&
            t_fail "$name" "want one s2c gap: $(tr '\n' '|' <"$out/conns")"
        # After the gap tshark loses the HTTP message boundaries and dissects what follows as a
        # new message: whether the random body bytes it reads as a header line hold a character
        # a header name may not (flagged) depends on the run.
        tshark_expert "$out" "not captured|ACKed segment that wasn't captured|Continuation|\
Unreassembled|reassembl|Illegal characters found in header name"
        grep -q "not captured" "$out/expert.txt" || t_fail "$name" "tshark does not see the gap"
    fi

    # 4. No keys: nothing exported, the session counted.
    new_case nokeys
    out=$d/po
    cp "$v4/cap.pcap" "$d/cap.pcap"
    if run_po "$d" "$out"; then
        [ "$(fsize "$out/out.pcap")" = 24 ] || t_fail "$name" "$(fsize "$out/out.pcap") bytes (want the 24-byte header)"
        grep -q "pcap-out .*: 0 sessions written .* not written: 1 without keys" "$out/log" ||
            t_fail "$name" "summary: $(grep pcap-out "$out/log")"
        tshark -r "$out/out.pcap" 2>&1 >/dev/null | grep -v 'Running as user' >"$out/tshark.err"
        [ ! -s "$out/tshark.err" ] ||
            t_fail "$name" "tshark on the empty export: $(cat "$out/tshark.err")"
    fi

    # 5. A blocked session ends with RST both ways; nothing after the blocking record.
    new_case blocked
    out=$d/po
    cp "$v4/cap.pcap" "$d/cap.pcap"
    if run_po "$d" "$out" --keylog "$v4/keys.log" --block-content "$(head -c 24 "$www/mid.txt")" \
        --pcap-out-port "$S_PORT:80" && po_check "$out"; then
        po_same_as_dump "$out"
        awk '$8 != "rst"' "$out/conns" | grep -q . && t_fail "$name" "want rst: $(tr '\n' '|' <"$out/conns")"
        tshark_expert "$out" "Connection reset|Continuation|Unreassembled|reassembl"
        grep -q "Connection reset" "$out/expert.txt" || t_fail "$name" "tshark sees no RST"
    fi

    # 6. Default mapping 443:80 leaves port 4433 alone.
    new_case defport
    out=$d/po
    cp "$v6/cap.pcap" "$d/cap.pcap"
    if run_po "$d" "$out" --keylog "$v6/keys.log" && po_check "$out"; then
        awk -v p="$S_PORT" '$2 != p' "$out/conns" | grep -q . &&
            t_fail "$name" "server port changed: $(tr '\n' '|' <"$out/conns")"
    fi

    # 7. Two sessions at once (IPv4 and IPv6 captures overlapped in time): two flows, each
    # equal to its dump, timestamps never going back (pcapout_check).
    if command -v editcap >/dev/null && command -v mergecap >/dev/null; then
        new_case interleaved
        out=$d/po
        # Align the two downloads (the 30th full-sized frame of each): they overlap.
        mid() { tshark -r "$1" -Y 'frame.len > 1000' -T fields -e frame.time_epoch 2>/dev/null | sed -n 30p; }
        shift_s=$($PY -c "import sys; print('%.6f' % (float(sys.argv[1]) - float(sys.argv[2])))" \
            "$(mid "$v4/cap.pcap")" "$(mid "$v6/cap.pcap")")
        editcap -t "$shift_s" "$v6/cap.pcap" "$d/v6.pcap" >/dev/null 2>&1 &&
            mergecap -F pcap -w "$d/cap.pcap" "$v4/cap.pcap" "$d/v6.pcap" 2>/dev/null ||
            t_fail "$name" "HARNESS: editcap/mergecap failed"
        cat "$v4/keys.log" "$v6/keys.log" >"$d/keys.log"
        if run_po "$d" "$out" --keylog "$d/keys.log" --pcap-out-port "$S_PORT:80" &&
            po_check "$out"; then
            po_same_as_dump "$out"
            [ "$(awk '$8 == "fin" && $6 == 0 && $7 == 0' "$out/conns" | wc -l)" = 2 ] ||
                t_fail "$name" "want 2 clean flows: $(tr '\n' '|' <"$out/conns")"
            # the flows' frames do interleave in the file
            [ "$(tshark -r "$out/out.pcap" -T fields -e ip.version 2>/dev/null | uniq | wc -l)" -gt 2 ] ||
                t_fail "$name" "HARNESS: the two sessions do not overlap in time"
            tshark_expert "$out"
        fi
    fi

    # 8. A write error (full disk) is counted and logged once; the run still succeeds.
    new_case writeerr
    out=$d/po
    rm -rf "$out"
    mkdir -p "$out/dump"
    timeout -k 5 60 "$MMTLSD" -r "$v4/cap.pcap" --keylog "$v4/keys.log" -l "$out" \
        --pcap-out /dev/full >"$out/log" 2>&1
    rc=$?
    [ "$rc" = 0 ] || t_fail "$name" "exit $rc: $(tail -c 300 "$out/log")"
    [ "$(grep -c 'write failed' "$out/log")" = 1 ] ||
        t_fail "$name" "want one 'write failed' line: $(tr '\n' ' ' <"$out/log")"
    grep -Eq "; [1-9][0-9]* write errors" "$out/log" || t_fail "$name" "errors not counted: $(grep pcap-out "$out/log")"
fi
t_finish
