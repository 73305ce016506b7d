#!/usr/bin/env bash
# The key server restarts while a client keeps working: python3 under the preload shim makes
# one HTTPS request (a new TLS session) every 0.3 s for about 9 s; the middlebox (mmtlsd with its
# key server, fed live by tcpdump) is stopped after 2.5 s and started again 1.5 s later.
#   - every request of the application succeeds (key sharing never fails it);
#   - the library reconnects (its counters, printed at exit, show reconnects and sends);
#   - the second middlebox decrypts the sessions made after it came up, from their keys.
# Exit 0 pass, 1 fail, 77 skip.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BUILD=${MMTLS_BUILDDIR:-$ROOT/build}
MMTLSD=${MMTLSD:-$BUILD/tools/mmtlsd/mmtlsd}
SHIM=${MMTLS_PRELOAD:-$BUILD/lib/keyshare/libmmtls-preload.so}
PY=/usr/bin/python3
NAME=test_keychannel_restart

skip() { echo "[$NAME] SKIP: $*"; exit 77; }
[ "$(id -u)" = 0 ] || skip "needs root"
for c in ip tcpdump nginx openssl timeout; do command -v $c >/dev/null || skip "no $c"; done
[ -x "$MMTLSD" ] || { echo "[$NAME] FAIL: no mmtlsd at $MMTLSD"; exit 1; }
[ -f "$SHIM" ] || { echo "[$NAME] FAIL: no preload shim at $SHIM"; exit 1; }

W=$(mktemp -d /tmp/mmtls-kcr.XXXXXX)
# shellcheck source=lib_keychannel.sh
. "$HERE/lib_keychannel.sh"

start_middlebox first
ip netns exec "$NS_C" env LD_PRELOAD="$SHIM" MMTLS_KEYSERVER=198.18.2.2:4433 \
    MMTLS_CA="$W/pki/ca.crt" MMTLS_CERT="$W/pki/client.crt" MMTLS_KEY="$W/pki/client.key" \
    MMTLS_KEYSHARE_STATS=1 timeout 60 "$PY" - "$W/pki/ca.crt" >"$W/client.out" \
    2>"$W/client.err" <<'EOF' &
import http.client, ssl, sys, time
ctx = ssl.create_default_context(cafile=sys.argv[1])
ctx.check_hostname = False
ok = 0
for i in range(30):
    conn = http.client.HTTPSConnection("198.18.2.2", 443, context=ctx, timeout=5)
    conn.request("GET", "/file1.txt?req=%d" % i, headers={"Host": "server.test"})
    body = conn.getresponse().read()
    conn.close()
    if len(body) > 1000:
        ok += 1
    print("request %d at %.2f: %d bytes" % (i, time.monotonic(), len(body)), flush=True)
    time.sleep(0.3)
print("OK %d" % ok)
EOF
CLIENT=$!
sleep 2.5
stop_middlebox
sleep 1.5
# The library retries with exponential back-off (0.1 s doubling, +-25 %): when the restart takes
# longer than the retry at about 3 s (a loaded machine), the next one comes about 3 s later, and
# the keys of the sessions made meanwhile arrive that late: hold them long enough.
start_middlebox second --key-wait 8000
wait $CLIENT
CLIENT_RC=$?
sleep 1
stop_middlebox

grep -q "^OK 30$" "$W/client.out" && [ $CLIENT_RC = 0 ] &&
    pass "the application made all 30 requests across the restart" ||
    fail "the application failed (rc $CLIENT_RC): $(tail -2 "$W/client.out" "$W/client.err")"
stats=$(grep "mmtls-keyshare:" "$W/client.err" | tail -1)
echo "   $stats"
reconnects=$(sed -n 's/.*reconnects=\([0-9]*\).*/\1/p' <<<"$stats")
sent=$(sed -n 's/.* sent=\([0-9]*\).*/\1/p' <<<"$stats")
[ "${reconnects:-0}" -ge 1 ] && [ "${sent:-0}" -ge 15 ] &&
    pass "the library reconnected ($reconnects) and kept sending ($sent sent)" ||
    fail "library counters: $stats"
$PY - "$W/second/eve.json" <<'EOF' && pass "the restarted middlebox decrypted the new sessions" ||
import json, sys
tls = [json.loads(l) for l in open(sys.argv[1]) if '"event_type":"tls"' in l]
dec = [e for e in tls if e["tls"]["key_status"] == "decrypted"]
print("   second middlebox: %d sessions, %d decrypted" % (len(tls), len(dec)))
sys.exit(0 if len(tls) >= 10 and len(dec) >= len(tls) - 2 else 1)
EOF
    fail "second middlebox"

if [ "$FAILS" = 0 ]; then
    echo "[$NAME] all cases passed"
    exit 0
fi
echo "[$NAME] $FAILS case(s) failed (KEEP=1 keeps $W)"
exit 1
