#!/usr/bin/env bash
# Process hygiene of mmtlsd inline (issue 7): secrets out of core dumps, privileges, key port.
# On the testbed (scripts/testbed.sh): client -- mmtlsd -i c0:s0 -- nginx (TLS 1.2 + 1.3).
#   run 1: --allow-core-dumps --user nobody, a key log of 64 random pinned secrets loaded
#          (--keylog) and two slow downloads in flight (TLS 1.3 and TLS 1.2, keys over the
#          key channel through the preload shim, curl also writing SSLKEYLOGFILE):
#     - the process is dumpable (/proc/PID/status is owned by nobody);
#     - every copy of a known secret in the live memory (/proc/PID/mem) sits in a mapping
#       flagged "dd" (MADV_DONTDUMP) in /proc/PID/smaps, and the pinned ones are found;
#     - a core taken with gdb's gcore holds no known secret (raw, hex, HEX) while markers
#       that are in ordinary memory (a command-line word, the SNI) are found;
#   run 2: --user nobody without --allow-core-dumps: not dumpable (/proc/PID/status owned by
#          root), a download with keys still decrypts;
#   both: the key port listens only on --key-listen's address (ss -ltnp in the namespace).
# Exit 0 pass, 1 fail, 77 skip.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
NAME=test_hygiene
P=${MMTLS_TB_PREFIX:-mmtls-hy$$}
PY=/usr/bin/python3

# shellcheck source=lib_testbed.sh
. "$HERE/lib_testbed.sh"
tb_paths
[ "$(id -u)" = 0 ] || skip "needs root"
for c in ip nginx curl openssl timeout gcore ss; do command -v $c >/dev/null || skip "no $c"; done
id nobody >/dev/null 2>&1 || skip "no user nobody"
[ -x "$MMTLSD" ] && [ -f "$SHIM" ] || { echo "[$NAME] FAIL: build first"; exit 1; }

W=$(mktemp -d /tmp/mmtls-hygiene.XXXXXX)
chmod 755 "$W"
MB=
CPIDS=()
cleanup() {
    for p in "${CPIDS[@]}"; do kill "$p" 2>/dev/null; done
    [ -n "$MB" ] && kill "$MB" 2>/dev/null
    [ -f "$W/nginx.pid" ] && kill "$(cat "$W/nginx.pid" 2>/dev/null)" 2>/dev/null
    tb_down
    [ -n "${KEEP:-}" ] || rm -rf "$W"
}
trap cleanup EXIT

tb_up "$W"
mkdir -p "$W/www"
head -c 20000000 /dev/urandom >"$W/www/big.bin"
head -c 1000000 /dev/urandom >"$W/www/mid.bin"
tb_nginx --conns 256 --name _

# 64 pinned secrets (32 TLS 1.2 master secrets, 32 TLS 1.3 traffic secrets) nobody will use.
$PY - "$W/pinned.keys" "$W/pinned.hex" <<'EOF'
import os, sys
with open(sys.argv[1], "w") as kl, open(sys.argv[2], "w") as hx:
    for i in range(32):
        cr, ms, ts = os.urandom(32).hex(), os.urandom(48).hex(), os.urandom(32).hex()
        kl.write("CLIENT_RANDOM %s %s\n" % (cr, ms))
        kl.write("CLIENT_TRAFFIC_SECRET_0 %s %s\n" % (os.urandom(32).hex(), ts))
        hx.write(ms + "\n" + ts + "\n")
EOF
SNI=hygiene-$$.test
MARK=cmdline-marker-$$-$RANDOM

# start_mbox TAG [options]: mmtlsd inline with its key server; MBPID is mmtlsd's own pid
start_mbox() {
    local tag=$1
    shift
    tb_mbox_start "$W/$tag.log" 120 --keylog "$W/pinned.keys" -l "$W/$tag" --log-http \
        --bypass-allow "$MARK" -v "$@"
}
tb_keys
CURL=(timeout 60 curl -sS --resolve "$SNI:443:198.18.4.2" --cacert "$W/pki/ca.crt" -k)

# key_port_check TAG: only 198.18.6.2:4433 listens, and it is mmtlsd's
key_port_check() {
    local l
    l=$(ip netns exec "$P-mbox" ss -Hltnp | grep mmtlsd)
    if [ "$(echo "$l" | wc -l)" = 1 ] && echo "$l" | grep -q ' 198\.18\.6\.2:4433 '; then
        pass "$1: the key port listens on 198.18.6.2:4433 only"
    else
        fail "$1: mmtlsd listens on: $l"
    fi
}

# ---- run 1: --allow-core-dumps ----
start_mbox run1 --allow-core-dumps --user nobody
owner=$(stat -c %U "/proc/$MBPID/status")
[ "$owner" = nobody ] && pass "--allow-core-dumps --user nobody: dumpable (/proc/PID owned by nobody)" ||
    fail "--allow-core-dumps: /proc/$MBPID/status owned by '$owner' (expected nobody: dumpable)"
key_port_check run1
client "${KEYS[@]}" SSLKEYLOGFILE="$W/curl13.keys" "${CURL[@]}" --tlsv1.3 --limit-rate 1M \
    -o "$W/got13" "https://$SNI/big.bin" 2>"$W/c13" &
CPIDS+=($!)
client "${KEYS[@]}" SSLKEYLOGFILE="$W/curl12.keys" "${CURL[@]}" --tlsv1.2 --tls-max 1.2 \
    --limit-rate 1M -o "$W/got12" "https://$SNI/big.bin" 2>"$W/c12" &
CPIDS+=($!)
# wait for both sessions' keys (logged by curl) and a few MB through the middlebox
for _ in $(seq 50); do
    [ -s "$W/curl13.keys" ] && [ -s "$W/curl12.keys" ] && [ -s "$W/got13" ] && [ -s "$W/got12" ] &&
        break
    sleep 0.2
done
sleep 2
awk 'NF == 3 { print $3 }' "$W/curl13.keys" "$W/curl12.keys" >"$W/live.hex"
cat "$W/pinned.hex" "$W/live.hex" >"$W/all.hex"
echo "   $(wc -l <"$W/live.hex") secrets of the live sessions (curl's key log), 64 pinned"
if [ "$(wc -l <"$W/live.hex")" -lt 5 ]; then
    fail "curl logged no keys ($(cat "$W/c13" "$W/c12"))"
fi
# The live scan must find the pinned secrets (the key store); the live sessions' secrets are
# found when kept (TLS 1.3 application secrets are, for KeyUpdate).
$PY "$HERE/memscan.py" live "$MBPID" "$W/pinned.hex" >"$W/scan-pinned.txt"
rc=$?
tail -1 "$W/scan-pinned.txt"
[ $rc = 0 ] && pass "live memory: the key store's secrets are only in dd (MADV_DONTDUMP) mappings" ||
    { cat "$W/scan-pinned.txt"; fail "live memory: pinned secrets outside dd mappings (or absent)"; }
$PY "$HERE/memscan.py" live "$MBPID" "$W/live.hex" >"$W/scan-live.txt"
rc=$?
tail -1 "$W/scan-live.txt"
[ $rc = 0 ] && pass "live memory: in-flight sessions' secrets are only in dd mappings" ||
    { cat "$W/scan-live.txt"; fail "live memory: session secrets outside dd mappings (or absent)"; }
# gcore honours VM_DONTDUMP (gdb reads the dd flag from smaps, like the kernel's core writer).
timeout 60 gcore -o "$W/core" "$MBPID" >"$W/gcore.log" 2>&1
CORE=$W/core.$MBPID
if [ -s "$CORE" ]; then
    echo "   core (gcore): $(stat -c %s "$CORE") bytes"
    $PY "$HERE/memscan.py" core "$CORE" "$W/all.hex" "$MARK" "$SNI" >"$W/scan-core.txt"
    rc=$?
    cat "$W/scan-core.txt" | grep -v '^   secret' | head -5
    [ $rc = 0 ] && pass "gcore core file: no known secret (raw/hex), markers present" ||
        { head -20 "$W/scan-core.txt"; fail "core file: a secret is in it, or a marker is missing"; }
    rm -f "$CORE"
else
    fail "gcore made no core: $(tail -3 "$W/gcore.log")"
fi
for p in "${CPIDS[@]}"; do wait "$p"; done
CPIDS=()
cmp -s "$W/got13" "$W/www/big.bin" && cmp -s "$W/got12" "$W/www/big.bin" &&
    pass "both downloads completed byte-exact across the gcore pause" || fail "downloads"
tb_mbox_stop

# ---- run 2: the default (not dumpable) ----
start_mbox run2 --user nobody
owner=$(stat -c %U "/proc/$MBPID/status")
[ "$owner" = root ] && pass "default: not dumpable (/proc/PID owned by root although running as nobody)" ||
    fail "default: /proc/$MBPID/status owned by '$owner' (expected root: not dumpable)"
ps_user=$(ps -o user= -p "$MBPID" | tr -d ' ')
[ "$ps_user" = nobody ] && pass "--user nobody: runs as nobody" || fail "--user: runs as '$ps_user'"
key_port_check run2
client "${KEYS[@]}" "${CURL[@]}" -o "$W/got2" "https://$SNI/mid.bin" &&
    cmp -s "$W/got2" "$W/www/mid.bin" && pass "run 2: download with keys byte-exact" ||
    fail "run 2 download"
tb_mbox_stop
$PY - "$W/run1/eve.json" "$W/run2/eve.json" <<'EOF' || fail "eve: sessions not decrypted"
import json, sys
for f, n in ((sys.argv[1], 2), (sys.argv[2], 1)):
    t = [json.loads(l)["tls"] for l in open(f) if '"event_type":"tls"' in l]
    ok = [x for x in t if x["key_status"] == "decrypted" and not x["blocked"]]
    print("   %s: %d tls sessions, %d decrypted" % (f.split("/")[-2], len(t), len(ok)))
    if len(ok) != n:
        sys.exit(1)
EOF

tb_finish "$W"
