#!/usr/bin/env bash
# test_keyshare_preload.sh - libmmtls-preload.so with real, unmodified OpenSSL 3 programs.
#
# A local nginx (or openssl s_server) serves HTTPS on 127.0.0.1.  The key channel is received by
# `openssl s_server -tls1_3 -Verify 1` (client certificates required), which dumps the bytes it
# gets; the embedded python checker parses them with the docs/keyproto.md framing and compares
# every KEYS message with the SSLKEYLOGFILE / -keylogfile the same program wrote:
#   - curl, python3 (ssl module), openssl s_client over TLS 1.3: kinds 2..5 equal the logged
#     handshake/application secrets, tuple 127.0.0.1 -> web port, no exporter secret anywhere;
#   - TLS 1.2 (AEAD and CBC suites): kinds 16..21 as the suite needs; for s_client the key block
#     is recomputed from the logged master secret and the ServerHello random (-msg) and must be
#     equal; the master secret itself never appears in the channel;
#   - 0-RTT (s_client -early_data against nginx ssl_early_data): EARLY flag and kind 1;
#   - MMTLS_BYPASS: a BYPASS with the SNI instead of KEYS;
#   - chaining: the programs' own key log files are still written;
#   - key server down: curl still fetches the page, fast, and the drop is counted;
#   - MMTLS_KEYSERVER unset: pure pass-through;
#   - GnuTLS programs (Debian's wget, gnutls-cli): TLS 1.3 secrets equal GnuTLS's own
#     SSLKEYLOGFILE (still written: the shim chains GnuTLS's hook), TLS 1.2 kinds 16..21 (for
#     gnutls-cli the key block is recomputed from the master secret and the ServerHello random
#     that `-d 9` prints), BYPASS by SNI, and pass-through without MMTLS_KEYSERVER; a wget linked
#     with libssl is checked like curl.
# Environment: MMTLS_PRELOAD (the .so; CTest sets it), MMTLS_KEEP=1 keeps the work directory.
# Exit: 0 pass, 1 fail, 77 skip.
set -u
set -o pipefail

T_NAME=test_keyshare_preload
SRCDIR=${MMTLS_SRCDIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
PRELOAD=${MMTLS_PRELOAD:-$SRCDIR/build/lib/keyshare/libmmtls-preload.so}
W=$(mktemp -d "${TMPDIR:-/tmp}/mmtls-$T_NAME.XXXXXX")
FAILS=0
PIDS=()

log() { printf '[%s] %s\n' "$T_NAME" "$*"; }
fail() {
    FAILS=$((FAILS + 1))
    printf '[%s] FAIL %s: %s\n' "$T_NAME" "$1" "${*:2}" >&2
}
skip() {
    printf '[%s] SKIP: %s\n' "$T_NAME" "$*" >&2
    cleanup
    exit 77
}
cleanup() {
    local p
    exec 7>&-
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
trap cleanup EXIT

for c in openssl curl python3 timeout; do
    command -v "$c" >/dev/null || skip "$c not installed"
done
[ -f "$PRELOAD" ] || skip "$PRELOAD not built"
if ldd "$PRELOAD" | grep -q -E 'libasan|libtsan'; then
    skip "sanitizer build: the shim cannot be preloaded into uninstrumented programs"
fi

# A free TCP port on 127.0.0.1.
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0))
print(s.getsockname()[1])'
}

# wait_port PORT - until something listens on 127.0.0.1:PORT (5 s).
wait_port() {
    local _
    for _ in $(seq 50); do
        if python3 -c "import socket,sys; socket.create_connection(('127.0.0.1',$1),0.2)" \
            2>/dev/null; then
            return 0
        fi
        sleep 0.1
    done
    return 1
}

# ---------------------------------------------------------------------------------------------
# PKI: a CA, the key server's certificate (IP SAN 127.0.0.1), a client certificate for the key
# channel, and the web server's certificate (127.0.0.1, localhost, bypass.test).
pki() {
    cd "$W" || return 1
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key \
        -out ca.crt -days 30 -subj "/CN=keyshare test CA" \
        -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null || return 1
    mk() { # NAME CN EXT
        openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$1.key" \
            -subj "/CN=$2" -out "$1.csr" 2>/dev/null &&
            printf '%s\n' "$3" >"$1.ext" &&
            openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 30 \
                -extfile "$1.ext" -out "$1.crt" 2>/dev/null
    }
    mk ks keyserver "subjectAltName=IP:127.0.0.1
extendedKeyUsage=serverAuth" || return 1
    mk client client.test "extendedKeyUsage=clientAuth" || return 1
    mk web server.test "subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:bypass.test
extendedKeyUsage=serverAuth" || return 1
    cd - >/dev/null || return 1
}
pki || skip "cannot make the test PKI"

mkdir -p "$W/www" "$W/tmp"
head -c 3000 /dev/urandom | base64 >"$W/www/index.html"

# ---------------------------------------------------------------------------------------------
# The web server.
WEB_PORT=$(free_port)
start_web() {
    if command -v nginx >/dev/null; then
        cat >"$W/nginx.conf" <<EOF
daemon off;
master_process off;
worker_processes 1;
pid $W/nginx.pid;
error_log $W/nginx.err info;
events { worker_connections 64; }
http {
    access_log off;
    client_body_temp_path $W/tmp/body;
    proxy_temp_path $W/tmp/proxy;
    fastcgi_temp_path $W/tmp/fastcgi;
    uwsgi_temp_path $W/tmp/uwsgi;
    scgi_temp_path $W/tmp/scgi;
    server {
        listen 127.0.0.1:$WEB_PORT ssl;
        server_name _;
        ssl_certificate $W/web.crt;
        ssl_certificate_key $W/web.key;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_ciphers ALL;
        ssl_early_data on;
        ssl_session_tickets on;
        location / { root $W/www; }
    }
}
EOF
        timeout 280 nginx -p "$W" -c "$W/nginx.conf" >"$W/nginx.out" 2>&1 &
        PIDS+=($!)
        WEB=nginx
    else
        (cd "$W/www" && exec timeout 280 openssl s_server -accept "127.0.0.1:$WEB_PORT" \
            -cert "$W/web.crt" -key "$W/web.key" -WWW -quiet -early_data) \
            >"$W/web.out" 2>&1 </dev/null &
        PIDS+=($!)
        WEB=s_server
    fi
    wait_port "$WEB_PORT"
}
start_web || skip "cannot start the web server"
log "web server: $WEB on 127.0.0.1:$WEB_PORT"

# ---------------------------------------------------------------------------------------------
# The key channel receiver: openssl s_server, TLS 1.3 only, client certificate required.
KS_PORT=$(free_port)
# Its stdin is a FIFO held open by this script (fd 7): s_server does not read the connection
# once its stdin is at EOF, and a `sleep | s_server` pipeline would leave the sleep behind.
mkfifo "$W/ks.in"
(exec timeout 285 openssl s_server -accept "127.0.0.1:$KS_PORT" -tls1_3 -Verify 1 \
    -CAfile "$W/ca.crt" -cert "$W/ks.crt" -key "$W/ks.key" -quiet <"$W/ks.in" \
    >"$W/channel.bin" 2>"$W/ks.err") &
PIDS+=($!)
exec 7>"$W/ks.in"
wait_port "$KS_PORT" || skip "cannot start the key channel receiver"
# The probe above was a plain TCP connect: the receiver saw no message from it.

export MMTLS_CA=$W/ca.crt MMTLS_CERT=$W/client.crt MMTLS_KEY=$W/client.key
export MMTLS_KEYSHARE_STATS=1
KS_ADDR=127.0.0.1:$KS_PORT
URL=https://127.0.0.1:$WEB_PORT/index.html

# ---------------------------------------------------------------------------------------------
# The checker (docs/keyproto.md framing and grammar; keys compared with the key logs).
cat >"$W/kp.py" <<'PYEOF'
import hashlib, hmac, os, re, struct, sys

def parse_stream(b):
    msgs, off = [], 0
    while off < len(b):
        assert len(b) - off >= 4, "truncated header at %d" % off
        ver, typ, ln = b[off], b[off + 1], struct.unpack(">H", b[off + 2:off + 4])[0]
        assert ver == 1, "version %d" % ver
        assert typ in (1, 2, 3), "type %d" % typ
        assert ln <= 512, "length %d" % ln
        body = b[off + 4:off + 4 + ln]
        assert len(body) == ln, "truncated body"
        msgs.append(parse_body(typ, body))
        off += 4 + ln
    return msgs

def parse_tuple(body, o):
    ipv = body[o]
    al = {4: 4, 6: 16}[ipv]
    c, s = body[o + 1:o + 1 + al], body[o + 1 + al:o + 1 + 2 * al]
    cp, sp = struct.unpack(">HH", body[o + 1 + 2 * al:o + 5 + 2 * al])
    return dict(ipv=ipv, cip=c, sip=s, cport=cp, sport=sp), o + 5 + 2 * al

def parse_body(typ, body):
    m = dict(type=typ)
    if typ == 3:
        assert body == b"", "keepalive body"
        return m
    m["cr"] = body[0:32].hex()
    flags = body[32]
    o = 33
    m["flags"] = flags
    m["tuple"] = None
    if flags & 1:
        m["tuple"], o = parse_tuple(body, o)
    if typ == 2:
        assert flags & ~1 == 0, "bypass flags"
        n = body[o]
        m["sni"] = body[o + 1:o + 1 + n].decode()
        o += 1 + n
    else:
        assert flags & ~0x0f == 0, "keys flags"
        m["ver"], m["suite"] = struct.unpack(">HH", body[o:o + 4])
        cnt = body[o + 4]
        assert 1 <= cnt <= 8
        o += 5
        m["secrets"] = {}
        for _ in range(cnt):
            k, ln = body[o], body[o + 1]
            assert 1 <= ln <= 64 and k not in m["secrets"]
            m["secrets"][k] = body[o + 2:o + 2 + ln].hex()
            assert len(m["secrets"][k]) == 2 * ln
            o += 2 + ln
    assert o == len(body), "trailing bytes in body"
    return m

def keylog(path):
    d = {}
    for line in open(path):
        f = line.split()
        if len(f) == 3:
            d.setdefault(f[1].lower(), {})[f[0]] = f[2].lower()
    return d

def prf(md, secret, label, seed, n):
    out, a = b"", label + seed
    a = hmac.new(secret, a, md).digest()
    while len(out) < n:
        out += hmac.new(secret, a + label + seed, md).digest()
        a = hmac.new(secret, a, md).digest()
    return out[:n]

# suite -> (mac_len, key_len, aead_fixed_iv_len or None for CBC, prf digest)
SUITES = {
    0xC02B: (0, 16, 4, hashlib.sha256), 0xC02C: (0, 32, 4, hashlib.sha384),
    0xC02F: (0, 16, 4, hashlib.sha256), 0xC030: (0, 32, 4, hashlib.sha384),
    0xCCA8: (0, 32, 12, hashlib.sha256), 0xCCA9: (0, 32, 12, hashlib.sha256),
    0x009C: (0, 16, 4, hashlib.sha256), 0x009D: (0, 32, 4, hashlib.sha384),
    0xC023: (32, 16, None, hashlib.sha256), 0xC024: (48, 32, None, hashlib.sha384),
    0xC027: (32, 16, None, hashlib.sha256), 0xC028: (48, 32, None, hashlib.sha384),
    0xC009: (20, 16, None, hashlib.sha256), 0xC00A: (20, 32, None, hashlib.sha256),
    0xC013: (20, 16, None, hashlib.sha256), 0xC014: (20, 32, None, hashlib.sha256),
}

def server_randoms(path):
    """ServerHello randoms from `openssl s_client -msg` or `gnutls-cli -d 9` output, in order."""
    out, cur = [], None
    txt = open(path, errors="replace").read()
    if "INT: SERVER RANDOM" in txt:
        return re.findall(r"INT: SERVER RANDOM\[32\]: ([0-9a-f]{64})", txt)
    for line in open(path, errors="replace"):
        if line.startswith("<<<") or line.startswith(">>>"):
            if cur is not None:
                out.append(bytes.fromhex(cur)[6:38].hex())
            cur = "" if "ServerHello" in line and line.startswith("<<<") else None
        elif cur is not None:
            if re.fullmatch(r"\s*([0-9a-f]{2}\s*)+", line):
                cur += line.replace(" ", "").strip()
    if cur is not None:
        out.append(bytes.fromhex(cur)[6:38].hex())
    return out

def main():
    mode, dump = sys.argv[1], open(sys.argv[2], "rb").read()
    msgs = parse_stream(dump)
    by_cr = {}
    for m in msgs:
        if m["type"] != 3:
            by_cr.setdefault(m["cr"], []).append(m)
    if mode == "count":
        print(sum(1 for m in msgs if m["type"] != 3))
        return 0
    if mode == "bypass":
        sni, kl = sys.argv[3], keylog(sys.argv[4])
        crs = [cr for cr in kl if cr in by_cr]
        assert crs, "no message for the session"
        for cr in crs:
            ms = by_cr[cr]
            assert len(ms) == 1 and ms[0]["type"] == 2, "want exactly one BYPASS: %r" % ms
            assert ms[0]["sni"] == sni, ms[0]["sni"]
        print("ok: BYPASS for %s" % sni)
        return 0
    kl, port = keylog(sys.argv[3]), int(sys.argv[4])
    srs = server_randoms(sys.argv[5]) if len(sys.argv) > 5 else []
    want_early = mode == "tls13-early"
    n = 0
    for cr, labels in kl.items():
        ms = [m for m in by_cr.get(cr, []) if m["type"] == 1]
        if mode.startswith("tls13"):
            # The server handshake secret goes ahead at the ServerHello (docs/keyproto.md: an
            # inline middlebox holds the server's flight until it comes), the whole set after.
            assert len(ms) == 2, "session %s: %d KEYS messages, want 2" % (cr[:16], len(ms))
            first = ms[0]["secrets"]
            assert 3 in first and set(first) <= {1, 2, 3}, "first message kinds %r" % sorted(first)
            assert first[3] == labels["SERVER_HANDSHAKE_TRAFFIC_SECRET"], "kind 3 differs"
            ms = ms[1:]
        assert len(ms) == 1, "session %s: %d KEYS messages" % (cr[:16], len(ms))
        m = ms[0]
        t = m["tuple"]
        # curl reads and writes through its own BIO: no descriptor, so no tuple (optional).
        if t is None and os.environ.get("KP_NO_TUPLE_OK") == "1":
            t = dict(ipv=4, cip=bytes([127, 0, 0, 1]), sip=bytes([127, 0, 0, 1]), sport=port)
        assert t and t["ipv"] == 4 and t["cip"] == bytes([127, 0, 0, 1]) and \
            t["sip"] == bytes([127, 0, 0, 1]) and t["sport"] == port, "tuple %r" % t
        sec = m["secrets"]
        for k, v in labels.items():
            if "EXPORTER" in k or k == "CLIENT_RANDOM":
                assert v not in dump.hex(), "%s leaked into the channel" % k
        if mode.startswith("tls13"):
            assert m["ver"] == 0x0304 and m["suite"] in (0x1301, 0x1302, 0x1303), m
            want = {2: "CLIENT_HANDSHAKE_TRAFFIC_SECRET", 3: "SERVER_HANDSHAKE_TRAFFIC_SECRET",
                    4: "CLIENT_TRAFFIC_SECRET_0", 5: "SERVER_TRAFFIC_SECRET_0"}
            if "CLIENT_EARLY_TRAFFIC_SECRET" in labels:
                want[1] = "CLIENT_EARLY_TRAFFIC_SECRET"
                assert m["flags"] & 4, "EARLY flag missing"
            else:
                assert not m["flags"] & 4, "EARLY flag without early secret"
            assert set(sec) == set(want), "kinds %r" % sorted(sec)
            for k, lab in want.items():
                assert sec[k] == labels[lab], "kind %d differs from the key log" % k
            if want_early:
                assert 1 in sec, "no early secret"
        else:
            assert m["ver"] == 0x0303, "version %x" % m["ver"]
            assert m["suite"] in SUITES, "suite %04x not in the checker's table" % m["suite"]
            mac, key, fiv, md = SUITES[m["suite"]]
            kinds = {18, 19} | ({16, 17} if mac else set()) | ({20, 21} if fiv else set())
            assert set(sec) == kinds, "kinds %r for suite %04x" % (sorted(sec), m["suite"])
            assert len(sec[18]) == 2 * key and (not mac or len(sec[16]) == 2 * mac)
            if srs:
                ms_ = bytes.fromhex(labels["CLIENT_RANDOM"])
                ok = False
                for sr in srs:
                    kb = prf(md, ms_, b"key expansion", bytes.fromhex(sr) + bytes.fromhex(cr),
                             2 * (mac + key + (fiv or 0)))
                    parts, o = {}, 0
                    for k, ln in ((16, mac), (17, mac), (18, key), (19, key),
                                  (20, fiv or 0), (21, fiv or 0)):
                        if ln:
                            parts[k] = kb[o:o + ln].hex()
                        o += ln
                    ok = ok or parts == sec
                assert ok, "key block differs from PRF(master, server_random, client_random)"
        n += 1
    assert n > 0, "no session in the key log"
    print("ok: %d session(s) %s%s" % (n, mode, " (key block recomputed)" if srs else ""))
    return 0

try:
    sys.exit(main())
except AssertionError as e:
    print("check failed: %s" % e)
    sys.exit(1)
PYEOF

check() { # CASE MODE ARGS... - run the checker on everything received so far
    local out
    sleep 0.3 # the receiver writes what it read; give it a moment after the client exited
    if out=$(python3 "$W/kp.py" "$2" "$W/channel.bin" "${@:3}" 2>&1); then
        log "$1: $out"
    else
        fail "$1" "$out"
    fi
}

stat_of() { # FILE FIELD - a counter from the MMTLS_KEYSHARE_STATS line
    sed -n "s/.*mmtls-keyshare: pid=.* $2=\([0-9]*\).*/\1/p" "$1" | tail -1
}

expect_page() { # CASE FILE
    if cmp -s "$2" "$W/www/index.html"; then
        return 0
    fi
    fail "$1" "the page was not fetched intact"
    return 1
}

run_pre() { # run a command with the shim and the key server configured
    env LD_PRELOAD="$PRELOAD" MMTLS_KEYSERVER="$KS_ADDR" "$@"
}

# ---------------------------------------------------------------------------------------------
# curl, TLS 1.3
log "curl TLS 1.3"
rm -f "$W/k_curl13"
SSLKEYLOGFILE=$W/k_curl13 run_pre timeout 20 curl -sS --cacert "$W/ca.crt" --tlsv1.3 \
    -o "$W/out" "$URL" 2>"$W/curl13.err" || fail curl13 "curl failed: $(cat "$W/curl13.err")"
expect_page curl13 "$W/out"
[ -s "$W/k_curl13" ] || fail curl13 "curl's own key log (chained callback) is empty"
KP_NO_TUPLE_OK=1 check curl13 tls13 "$W/k_curl13" "$WEB_PORT"
[ "$(stat_of "$W/curl13.err" sent)" = 2 ] || fail curl13 "stats: $(grep mmtls "$W/curl13.err")"

# curl, TLS 1.2 AEAD and CBC
for c in ECDHE-ECDSA-AES128-GCM-SHA256 ECDHE-ECDSA-CHACHA20-POLY1305 ECDHE-ECDSA-AES256-SHA384 \
    ECDHE-ECDSA-AES128-SHA; do
    log "curl TLS 1.2 $c"
    rm -f "$W/k_curl12"
    SSLKEYLOGFILE=$W/k_curl12 run_pre timeout 20 curl -sS --cacert "$W/ca.crt" --tlsv1.2 \
        --tls-max 1.2 --ciphers "$c" -o "$W/out" "$URL" 2>"$W/curl12.err" ||
        fail "curl12 $c" "curl failed: $(cat "$W/curl12.err")"
    expect_page "curl12 $c" "$W/out"
    KP_NO_TUPLE_OK=1 check "curl12 $c" tls12 "$W/k_curl12" "$WEB_PORT"
done

# python3 ssl module (loads libssl through a dlopen'ed extension)
log "python3 ssl"
rm -f "$W/k_py"
cat >"$W/get.py" <<EOF
import ssl, urllib.request
ctx = ssl.create_default_context(cafile="$W/ca.crt")
ctx.keylog_filename = "$W/k_py"
for _ in range(2):
    body = urllib.request.urlopen("$URL", context=ctx, timeout=10).read()
open("$W/out", "wb").write(body)
EOF
run_pre timeout 30 python3 "$W/get.py" 2>"$W/py.err" ||
    fail python3 "python failed: $(cat "$W/py.err")"
expect_page python3 "$W/out"
check python3 tls13 "$W/k_py" "$WEB_PORT"

# openssl s_client, TLS 1.3 and TLS 1.2 (key block recomputed from the ServerHello random)
log "openssl s_client TLS 1.3"
rm -f "$W/k_sc13"
printf 'GET /index.html HTTP/1.0\r\n\r\n' | run_pre timeout 20 openssl s_client \
    -connect "127.0.0.1:$WEB_PORT" -tls1_3 -CAfile "$W/ca.crt" -keylogfile "$W/k_sc13" \
    -ign_eof -quiet >"$W/sc13.out" 2>"$W/sc13.err" || fail s_client13 "s_client failed"
check s_client13 tls13 "$W/k_sc13" "$WEB_PORT"
for c in ECDHE-ECDSA-AES256-GCM-SHA384 ECDHE-ECDSA-AES128-SHA256; do
    log "openssl s_client TLS 1.2 $c"
    rm -f "$W/k_sc12"
    printf 'GET /index.html HTTP/1.0\r\n\r\n' | run_pre timeout 20 openssl s_client \
        -connect "127.0.0.1:$WEB_PORT" -tls1_2 -cipher "$c" -CAfile "$W/ca.crt" -msg \
        -keylogfile "$W/k_sc12" -ign_eof >"$W/sc12.out" 2>"$W/sc12.err" ||
        fail "s_client12 $c" "s_client failed"
    check "s_client12 $c" tls12 "$W/k_sc12" "$WEB_PORT" "$W/sc12.out"
done

# 0-RTT: resume with early data (nginx ssl_early_data on)
if [ "$WEB" = nginx ]; then
    log "openssl s_client 0-RTT"
    printf 'GET /index.html HTTP/1.0\r\n\r\n' >"$W/early.txt"
    printf 'GET /index.html HTTP/1.0\r\n\r\n' | timeout 20 openssl s_client \
        -connect "127.0.0.1:$WEB_PORT" -tls1_3 -CAfile "$W/ca.crt" -sess_out "$W/sess.pem" \
        -ign_eof -quiet >/dev/null 2>&1
    rm -f "$W/k_early"
    run_pre timeout 20 openssl s_client -connect "127.0.0.1:$WEB_PORT" -tls1_3 \
        -CAfile "$W/ca.crt" -sess_in "$W/sess.pem" -early_data "$W/early.txt" \
        -keylogfile "$W/k_early" -ign_eof -quiet </dev/null >"$W/early.out" 2>"$W/early.err"
    if grep -q CLIENT_EARLY_TRAFFIC_SECRET "$W/k_early" 2>/dev/null; then
        check 0rtt tls13-early "$W/k_early" "$WEB_PORT"
    else
        fail 0rtt "s_client sent no early data (resumption failed?)"
    fi
fi

# MMTLS_BYPASS: BYPASS with the SNI, no secrets
log "bypass"
rm -f "$W/k_byp"
SSLKEYLOGFILE=$W/k_byp MMTLS_BYPASS="*.example.org, bypass.*" run_pre timeout 20 curl -sS \
    --cacert "$W/ca.crt" --resolve "bypass.test:$WEB_PORT:127.0.0.1" -o "$W/out" \
    "https://bypass.test:$WEB_PORT/index.html" 2>"$W/byp.err" || fail bypass "curl failed"
expect_page bypass "$W/out"
check bypass bypass bypass.test "$W/k_byp"
[ "$(stat_of "$W/byp.err" sent_bypass)" = 1 ] || fail bypass "stats: $(grep mmtls "$W/byp.err")"

# GnuTLS programs (preload_gnutls.c): wget (Debian links it with GnuTLS) and gnutls-cli.  Their
# SSLKEYLOGFILE is written by GnuTLS's own hook, which the shim chains from its hook.
gnutls_prog() { # PROGRAM - true when it is linked with GnuTLS
    command -v "$1" >/dev/null && ldd "$(command -v "$1")" | grep -q libgnutls
}
if command -v wget >/dev/null && ! gnutls_prog wget; then
    # A wget built with OpenSSL is checked like curl.
    log "wget (OpenSSL)"
    rm -f "$W/out" "$W/k_wget"
    SSLKEYLOGFILE=$W/k_wget run_pre timeout 20 wget -q --ca-certificate="$W/ca.crt" \
        -O "$W/out" "$URL" 2>"$W/wget.err" || fail wget "wget failed: $(cat "$W/wget.err")"
    expect_page wget "$W/out"
    check wget tls13 "$W/k_wget" "$WEB_PORT"
fi
# GnuTLS priority strings: TLS 1.2 with its preferred (AEAD) suite, and TLS 1.2 with CBC only.
G12_AEAD=NORMAL:-VERS-TLS1.3:-VERS-TLS1.1:-VERS-TLS1.0
G12_CBC=NORMAL:-VERS-TLS1.3:-AES-256-GCM:-AES-128-GCM:-CHACHA20-POLY1305:-AES-128-CCM:-AES-256-CCM
if gnutls_prog wget; then
    # TLS 1.3 (the default), then TLS 1.2 with an AEAD and a CBC suite.  Debian's wget maps
    # --secure-protocol=TLSv1_2 to "1.2 or later", so the version is pinned with a priority
    # string (--ciphers), with --secure-protocol=TLSv1_2 kept as asked.
    for v in 13 "12 $G12_AEAD" "12 $G12_CBC"; do
        read -r ver prio <<<"$v"
        log "wget (GnuTLS) TLS 1.${ver#1} $prio"
        rm -f "$W/out" "$W/k_wget"
        opts=()
        [ "$ver" = 12 ] && opts=(--secure-protocol=TLSv1_2 "--ciphers=$prio")
        SSLKEYLOGFILE=$W/k_wget run_pre timeout 20 wget -q --ca-certificate="$W/ca.crt" \
            "${opts[@]}" -O "$W/out" "$URL" 2>"$W/wget.err" ||
            fail "wget$ver" "wget failed: $(cat "$W/wget.err")"
        expect_page "wget$ver" "$W/out"
        [ -s "$W/k_wget" ] || fail "wget$ver" "GnuTLS's SSLKEYLOGFILE is empty (hook not chained)"
        check "wget$ver $prio" "tls$ver" "$W/k_wget" "$WEB_PORT"
        [ "$(stat_of "$W/wget.err" sent)" = "$([ "$ver" = 13 ] && echo 2 || echo 1)" ] ||
            fail "wget$ver" "stats: $(grep mmtls "$W/wget.err")"
    done
fi
if gnutls_prog gnutls-cli; then
    # gnutls-cli -d 9 prints the ServerHello random ("INT: SERVER RANDOM"): the TLS 1.2 key
    # block is recomputed from it and the master secret in the key log.
    for pr in NORMAL "$G12_AEAD" "$G12_CBC"; do
        case $pr in *-VERS-TLS1.3*) v=12 ;; *) v=13 ;; esac
        log "gnutls-cli TLS 1.${v#1} $pr"
        rm -f "$W/k_gcli"
        printf 'GET /index.html HTTP/1.0\r\n\r\n' | SSLKEYLOGFILE=$W/k_gcli run_pre timeout 20 \
            gnutls-cli -d 9 --priority "$pr" --x509cafile "$W/ca.crt" -p "$WEB_PORT" 127.0.0.1 \
            >"$W/gcli.out" 2>"$W/gcli.err" || fail "gnutls-cli$v" "gnutls-cli failed"
        if [ "$v" = 12 ]; then
            check "gnutls-cli$v $pr" tls12 "$W/k_gcli" "$WEB_PORT" "$W/gcli.err"
        else
            check "gnutls-cli$v" tls13 "$W/k_gcli" "$WEB_PORT"
        fi
    done
    log "gnutls-cli bypass"
    rm -f "$W/k_gbyp"
    printf 'GET /index.html HTTP/1.0\r\n\r\n' | SSLKEYLOGFILE=$W/k_gbyp MMTLS_BYPASS="bypass.*" \
        run_pre timeout 20 gnutls-cli --sni-hostname bypass.test --x509cafile "$W/ca.crt" \
        -p "$WEB_PORT" 127.0.0.1 >"$W/gbyp.out" 2>"$W/gbyp.err" ||
        fail gnutls-bypass "gnutls-cli failed"
    check gnutls-bypass bypass bypass.test "$W/k_gbyp"
fi

# Only KEYS/BYPASS that the cases above expect; everything parsed exactly.
n=$(python3 "$W/kp.py" count "$W/channel.bin")
log "channel: $n message(s), $(stat -c %s "$W/channel.bin") bytes"

# ---------------------------------------------------------------------------------------------
# Key server down: the handshake must not suffer; the message is counted as dropped.
log "key server down"
DEAD_PORT=$(free_port)
start=$(date +%s%N)
SSLKEYLOGFILE=$W/k_dead env LD_PRELOAD="$PRELOAD" MMTLS_KEYSERVER=127.0.0.1:$DEAD_PORT \
    timeout 20 curl -sS --cacert "$W/ca.crt" -o "$W/out" "$URL" 2>"$W/dead.err" ||
    fail down "curl failed: $(cat "$W/dead.err")"
ms=$((($(date +%s%N) - start) / 1000000))
expect_page down "$W/out"
if [ "$(stat_of "$W/dead.err" dropped_no_channel)" = 2 ] && # TLS 1.3: two messages
    [ "$(stat_of "$W/dead.err" sent)" = 0 ] &&
    [ "$(stat_of "$W/dead.err" connect_failures)" -ge 1 ]; then
    log "down: page fetched in ${ms} ms, drop counted: $(grep -o 'sent=.*' "$W/dead.err")"
else
    fail down "stats: $(grep mmtls "$W/dead.err")"
fi
[ "$ms" -lt 3000 ] || fail down "curl took ${ms} ms with the key server down"

# Channel refused by the server (no client certificate): still no harm to the application.
log "no client certificate"
env LD_PRELOAD="$PRELOAD" MMTLS_KEYSERVER="$KS_ADDR" MMTLS_CERT= MMTLS_KEY= \
    timeout 20 curl -sS --cacert "$W/ca.crt" -o "$W/out" "$URL" 2>"$W/nocert.err" ||
    fail nocert "curl failed: $(cat "$W/nocert.err")"
expect_page nocert "$W/out"
# TLS 1.3 client authentication fails after the client's Finished, so the client may believe
# its write went out: only the application's success is asserted here.
log "nocert: $(grep -o 'sent=.*' "$W/nocert.err")"

# No MMTLS_KEYSERVER: pure pass-through, the application's key log still works.
log "pass-through"
rm -f "$W/k_pt"
SSLKEYLOGFILE=$W/k_pt env -u MMTLS_KEYSERVER LD_PRELOAD="$PRELOAD" timeout 20 curl -sS \
    --cacert "$W/ca.crt" -o "$W/out" "$URL" 2>"$W/pt.err" || fail passthrough "curl failed"
expect_page passthrough "$W/out"
grep -q CLIENT_TRAFFIC_SECRET_0 "$W/k_pt" || fail passthrough "curl's key log is empty"
grep -q mmtls "$W/pt.err" && fail passthrough "the shim did something: $(cat "$W/pt.err")"
if gnutls_prog wget; then
    rm -f "$W/k_pt" "$W/out"
    SSLKEYLOGFILE=$W/k_pt env -u MMTLS_KEYSERVER LD_PRELOAD="$PRELOAD" timeout 20 wget -q \
        --ca-certificate="$W/ca.crt" -O "$W/out" "$URL" 2>"$W/pt.err" ||
        fail passthrough-wget "wget failed"
    expect_page passthrough-wget "$W/out"
    grep -q CLIENT_TRAFFIC_SECRET_0 "$W/k_pt" || fail passthrough-wget "GnuTLS's key log is empty"
    grep -q mmtls "$W/pt.err" && fail passthrough-wget "the shim did something: $(cat "$W/pt.err")"
fi

if [ "$FAILS" -gt 0 ]; then
    log "$FAILS failure(s)"
    exit 1
fi
log "all passed"
exit 0
