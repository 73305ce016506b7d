#!/usr/bin/env bash
# Key sharing end to end, with real programs and the real key server:
#   server namespace: nginx (TLS 1.2 + 1.3) on 198.18.2.2:443, and
#                     tcpdump -w - | mmtlsd -r - --key-listen 198.18.2.2:4433 (no key log!)
#   client namespace: curl (TLS 1.3 and 1.2), python3, openssl s_client, each started with
#                     LD_PRELOAD=libmmtls-preload.so and a client certificate; wget (Debian builds
#                     it on GnuTLS) twice: once writing SSLKEYLOGFILE that mmtls-keyagent ships,
#                     and under the shim (its GnuTLS hook) over TLS 1.3 and TLS 1.2
# Every session must decrypt from keys that arrived over key channels, and the decrypted request
# must be the one the client sent.  Then: the key server down -> the clients still work.
# Exit 0 pass, 1 fail, 77 skip.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BUILD=${MMTLS_BUILDDIR:-$ROOT/build}
MMTLSD=${MMTLSD:-$BUILD/tools/mmtlsd/mmtlsd}
SHIM=${MMTLS_PRELOAD:-$BUILD/lib/keyshare/libmmtls-preload.so}
AGENT=${MMTLS_KEYAGENT:-$BUILD/tools/mmtls-keyagent/mmtls-keyagent}
PY=/usr/bin/python3
NAME=test_keychannel_e2e

skip() { echo "[$NAME] SKIP: $*"; exit 77; }
[ "$(id -u)" = 0 ] || skip "needs root"
for c in ip tcpdump nginx curl wget openssl timeout; do
    command -v $c >/dev/null || skip "no $c (apt-get install nginx curl wget tcpdump)"
done
[ -x "$MMTLSD" ] || { echo "[$NAME] FAIL: no mmtlsd at $MMTLSD"; exit 1; }
[ -f "$SHIM" ] || { echo "[$NAME] FAIL: no preload shim at $SHIM"; exit 1; }
[ -x "$AGENT" ] || { echo "[$NAME] FAIL: no key agent at $AGENT"; exit 1; }

W=$(mktemp -d /tmp/mmtls-kce.XXXXXX)
# shellcheck source=lib_keychannel.sh
. "$HERE/lib_keychannel.sh"
start_middlebox out
# --- clients, each under the preload shim -------------------------------------------------------
export MMTLS_KEYSERVER=198.18.2.2:4433 MMTLS_CA=$W/pki/ca.crt MMTLS_CERT=$W/pki/client.crt \
    MMTLS_KEY=$W/pki/client.key
inc() { ip netns exec "$NS_C" env LD_PRELOAD="$SHIM" timeout 20 "$@"; }
URL=https://server.test/
RES=(--resolve server.test:443:198.18.2.2 --cacert "$W/pki/ca.crt" -sS)
inc curl "${RES[@]}" --tlsv1.3 -o "$W/got1" "${URL}file1.txt" || fail "curl TLS 1.3 failed"
inc curl "${RES[@]}" --tls-max 1.2 -o "$W/got2" "${URL}file2.txt" || fail "curl TLS 1.2 failed"
# wget: GnuTLS writes the key log, the agent follows it over its own key channel.
ip netns exec "$NS_C" timeout 60 "$AGENT" --keylog "$W/wget.keys" --state "$W/agent.state" \
    >"$W/agent.log" 2>&1 &
PIDS+=($!)
ip netns exec "$NS_C" env SSLKEYLOGFILE="$W/wget.keys" timeout 20 \
    wget -q --no-check-certificate -O "$W/got3" "https://198.18.2.2/file3.txt" ||
    fail "wget failed"
# wget under the shim: the GnuTLS key log hook (lib/keyshare/preload_gnutls.c).
for i in 7 8; do head -c $((20000 * i)) /dev/urandom | base64 >"$W/www/file$i.txt"; done
inc wget -q --no-check-certificate -O "$W/got7" "https://198.18.2.2/file7.txt" ||
    fail "wget (shim, TLS 1.3) failed"
inc wget -q --no-check-certificate --ciphers=NORMAL:-VERS-TLS1.3 -O "$W/got8" \
    "https://198.18.2.2/file8.txt" || fail "wget (shim, TLS 1.2) failed"
inc "$PY" - "$W/got4" "$W/pki/ca.crt" <<'EOF' || fail "python3 failed"
import http.client, ssl, sys
ctx = ssl.create_default_context(cafile=sys.argv[2])
ctx.check_hostname = False  # the certificate names server.test; the chain is still verified
conn = http.client.HTTPSConnection("198.18.2.2", 443, context=ctx)
conn.request("GET", "/file4.txt", headers={"Host": "server.test"})
open(sys.argv[1], "wb").write(conn.getresponse().read())
EOF
printf 'GET /file5.txt HTTP/1.0\r\nHost: server.test\r\n\r\n' |
    inc openssl s_client -connect 198.18.2.2:443 -servername server.test -quiet -ign_eof \
        -CAfile "$W/pki/ca.crt" >"$W/got5.raw" 2>/dev/null || fail "s_client failed"
for i in 1 2 3 4 7 8; do
    cmp -s "$W/got$i" "$W/www/file$i.txt" || fail "client $i did not get its file"
done

# Key server down: the application must still work (its keys are counted as dropped).
ip netns exec "$NS_C" env LD_PRELOAD="$SHIM" MMTLS_KEYSERVER=198.18.2.2:4499 timeout 20 \
    curl "${RES[@]}" -o "$W/got6" "${URL}file6.txt" &&
    cmp -s "$W/got6" "$W/www/file6.txt" &&
    pass "key server unreachable: curl still fetched its file" || fail "curl with no key server"

sleep 1.5 # the agent groups TLS 1.3 secrets for up to 2 s
stop_middlebox

# --- what the middlebox saw ------------------------------------------------------------------
$PY - "$W/out/eve.json" "$W/out/plain" <<'EOF' || fail "eve / plaintext checks"
import glob, json, os, sys
sessions, stats = [], None
for line in open(sys.argv[1]):
    e = json.loads(line)
    if e["event_type"] == "tls": sessions.append(e)
    if e["event_type"] == "stats": stats = e["stats"]
ok = True
print("   %d TLS sessions; keys: %s" % (len(sessions), stats["tls"]["keys"]))
def files_nonempty(fs):
    return any(os.path.getsize(f) > 0 for f in fs)
nokeys = 0
want = {"/file1.txt": "TLS 1.3", "/file2.txt": "TLS 1.2", "/file3.txt": None,
        "/file4.txt": None, "/file5.txt": None, "/file7.txt": "TLS 1.3",
        "/file8.txt": "TLS 1.2"}
for s in sessions:
    t = s["tls"]
    files = glob.glob(os.path.join(sys.argv[2], "f%d-*.c2s" % s["flow_id"]))
    req = open(files[0], "rb").read().split(b"\r\n")[0].decode(errors="replace") if files else ""
    path = req.split(" ")[1] if req.startswith("GET ") else None
    print("   flow %d %s %s %s -> %r" % (s["flow_id"], t.get("version"), t.get("cipher_suite"),
                                      t["key_status"], req))
    if t["key_status"] == "no_keys" and not files_nonempty(files):
        nokeys += 1  # the session whose client could not reach the key server
        continue
    if t["key_status"] != "decrypted" or path not in want:
        ok = False; continue
    if want[path] and t.get("version") != want[path]:
        ok = False; print("   wrong version for", path)
    want.pop(path)
if want:
    ok = False; print("   not decrypted:", sorted(want))
if nokeys != 1:
    ok = False; print("   expected exactly one session without keys (key server down), got", nokeys)
if stats["tls"]["keys"]["matched"] < 7:
    ok = False
sys.exit(0 if ok else 1)
EOF
[ $FAILS = 0 ] &&
    pass "curl (TLS 1.3, 1.2), wget (agent; shim 1.3, 1.2), python3, s_client: all decrypted"
grep -E "key server|error" "$W/out.log" | head -5

if [ "$FAILS" = 0 ]; then
    echo "[$NAME] all cases passed"
    exit 0
fi
echo "[$NAME] $FAILS case(s) failed (KEEP=1 keeps $W)"
exit 1
