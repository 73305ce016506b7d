#!/usr/bin/env bash
# The offline demo: builds mmtls, captures a short real TLS 1.3 exchange between
# openssl s_client and s_server in two network namespaces of its own, then inspects the capture
# with `mmtlsd -r` using the client's key log.  Cleans up after itself.
#
#   ./scripts/demo.sh            (as root on Debian 12; installs what it needs)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
bash scripts/deps.sh

echo "== building mmtls"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" --target mmtlsd >/dev/null
MMTLSD=$ROOT/build/tools/mmtlsd/mmtlsd

W=$(mktemp -d /tmp/mmtls-demo.XXXXXX)
NS_C=mmtls-demo-c-$$
NS_S=mmtls-demo-s-$$
cleanup() {
    [ -n "${TCPDUMP_PID:-}" ] && kill "$TCPDUMP_PID" 2>/dev/null || true
    ip netns del "$NS_C" 2>/dev/null || true
    ip netns del "$NS_S" 2>/dev/null || true
}
trap cleanup EXIT

echo "== making a test CA and a server certificate for server.test"
bash scripts/mkcerts.sh "$W/certs" >/dev/null

echo "== two namespaces: client 198.18.0.1 <-> server 198.18.0.2 (RFC 2544 test range)"
ip netns add "$NS_C"
ip netns add "$NS_S"
ip link add veth-c netns "$NS_C" type veth peer name veth-s netns "$NS_S"
ip -n "$NS_C" addr add 198.18.0.1/24 dev veth-c
ip -n "$NS_S" addr add 198.18.0.2/24 dev veth-s
ip -n "$NS_C" link set veth-c up
ip -n "$NS_S" link set veth-s up
ip -n "$NS_C" link set lo up
ip -n "$NS_S" link set lo up

mkdir -p "$W/www"
cat >"$W/www/index.html" <<'EOF'
<html><body><h1>Hello from behind TLS 1.3</h1><p>mmtls read this without a forged
certificate: the client shared its session secrets.</p></body></html>
EOF

echo "== capturing: tcpdump in the server namespace"
ip netns exec "$NS_S" tcpdump -i veth-s -s 0 -U --immediate-mode -w "$W/capture.pcap" tcp port 4433 \
    2>"$W/tcpdump.log" &
TCPDUMP_PID=$!
for _ in $(seq 50); do grep -q "listening on" "$W/tcpdump.log" 2>/dev/null && break; sleep 0.1; done

(cd "$W/www" && ip netns exec "$NS_S" timeout 20 openssl s_server -accept 4433 -WWW \
    -naccept 1 -tls1_3 -alpn http/1.1 -cert "$W/certs/rsa.crt" -key "$W/certs/rsa.key" -quiet \
    >/dev/null 2>&1) &
SERVER_PID=$!
for _ in $(seq 50); do
    ip netns exec "$NS_S" ss -ltn 2>/dev/null | grep -q ':4433 ' && break
    sleep 0.1
done

echo "== client: openssl s_client fetches /index.html, writing its key log"
printf 'GET /index.html HTTP/1.0\r\nHost: server.test\r\nUser-Agent: mmtls-demo\r\n\r\n' |
    ip netns exec "$NS_C" timeout 20 openssl s_client -connect 198.18.0.2:4433 \
        -servername server.test -alpn http/1.1 -CAfile "$W/certs/ca.crt" -verify_return_error \
        -keylogfile "$W/keys.log" -quiet -ign_eof >"$W/client-received.txt" 2>"$W/client.log"
wait "$SERVER_PID" 2>/dev/null || true
sleep 1
kill -INT "$TCPDUMP_PID" 2>/dev/null || true
wait "$TCPDUMP_PID" 2>/dev/null || true
TCPDUMP_PID=

echo
echo "== mmtlsd -r capture.pcap --keylog keys.log -l out --dump-plaintext plain"
"$MMTLSD" -r "$W/capture.pcap" --keylog "$W/keys.log" -l "$W/out" --dump-plaintext "$W/plain"

echo
echo "== eve.json (the session line)"
python3 - "$W/out/eve.json" <<'EOF'
import json, sys
for line in open(sys.argv[1]):
    ev = json.loads(line)
    if ev["event_type"] == "tls":
        print(json.dumps(ev, indent=2))
EOF

echo
echo "== decrypted client -> server bytes (what the server read)"
cat "$W"/plain/*.c2s
echo "== decrypted server -> client bytes (first lines)"
head -c 400 "$W"/plain/*.s2c
echo
if cmp -s "$W"/plain/*.s2c "$W/client-received.txt"; then
    echo "== the decrypted server stream is byte-for-byte what the client received"
else
    echo "== MISMATCH between the decrypted server stream and what the client received" >&2
    exit 1
fi
echo "(files kept in $W)"
