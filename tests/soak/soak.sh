#!/usr/bin/env bash
# tests/soak/soak.sh: mmtlsd inline (2 workers) under mixed traffic for SOAK_SECONDS (default
# 600; SOAK_SECONDS=45 is the short mode CI can run). Not part of ctest: run it by hand, as
# root, after a build:  [SOAK_SECONDS=N] [MMTLS_BUILDDIR=build] bash tests/soak/soak.sh
#
# Traffic, in rounds until the time is up (every command under `timeout`, every round waited
# for): curl through the preload shim (keys over the key channel) with HTTP/1.1 and HTTP/2
# against nginx, TLS 1.2 and 1.3, short (16 KB) and long (4 MB) downloads, some in parallel;
# openssl s_client sessions (TLS 1.2 and 1.3) under the shim; curl without keys (must be
# blocked after --key-wait); plain HTTP to a python server (not TLS, passes).
#
# Checks:
#   - memory is flat: mmtlsd's VmRSS, sampled every SOAK_SAMPLE seconds (default 3) into
#     rss.tsv, after a warm-up (the first 10% of samples): the maximum of the last third is
#     within 10% + 8 MB of the maximum of the first third;
#   - every TLS session the clients opened is logged: the number of eve `tls` events equals
#     the connections the clients made (curl's num_connects, one per s_client), the keyed ones
#     decrypted and not blocked, every keyless one blocked (its event says so);
#   - every keyed transfer completed with the expected size (200, bytes), every keyless one
#     failed, every plain one completed.
# Results (rss.tsv, eve.json, mmtlsd's log, summary.txt) stay in SOAK_OUT (default
# /tmp/mmtls-soak.PID). Exit 0 pass, 1 fail, 77 skip.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
SOAK_SECONDS=${SOAK_SECONDS:-600}
SOAK_SAMPLE=${SOAK_SAMPLE:-3}
NAME=soak
P=${MMTLS_TB_PREFIX:-mmtls-sk$$}
PY=/usr/bin/python3
OUT=${SOAK_OUT:-/tmp/mmtls-soak.$$}

. "$ROOT/tests/integration/lib_testbed.sh"
tb_paths
[ "$(id -u)" = 0 ] || skip "needs root"
for c in ip nginx curl openssl timeout; do command -v $c >/dev/null || skip "no $c"; done
[ -x "$MMTLSD" ] && [ -f "$SHIM" ] || { echo "[$NAME] FAIL: build first ($MMTLSD)"; exit 1; }
[ "$SOAK_SECONDS" -ge 30 ] 2>/dev/null || { echo "[$NAME] SOAK_SECONDS must be >= 30"; exit 2; }

W=$(mktemp -d /tmp/mmtls-soakw.XXXXXX)
chmod 755 "$W"
mkdir -p "$OUT"
MB= SAMPLER= HTTP_PID=
cleanup() {
    [ -n "$SAMPLER" ] && kill "$SAMPLER" 2>/dev/null
    [ -n "$MB" ] && kill "$MB" 2>/dev/null
    [ -f "$W/nginx.pid" ] && kill "$(cat "$W/nginx.pid" 2>/dev/null)" 2>/dev/null
    [ -n "$HTTP_PID" ] && kill "$HTTP_PID" 2>/dev/null
    jobs -p | xargs -r kill 2>/dev/null
    tb_down
    rm -rf "$W"
}
trap cleanup EXIT

tb_up "$W"
mkdir -p "$W/www"
head -c 16384 /dev/urandom >"$W/www/small.bin"
head -c 4000000 /dev/urandom >"$W/www/long.bin"
tb_nginx --http2 --http 'keepalive_requests 1000;'
(cd "$W/www" && exec ip netns exec "$P-server" timeout $((SOAK_SECONDS + 300)) \
    $PY -m http.server 8080 --bind 198.18.4.2 >/dev/null 2>&1) &
HTTP_PID=$!

tb_mbox_start "$OUT/mmtlsd.log" $((SOAK_SECONDS + 300)) --workers 2 --eve "$OUT/eve.json" \
    --log-http -v

# VmRSS sampler: "seconds_since_start rss_kb", bounded by the soak time
T0=$(date +%s)
(
    end=$((T0 + SOAK_SECONDS + 120))
    while [ "$(date +%s)" -lt $end ] && [ -r "/proc/$MBPID/status" ]; do
        kb=$(awk '/^VmRSS:/ { print $2 }' "/proc/$MBPID/status" 2>/dev/null)
        [ -n "$kb" ] && echo "$(($(date +%s) - T0)) $kb"
        sleep "$SOAK_SAMPLE"
    done
) >"$OUT/rss.tsv" &
SAMPLER=$!

tb_keys
CURL=(curl -sS --resolve server.test:443:198.18.4.2 --cacert "$W/pki/ca.crt"
    -o /dev/null -w '%{num_connects} %{http_code} %{size_download} %{local_port}\n')
# stacks PID: the threads' stacks of PID's descendants into $OUT/hung-*.txt (a client about to
# be killed by its timeout: the evidence of where it hung).
stacks() {
    local c
    for c in $(pgrep -P "$1"); do
        stacks "$c"
        gdb -p "$c" -batch -ex 'thread apply all bt' >"$OUT/hung-$c.txt" 2>&1 || true
    done
}
# bounded SECONDS CMD...: CMD in the client namespace under timeout; the stacks are taken 2 s
# before the kill.
bounded() {
    local secs=$1 pid i=0
    shift
    timeout "$secs" ip netns exec "$P-client" "$@" &
    pid=$!
    while kill -0 "$pid" 2>/dev/null && [ $i -lt $(((secs - 2) * 10)) ]; do
        sleep 0.1
        i=$((i + 1))
    done
    if kill -0 "$pid" 2>/dev/null; then
        command -v gdb >/dev/null && stacks "$pid"
        { ip netns exec "$P-client" ss -tnoi; ip netns exec "$P-server" ss -tnoi; } \
            >"$OUT/hung-ss-$pid.txt" 2>&1
    fi
    wait "$pid"
}
SMALL=16384 LONG=4000000

# keyed KIND SIZE CURL-ARGS...: one keyed curl transfer; appends "KIND connects code size want"
keyed() {
    local kind=$1 want=$2
    shift 2
    local r
    r=$(bounded 30 "${KEYS[@]}" "${CURL[@]}" "$@" 2> >(sed "s|^|$kind $*: |" >>"$OUT/curl.err"))
    # killed by timeout (124): its -w line is lost with its stdio buffer
    [ $? = 124 ] && r="0 hung 0 0"
    set -- ${r:-0 000 0 0}
    echo "$kind $1 $2 $3 $want $4" >>"$W/results"
}
# s_client TLSFLAG: one request over openssl s_client under the shim
sclient() {
    local got
    got=$(printf 'GET /small.bin HTTP/1.0\r\nHost: server.test\r\n\r\n' |
        client "${KEYS[@]}" timeout 20 openssl s_client -connect 198.18.4.2:443 "$1" -quiet \
            -ign_eof -servername server.test -CAfile "$W/pki/ca.crt" \
            2> >(sed "s|^|sclient$1: |" >>"$OUT/sclient.err") | wc -c)
    # headers + 16384 bytes of body
    echo "sclient$1 1 $([ "$got" -gt $SMALL ] && echo 200 || echo 000) $got $SMALL 0" >>"$W/results"
}
nokeys() {
    local r
    r=$(bounded 30 "${CURL[@]}" "$@" 2>/dev/null | tail -1)
    set -- ${r:-0 000 0 0}
    echo "nokeys $1 $2 $3 blocked $4" >>"$W/results"
}
plain() {
    local r
    r=$(client timeout 30 curl -sS -o /dev/null \
        -w '%{num_connects} %{http_code} %{size_download} %{local_port}\n' \
        http://198.18.4.2:8080/small.bin 2> >(sed "s|^|plain: |" >>"$OUT/curl.err") | tail -1)
    set -- ${r:-0 000 0 0}
    echo "plain $1 $2 $3 $SMALL $4" >>"$W/results"
}

: >"$W/results"
: >"$OUT/curl.err"
rounds=0
deadline=$((T0 + SOAK_SECONDS))
U=https://server.test
while [ "$(date +%s)" -lt $deadline ] && [ $rounds -lt 100000 ]; do
    rounds=$((rounds + 1))
    RP=()
    keyed h1-tls13-short $SMALL --http1.1 --tlsv1.3 "$U/small.bin?r=$rounds" &
    RP+=($!)
    keyed h2-tls13-short $SMALL --http2 --tlsv1.3 "$U/small.bin?r=$rounds" &
    RP+=($!)
    keyed h1-tls12-short $SMALL --http1.1 --tlsv1.2 --tls-max 1.2 "$U/small.bin?r=$rounds" &
    RP+=($!)
    keyed h2-tls12-long $LONG --http2 --tlsv1.2 --tls-max 1.2 "$U/long.bin?r=$rounds" &
    RP+=($!)
    keyed h1-tls13-long $LONG --http1.1 --tlsv1.3 "$U/long.bin?r=$rounds" &
    RP+=($!)
    sclient -tls1_3 &
    RP+=($!)
    sclient -tls1_2 &
    RP+=($!)
    plain &
    RP+=($!)
    if [ $((rounds % 3)) = 0 ]; then
        nokeys --http1.1 "$U/long.bin?nokeys=$rounds" &
        RP+=($!)
    fi
    wait "${RP[@]}"
done
echo "[$NAME] $rounds rounds of traffic in $(($(date +%s) - T0)) s"
sleep "$SOAK_SAMPLE"
kill "$SAMPLER" 2>/dev/null
wait "$SAMPLER" 2>/dev/null
SAMPLER=
tb_mbox_stop

cp "$W/results" "$OUT/results.txt"
$PY - "$OUT/rss.tsv" "$OUT/results.txt" "$OUT/eve.json" <<'EOF' | tee "$OUT/summary.txt"
import json, sys
rss = [tuple(map(int, l.split())) for l in open(sys.argv[1]) if len(l.split()) == 2]
res = [l.split() for l in open(sys.argv[2]) if l.strip()]
ev = [json.loads(l) for l in open(sys.argv[3])]
ok = True
def check(cond, what):
    global ok
    print("   %s: %s" % ("ok" if cond else "FAIL", what))
    ok = ok and cond

# memory: warm-up = first 10% of the samples (at least one), then thirds
n = len(rss)
check(n >= 9, "%d VmRSS samples" % n)
if n >= 9:
    body = rss[max(1, n // 10):]
    k = len(body) // 3
    first, last = max(r[1] for r in body[:k]), max(r[1] for r in body[-k:])
    lim = first * 1.10 + 8 * 1024
    print("   VmRSS kB: start %d, first third max %d, last third max %d (limit %d), end %d"
          % (rss[0][1], first, last, lim, rss[-1][1]))
    check(last <= lim, "memory flat (last third max <= first third max + 10% + 8 MB)")

# transfers
by = {}
for kind, conns, code, size, want, port in res:
    by.setdefault(kind, []).append((int(conns), code, int(size), want))
tls_conns = nokeys = 0
for kind, rs in sorted(by.items()):
    if kind == "plain":
        good = sum(1 for c, code, s, w in rs if code == "200" and s == int(w))
    elif kind == "nokeys":
        good = sum(1 for c, code, s, w in rs if not (code == "200" and s == 4000000))
        nokeys += sum(c for c, *_ in rs)
        tls_conns += sum(c for c, *_ in rs)
    else:
        good = sum(1 for c, code, s, w in rs if code == "200" and s >= int(w))
        tls_conns += sum(c for c, *_ in rs)
    hung = sum(1 for c, code, s, w in rs if code == "hung")
    print("   %-16s %5d runs, %5d as expected%s" % (kind, len(rs), good,
          ", %d hung until the 30 s timeout" % hung if hung else ""))
    check(good == len(rs), "%s: every run as expected" % kind)

# sessions: one tls event per TLS connection a client made
tls = [e["tls"] for e in ev if e["event_type"] == "tls"]
blocked = [t for t in tls if t["blocked"]]
dec = [t for t in tls if t["key_status"] == "decrypted" and not t["blocked"]]
print("   TLS connections made %d (of which without keys %d); eve tls events %d, decrypted %d,"
      " blocked %d" % (tls_conns, nokeys, len(tls), len(dec), len(blocked)))
check(len(tls) == tls_conns, "every TLS session logged (events == connections)")
check(len(blocked) == nokeys and all(t["key_status"] != "decrypted" for t in blocked),
      "every keyless session blocked and logged as such")
check(len(dec) == tls_conns - nokeys, "every keyed session decrypted")
logged = {e["src_port"] for e in ev if e["event_type"] == "tls"}
miss = [(r[0], r[5]) for r in res if r[5] != "0" and r[1] == "1" and r[0] != "plain" and
        int(r[5]) not in logged]
if miss:
    print("   curl connections without a tls event (kind, client port):", miss[:20])
st = [e["stats"] for e in ev if e["event_type"] == "stats"]
print("   stats events: %d (one per worker)" % len(st))
sys.exit(0 if ok else 1)
EOF
rc=${PIPESTATUS[0]}
echo "[$NAME] results in $OUT (rss.tsv, results.txt, eve.json, mmtlsd.log, summary.txt)"
[ "$rc" = 0 ] && { echo "[$NAME] all checks passed"; exit 0; }
echo "[$NAME] FAIL"
exit 1
