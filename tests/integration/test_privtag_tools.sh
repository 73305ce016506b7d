#!/usr/bin/env bash
# test_privtag_tools.sh - mmtls-httpsd and mmtls-https-get (tools/mmtls-https), the private tag
# (docs/PRIVTAG.md) end to end on 127.0.0.1, no privileges needed:
#   - mmtls-httpsd with and without --no-private-tag, mmtls-https-get with and without: all four
#     combinations download a 5 MB file byte-exact; "private_tag=yes" only when both sides have
#     it (client -v output and the server's -v request log);
#   - keep-alive: -n 3 requests on one connection, with the tag;
#   - fallback: curl (plain OpenSSL) against mmtls-httpsd gets the file over plain TLS;
#     mmtls-https-get against `openssl s_server -WWW` gets it too (private_tag=no);
#   - errors: a missing file (404) and a wrong CA make mmtls-https-get exit non-zero.
# Environment: MMTLS_HTTPSD, MMTLS_HTTPS_GET (the binaries; CTest sets them), MMTLS_KEEP=1
# keeps the work directory.  Exit: 0 pass, 1 fail, 77 skip.
set -u
set -o pipefail

T_NAME=test_privtag_tools
SRCDIR=${MMTLS_SRCDIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
HTTPSD=${MMTLS_HTTPSD:-$SRCDIR/build/tools/mmtls-https/mmtls-httpsd}
GET=${MMTLS_HTTPS_GET:-$SRCDIR/build/tools/mmtls-https/mmtls-https-get}
W=$(mktemp -d "${TMPDIR:-/tmp}/mmtls-$T_NAME.XXXXXX")
FAILS=0
PASSES=0
PIDS=()

log() { printf '[%s] %s\n' "$T_NAME" "$*"; }
pass() {
    PASSES=$((PASSES + 1))
    printf '[%s] ok   %s\n' "$T_NAME" "$*"
}
fail() {
    FAILS=$((FAILS + 1))
    printf '[%s] FAIL %s: %s\n' "$T_NAME" "$1" "${*:2}" >&2
}
cleanup() {
    local p
    for p in "${PIDS[@]}"; do
        kill "$p" 2>/dev/null
    done
    wait 2>/dev/null
    if [ "${MMTLS_KEEP:-0}" = 1 ] || [ "$FAILS" -gt 0 ]; then
        log "work directory kept: $W"
    else
        rm -rf "$W"
    fi
}
skip() {
    printf '[%s] SKIP: %s\n' "$T_NAME" "$*" >&2
    exit 77
}
trap cleanup EXIT

for c in openssl curl cmp timeout head; do
    command -v "$c" >/dev/null || skip "$c not installed"
done
[ -x "$HTTPSD" ] || skip "no $HTTPSD (build target mmtls-httpsd)"
[ -x "$GET" ] || skip "no $GET (build target mmtls-https-get)"

# --- a throw-away CA and a server certificate for localhost / 127.0.0.1 (ECDSA P-256) ---------
mkdir -p "$W/root" "$W/other"
(
    cd "$W" || exit 1
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key \
        -out ca.pem -days 2 -subj "/CN=privtag test CA" \
        -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign &&
        openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout srv.key \
            -out srv.csr -subj "/CN=localhost" &&
        printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' \
            >srv.ext &&
        openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
            -extfile srv.ext -out srv.pem &&
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
            -keyout other/ca.key -out other/ca.pem -days 2 -subj "/CN=other CA"
) >"$W/certs.log" 2>&1 || skip "openssl cannot make certificates (see $W/certs.log)"

head -c 5242880 /dev/urandom >"$W/root/big.bin"
printf 'small\n' >"$W/root/small.txt"

# start_httpsd NAME [ARGS...]: starts a server on an ephemeral port; sets PORT_<NAME>.
start_httpsd() {
    local name=$1 i
    shift
    "$HTTPSD" --listen 127.0.0.1:0 --port-file "$W/$name.port" --cert "$W/srv.pem" \
        --key "$W/srv.key" --root "$W/root" -v "$@" 2>"$W/$name.log" &
    PIDS+=($!)
    for ((i = 0; i < 100; i++)); do
        [ -s "$W/$name.port" ] && break
        sleep 0.1
    done
    [ -s "$W/$name.port" ] || { fail "start $name" "no port file; $(cat "$W/$name.log")"; exit 1; }
    printf -v "PORT_$name" '%s' "$(cat "$W/$name.port")"
}

start_httpsd tag
start_httpsd plain --no-private-tag
log "servers: tag on $PORT_tag, plain on $PORT_plain"

# get NAME PORT EXPECT_TAG [CLIENT ARGS...]: downloads big.bin, checks bytes and private_tag.
get() {
    local name=$1 port=$2 want=$3
    shift 3
    if ! timeout 60 "$GET" -v --cafile "$W/ca.pem" --connect "127.0.0.1:$port" \
        -o "$W/$name.out" "$@" "https://localhost:$port/big.bin" 2>"$W/$name.err"; then
        fail "$name" "exit non-zero: $(tail -3 "$W/$name.err")"
        return
    fi
    if ! cmp -s "$W/root/big.bin" "$W/$name.out"; then
        fail "$name" "body differs from big.bin"
        return
    fi
    if ! grep -qx "private_tag=$want" "$W/$name.err"; then
        fail "$name" "want private_tag=$want, got: $(grep private_tag "$W/$name.err")"
        return
    fi
    pass "$name: 5 MB byte-exact, private_tag=$want"
    rm -f "$W/$name.out"
}

get tag-tag "$PORT_tag" yes
get tag-plaincli "$PORT_tag" no --no-private-tag
get plainsrv-tag "$PORT_plain" no
get plainsrv-plaincli "$PORT_plain" no --no-private-tag

# The server's view: exactly one tagged request (tag-tag) so far, three plain ones.
n_yes=$(grep -c 'big.bin" 200 5242880 private_tag=yes' "$W/tag.log" "$W/plain.log" |
    awk -F: '{s += $2} END {print s}')
n_no=$(grep -c 'big.bin" 200 5242880 private_tag=no' "$W/tag.log" "$W/plain.log" |
    awk -F: '{s += $2} END {print s}')
if [ "$n_yes" = 1 ] && [ "$n_no" = 3 ]; then
    pass "server logs: 1 request with private_tag=yes, 3 with no"
else
    fail "server logs" "private_tag=yes $n_yes (want 1), no $n_no (want 3)"
fi

# Keep-alive with the tag: 3 requests on one connection.
if timeout 60 "$GET" -v -n 3 --cafile "$W/ca.pem" -o "$W/ka.out" \
    "https://127.0.0.1:$PORT_tag/small.txt" 2>"$W/ka.err" &&
    [ "$(cat "$W/ka.out")" = "$(printf 'small\nsmall\nsmall')" ] &&
    grep -qx 'private_tag=yes' "$W/ka.err" &&
    [ "$(grep -c 'small.txt" 200 6 private_tag=yes' "$W/tag.log")" = 3 ]; then
    pass "keep-alive: 3 requests on one tagged connection"
else
    fail "keep-alive" "$(tail -3 "$W/ka.err")"
fi

# Fallback 1: curl (plain OpenSSL, no extension) against the tagged server.
if timeout 60 curl -sS --fail --cacert "$W/ca.pem" -o "$W/curl.out" \
    --resolve "localhost:$PORT_tag:127.0.0.1" "https://localhost:$PORT_tag/big.bin" \
    2>"$W/curl.err" && cmp -s "$W/root/big.bin" "$W/curl.out"; then
    if grep -q 'big.bin" 200 5242880 private_tag=no' "$W/tag.log" &&
        [ "$(grep -c 'big.bin" 200 5242880 private_tag=no' "$W/tag.log")" = 2 ]; then
        pass "curl -> mmtls-httpsd: 5 MB byte-exact over plain TLS"
    else
        fail "curl" "server did not log a plain request: $(tail -2 "$W/tag.log")"
    fi
else
    fail "curl" "$(cat "$W/curl.err")"
fi

# Fallback 2: mmtls-https-get (offering the tag) against openssl s_server -WWW.
(cd "$W/root" && exec timeout 120 openssl s_server -accept 127.0.0.1:0 -cert "$W/srv.pem" \
    -key "$W/srv.key" -WWW >"$W/s_server.log" 2>&1) &
PIDS+=($!)
ss_port=
for ((i = 0; i < 100; i++)); do
    ss_port=$(sed -n 's/^ACCEPT 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$W/s_server.log" 2>/dev/null)
    [ -n "$ss_port" ] && break
    sleep 0.1
done
if [ -n "$ss_port" ]; then
    get s_server-tag "$ss_port" no
    get s_server-plaincli "$ss_port" no --no-private-tag
else
    fail "s_server" "did not start: $(cat "$W/s_server.log")"
fi

# Errors: 404 and an untrusted certificate make the client fail.
if timeout 30 "$GET" --cafile "$W/ca.pem" -o "$W/404.out" \
    "https://127.0.0.1:$PORT_tag/missing" 2>"$W/404.err"; then
    fail "404" "exit 0 for a missing file"
else
    pass "404: exit non-zero"
fi
if timeout 30 "$GET" --cafile "$W/other/ca.pem" -o "$W/ca.out" \
    "https://127.0.0.1:$PORT_tag/small.txt" 2>"$W/ca.err"; then
    fail "wrong CA" "exit 0 with an untrusted certificate"
else
    pass "wrong CA: handshake refused"
fi

log "$PASSES passed, $FAILS failed"
[ "$FAILS" = 0 ]
