#!/usr/bin/env bash
# The private tag's tamper test (issue 5, docs/PRIVTAG.md): a compromised middlebox that holds
# the keys rewrites a request and re-seals it (valid tag1); an honest middlebox chained behind it
# sees a valid record; with the private tag the server detects the change and aborts, without it
# the tampering goes through unnoticed.
#
#   client --c0 [evil mmtlsd --test-tamper] m0==m1 [honest mmtlsd] s0-- server (mmtls-httpsd)
#
# The honest middlebox gets the keys from the client's library (KEYS with the TAG2 flag); the
# evil one from the client's key log through mmtls-keyagent (it learns tag2 by trial).
# Cases:
#   - private tag: the client asks for /a.txt, the evil box turns it into /b.txt: the honest box
#     decrypts the rewritten request (tag1 valid, http event /b.txt, private_tag true), the
#     server rejects the record (bad_record_mac), the client gets no body;
#   - plain TLS (both ends --no-private-tag): the same rewrite is not detected: the client
#     receives b.txt's content for /a.txt.
# Environment: MMTLSD, MMTLS_KEYAGENT, MMTLS_HTTPSD, MMTLS_HTTPS_GET (CTest sets them),
# KEEP=1 keeps the work directory.  Exit 0 pass, 1 fail, 77 skip.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BUILD=${MMTLS_BUILDDIR:-$ROOT/build}
MMTLSD=${MMTLSD:-$BUILD/tools/mmtlsd/mmtlsd}
KA=${MMTLS_KEYAGENT:-$BUILD/tools/mmtls-keyagent/mmtls-keyagent}
HTTPSD=${MMTLS_HTTPSD:-$BUILD/tools/mmtls-https/mmtls-httpsd}
GET=${MMTLS_HTTPS_GET:-$BUILD/tools/mmtls-https/mmtls-https-get}
NAME=test_privtag_tamper
P=mmtls-tt$$

# shellcheck source=lib_testbed.sh
. "$HERE/lib_testbed.sh"
[ "$(id -u)" = 0 ] || skip "needs root"
for c in ip ethtool openssl timeout python3; do command -v $c >/dev/null || skip "no $c"; done
for b in "$MMTLSD" "$KA" "$HTTPSD" "$GET"; do
    [ -x "$b" ] || {
        echo "[$NAME] FAIL: build first ($b)"
        exit 1
    }
done

W=$(mktemp -d /tmp/mmtls-tamper.XXXXXX)
chmod 755 "$W"
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill -INT "$p" 2>/dev/null; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
    tb_down
    [ -n "${KEEP:-}" ] || rm -rf "$W"
}
trap cleanup EXIT
# in_ns NS CMD...: CMD in the namespace (background jobs use ip netns exec directly, so that $!
# is the process a signal must reach).
in_ns() {
    local ns=$1
    shift
    ip netns exec "$P-$ns" "$@"
}

tb_up "$W"
# A second veth pair inside the middlebox namespace joins the two middleboxes.
in_ns mbox ip link add m0 type veth peer name m1 || skip "cannot add veth m0/m1"
in_ns mbox ip link set m0 up
in_ns mbox ip link set m1 up
# The evil box rewrites frames in place and recomputes full TCP checksums: no GSO, no checksum
# offload anywhere on the path (its --no-vnet mode).
for x in "client veth0" "mbox c0" "mbox m0" "mbox m1" "mbox s0" "server veth0"; do
    set -- $x
    in_ns "$1" ethtool -K "$2" tso off gso off gro off tx off >/dev/null 2>&1
done

mkdir -p "$W/www"
printf 'the file the client asked for: a\n' >"$W/www/a.txt"
printf 'a file it did not ask for!!!: b\n' >"$W/www/b.txt"
ip netns exec "$P-server" timeout 120 "$HTTPSD" --listen 198.18.4.2:443 --cert "$W/pki/rsa.crt" \
    --key "$W/pki/rsa.key" --root "$W/www" -v >"$W/httpsd-tag.log" 2>&1 &
PIDS+=($!)
ip netns exec "$P-server" timeout 120 "$HTTPSD" --listen 198.18.4.2:8443 --cert "$W/pki/rsa.crt" \
    --key "$W/pki/rsa.key" --root "$W/www" --no-private-tag -v >"$W/httpsd-plain.log" 2>&1 &
PIDS+=($!)

MB=(--cert "$W/pki/mbox.crt" --key "$W/pki/mbox.key" --client-ca "$W/pki/ca.crt" --no-vnet
    --key-wait 3000 --log-http -v)
ip netns exec "$P-mbox" timeout 120 "$MMTLSD" -i m1:s0 --key-listen 198.18.6.2:4433 -l "$W/honest" \
    "${MB[@]}" 2>"$W/honest.log" &
PIDS+=($!)
ip netns exec "$P-mbox" timeout 120 "$MMTLSD" -i c0:m0 --key-listen 198.18.6.2:4434 -l "$W/evil" \
    --test-tamper '/a.txt=/b.txt' "${MB[@]}" 2>"$W/evil.log" &
PIDS+=($!)
: >"$W/client.keys"
ip netns exec "$P-client" timeout 120 "$KA" --keylog "$W/client.keys" --state "$W/agent.state" \
    --keyserver 198.18.6.2:4434 --ca "$W/pki/ca.crt" --cert "$W/pki/client.crt" \
    --key "$W/pki/client.key" >"$W/agent.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 50); do
    grep -q bridging "$W/honest.log" 2>/dev/null && grep -q bridging "$W/evil.log" 2>/dev/null &&
        break
    sleep 0.1
done
grep -q bridging "$W/evil.log" || {
    echo "[$NAME] FAIL: the middleboxes did not start: $(cat "$W/evil.log" "$W/honest.log")"
    exit 1
}

KEYS=(env MMTLS_KEYSERVER=198.18.6.2:4433 MMTLS_CA="$W/pki/ca.crt" MMTLS_CERT="$W/pki/client.crt"
    MMTLS_KEY="$W/pki/client.key" SSLKEYLOGFILE="$W/client.keys")

# 1. With the private tag: the rewrite is detected by the server.
in_ns client "${KEYS[@]}" timeout 20 "$GET" -v --cafile "$W/pki/ca.crt" \
    --connect 198.18.4.2:443 -o "$W/got-tag" https://server.test/a.txt 2>"$W/get-tag.err"
rc=$?
if [ $rc != 0 ] && ! grep -qs "did not ask" "$W/got-tag" && grep -q "private_tag=yes" "$W/get-tag.err"; then
    pass "private tag: the tampered request was refused (client rc $rc, no body)"
else
    fail "private tag: rc $rc, body '$(cat "$W/got-tag" 2>/dev/null)': $(tail -3 "$W/get-tag.err")"
fi
grep -qiE "bad.record.mac|tag2|tamper|auth" "$W/httpsd-tag.log" &&
    pass "private tag: the server says why ($(grep -iE 'bad.record.mac|tag2|auth' "$W/httpsd-tag.log" | head -1))" ||
    fail "private tag: nothing in the server's log: $(tail -3 "$W/httpsd-tag.log")"

# 2. Plain TLS: the same rewrite goes through.
in_ns client "${KEYS[@]}" timeout 20 "$GET" -v --no-private-tag --cafile "$W/pki/ca.crt" \
    --connect 198.18.4.2:8443 -o "$W/got-plain" https://server.test/a.txt 2>"$W/get-plain.err"
rc=$?
[ $rc = 0 ] && cmp -s "$W/got-plain" "$W/www/b.txt" &&
    pass "plain TLS: the tampering is not detected (the client got b.txt for /a.txt)" ||
    fail "plain TLS: rc $rc, body '$(cat "$W/got-plain" 2>/dev/null)'"

sleep 0.5
for p in "${PIDS[@]}"; do kill -INT "$p" 2>/dev/null; done
for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
PIDS=()

PYTHONPATH="$HERE" python3 - "$W/honest/eve.json" "$W/evil/eve.json" <<'EOF' || fail "eve checks"
import sys
from evecheck import load, check, done
honest, evil = load(sys.argv[1]), load(sys.argv[2])
def by_port(ev, port):
    return [e for e in ev if e["event_type"] == "tls" and e["dest_port"] == port]
ht, hp = by_port(honest, 443), by_port(honest, 8443)
check(len(ht) == 1 and ht[0]["tls"]["key_status"] == "decrypted" and ht[0]["tls"].get("private_tag"),
      "honest box: the private-tag session decrypted, private_tag true")
check(len(ht) == 1 and not ht[0]["tls"].get("errors"), "honest box: no error (tag1 was valid)")
urls = [(e["dest_port"], e["http"]["url"]) for e in honest if e["event_type"] == "http"]
check((443, "/b.txt") in urls and (8443, "/b.txt") in urls,
      "honest box: saw the rewritten requests (%s)" % urls)
check(len(hp) == 1 and hp[0]["tls"]["key_status"] == "decrypted" and not hp[0]["tls"].get("private_tag"),
      "honest box: the plain session decrypted, no private tag")
est = [e["stats"] for e in evil if e["event_type"] == "stats"][0]
check(est["tls"]["inline"].get("test_tampered", 0) >= 2, "evil box: rewrote two records")
print("   honest urls:", urls, "; evil tampered:", est["tls"]["inline"].get("test_tampered"))
done()
EOF

tb_finish "$W"
