#!/usr/bin/env bash
# test_keyshare_mmtlsd.sh - end to end with the real key server: mmtlsd --key-listen reads a
# live capture of loopback (tcpdump -w - | mmtlsd -r -) while unmodified curl, python3 and
# openssl s_client run under libmmtls-preload.so and share their keys over the key channel
# (TLS 1.3, client certificate).  Every session must be decrypted by mmtlsd with those keys
# alone (no key log is given to it), and the plaintext dumps must hold the page.
# Environment: MMTLSD, MMTLS_PRELOAD (CTest sets both), MMTLS_KEEP=1.  Exit 0/1/77.
set -u
set -o pipefail

T_NAME=test_keyshare_mmtlsd
SRCDIR=${MMTLS_SRCDIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
PRELOAD=${MMTLS_PRELOAD:-$SRCDIR/build/lib/keyshare/libmmtls-preload.so}
MMTLSD=${MMTLSD:-$SRCDIR/build/tools/mmtlsd/mmtlsd}
W=$(mktemp -d "${TMPDIR:-/tmp}/mmtls-$T_NAME.XXXXXX")
FAILS=0
PIDS=()

log() { printf '[%s] %s\n' "$T_NAME" "$*"; }
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

for c in openssl curl python3 timeout tcpdump; do
    command -v "$c" >/dev/null || skip "$c not installed"
done
[ -x "$MMTLSD" ] || skip "mmtlsd not built ($MMTLSD)"
"$MMTLSD" --help 2>&1 | grep -- --key-listen >/dev/null || skip "mmtlsd has no --key-listen"
[ -f "$PRELOAD" ] || skip "$PRELOAD not built"
ldd "$PRELOAD" | grep -q -E 'libasan|libtsan' && skip "sanitizer build of the shim"
[ "$(id -u)" = 0 ] || skip "capturing on lo needs root"

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0))
print(s.getsockname()[1])'
}
wait_port() {
    local _
    for _ in $(seq 50); do
        python3 -c "import socket; socket.create_connection(('127.0.0.1',$1),0.2)" 2>/dev/null &&
            return 0
        sleep 0.1
    done
    return 1
}

cd "$W" || exit 1
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.crt \
    -days 30 -subj "/CN=keyshare e2e CA" -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null || skip "openssl req"
mk() {
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$1.key" \
        -subj "/CN=$2" -out "$1.csr" 2>/dev/null &&
        printf '%s\n' "$3" >"$1.ext" &&
        openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 30 \
            -extfile "$1.ext" -out "$1.crt" 2>/dev/null
}
mk ks keyserver "subjectAltName=IP:127.0.0.1" || skip "pki"
mk client client.test "extendedKeyUsage=clientAuth" || skip "pki"
mk web server.test "subjectAltName=IP:127.0.0.1" || skip "pki"
mkdir -p www dump
head -c 3000 /dev/urandom | base64 -w 76 >www/index.html
MARK=$(sed -n 20p www/index.html)

WEB_PORT=$(free_port)
KS_PORT=$(free_port)
(cd www && exec timeout 120 openssl s_server -accept "127.0.0.1:$WEB_PORT" -cert ../web.crt \
    -key ../web.key -WWW -quiet) >web.out 2>&1 </dev/null &
PIDS+=($!)
wait_port "$WEB_PORT" || skip "web server"

mkfifo cap.fifo
timeout 120 tcpdump -i lo -U -s 0 -w cap.fifo "tcp port $WEB_PORT" 2>tcpdump.err &
TCPDUMP=$!
timeout 130 "$MMTLSD" -r - --key-listen "127.0.0.1:$KS_PORT" --cert ks.crt --key ks.key \
    --client-ca ca.crt --dump-plaintext dump --eve eve.json -v <cap.fifo >mmtlsd.out \
    2>mmtlsd.err &
MMTLSD_PID=$!
PIDS+=("$TCPDUMP" "$MMTLSD_PID")
wait_port "$KS_PORT" || skip "mmtlsd key server did not start: $(tail -3 mmtlsd.err)"
for i in $(seq 30); do # tcpdump announces itself once it captures
    grep -q listening tcpdump.err && break
    sleep 0.1
done

export MMTLS_KEYSERVER=127.0.0.1:$KS_PORT MMTLS_CA=$W/ca.crt MMTLS_CERT=$W/client.crt
export MMTLS_KEY=$W/client.key MMTLS_KEYSHARE_STATS=1
URL=https://127.0.0.1:$WEB_PORT/index.html
pre() { env LD_PRELOAD="$PRELOAD" "$@"; }

pre timeout 20 curl -sS --cacert ca.crt --tlsv1.3 -o out1 "$URL" 2>c1.err ||
    fail curl13 "$(cat c1.err)"
pre timeout 20 curl -sS --cacert ca.crt --tlsv1.2 --tls-max 1.2 \
    --ciphers ECDHE-ECDSA-AES128-GCM-SHA256 -o out2 "$URL" 2>c2.err ||
    fail curl12 "$(cat c2.err)"
pre timeout 20 python3 -c "import ssl, urllib.request as u
c = ssl.create_default_context(cafile='ca.crt')
open('out3', 'wb').write(u.urlopen('$URL', context=c, timeout=10).read())" 2>c3.err ||
    fail python3 "$(cat c3.err)"
printf 'GET /index.html HTTP/1.0\r\n\r\n' | pre timeout 20 openssl s_client \
    -connect "127.0.0.1:$WEB_PORT" -tls1_2 -cipher ECDHE-ECDSA-AES128-SHA256 -CAfile ca.crt \
    -ign_eof -quiet >out4 2>c4.err || fail s_client "s_client failed"
for i in 1 2 3; do
    cmp -s "out$i" www/index.html || fail "client$i" "page not fetched intact"
done
grep -q "$MARK" out4 || fail s_client "page not fetched"

sleep 1
kill -INT "$TCPDUMP" 2>/dev/null
for i in $(seq 100); do
    kill -0 "$MMTLSD_PID" 2>/dev/null || break
    sleep 0.1
done
log "$(grep 'TLS sessions' mmtlsd.err)"
grep -q '4 TLS sessions: 4 decrypted' mmtlsd.err || fail mmtlsd "$(tail -6 mmtlsd.err)"
n=$(grep -l -F -- "$MARK" dump/*.s2c 2>/dev/null | wc -l)
[ "$n" = 4 ] || fail dump "the page is in $n of 4 server->client dumps"
n=$(grep -l 'GET /index.html' dump/*.c2s 2>/dev/null | wc -l)
[ "$n" = 4 ] || fail dump "the request is in $n of 4 client->server dumps"
# one session each, every queued message sent: TLS 1.3 sessions send two (the server handshake
# secret at the ServerHello, then the whole set: docs/keyproto.md), TLS 1.2 one
n=$(grep -h 'mmtls-keyshare:' c?.err |
    awk '{ for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] } }
         v["sessions"] == 1 && v["sent"] >= 1 && v["sent"] == v["queued"] { n++ }
         END { print n + 0 }')
[ "$n" = 4 ] || fail stats "$(grep -h mmtls c?.err)"
grep -q 'key channel from 127.0.0.1' mmtlsd.err || fail mmtlsd "no key channel logged"

if [ "$FAILS" -gt 0 ]; then
    log "$FAILS failure(s)"
    exit 1
fi
log "all passed"
exit 0
