#!/usr/bin/env bash
# The inline middlebox on the testbed (scripts/testbed.sh): client -- mmtlsd -i c0:s0 -- server
# (nginx, TLS 1.2 + 1.3, HTTP/1.1 + HTTP/2), keys shared by curl through the preload shim.
# Cases (DESIGN §3):
#   - a 100 MB (HTTP/1.1) and a 30 MB (HTTP/2) download with keys arrive byte-exact, decrypted;
#   - plain HTTP (not TLS) passes by default;
#   - EICAR in a decrypted response: the client's transfer is reset without the record, the
#     server gets an RST too, alert logged;
#   - a client without keys: held, then blocked after --key-wait (the client is reset);
#   - the same with --on-missing-keys pass: released after the wait, the download completes;
#     and with alert: released, completes, and the session logs a no_keys error;
#   - two workers (--workers 2): 128 concurrent downloads, all decrypted, byte-exact;
#   - rules (--rules): a drop rule on the response body resets the EICAR download; an alert
#     rule on the URI (HTTP/2) only logs;
#   - wget (GnuTLS), python3, openssl s_client under the shim;
#   - BYPASS refused (name not allowed: blocked) and allowed (--bypass-allow: passes), with
#     mmtlsd running as nobody (--user) after opening its sockets;
#   - mmtlsd restarted in the middle of a transfer: the transfer completes.
# MMTLS_IO=xdp runs every case over the AF_XDP back end (mmtlsd --io xdp): one worker per RX
# queue (the data veths get 2 queues, lowered to 1 with ethtool -L except for the two-worker
# case), senders' tx checksum offload off (AF_XDP frames carry no CHECKSUM_PARTIAL state), and
# --key-hold-max 8 MiB for the policy pass/alert cases (MTU-size frames that complete no
# record pass on, so a client's receive window of data waits behind the held ones, where 64 KB
# GSO frames stall the flow after ~200 KB).  Several workers: a flow's worker is its RX queue,
# and a veth has no symmetric RSS (the sender's TX queue is its socket's random hash; XPS by RX
# queue on the end hosts gets most flows right, not all): the two-worker case runs with one.
# MMTLS_IO=dpdk runs every case over the DPDK back end (mmtlsd --io dpdk: net_af_packet vdevs,
# no hugepages): no virtio_net_hdr, so the end hosts send complete checksums and no GSO frames
# (tx/tso/gso/gro off) and GRO is off on c0/s0; --key-hold-max 8 MiB as for xdp (MTU-size
# frames); two workers are two queue pairs (qpairs=2), spread by the vdev's symmetric
# PACKET_FANOUT_HASH, so every session of the two-worker case must decrypt.
# MMTLS_IO=fast runs every case over the kernel fast path (mmtlsd --io fast, docs/FASTPATH.md);
# its two workers share the divert interface through a PACKET_FANOUT_HASH group.
# MMTLS_AFP_RING=frames|blocks runs the AF_PACKET cases with that --afp-ring (TPACKET_V2 frames,
# the default, or V3 blocks) and checks that mmtlsd says it bridges with it.
# Exit 0 pass, 1 fail, 77 skip.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BUILD=${MMTLS_BUILDDIR:-$ROOT/build}
MMTLSD=${MMTLSD:-$BUILD/tools/mmtlsd/mmtlsd}
SHIM=${MMTLS_PRELOAD:-$BUILD/lib/keyshare/libmmtls-preload.so}
NAME=test_inline
P=mmtls-ti$$
IO=${MMTLS_IO:-afpacket}
RING=${MMTLS_AFP_RING:-} # AF_PACKET: frames (mmtlsd's default) or blocks (--afp-ring)

# shellcheck source=lib_testbed.sh
. "$HERE/lib_testbed.sh"
[ "$(id -u)" = 0 ] || skip "needs root"
for c in ip nginx curl openssl timeout python3; do command -v $c >/dev/null || skip "no $c"; done
[ -x "$MMTLSD" ] && [ -f "$SHIM" ] || { echo "[$NAME] FAIL: build first"; exit 1; }

W=$(mktemp -d /tmp/mmtls-inline.XXXXXX)
chmod 755 "$W"
MB=
cleanup() {
    [ -n "$MB" ] && kill "$MB" 2>/dev/null
    [ -f "$W/nginx.pid" ] && kill "$(cat "$W/nginx.pid" 2>/dev/null)" 2>/dev/null
    [ -n "${HTTP_PID:-}" ] && kill "$HTTP_PID" 2>/dev/null
    tb_down
    [ -n "${KEEP:-}" ] || rm -rf "$W"
}
trap cleanup EXIT

[ "$IO" = xdp ] && export TB_QUEUES=2
tb_up "$W"
# xdp_queues N: N RX/TX queues on the four data veth ends (AF_XDP: --workers N)
xdp_queues() {
    local l
    for l in "$P-client:veth0" "$P-mbox:c0" "$P-mbox:s0" "$P-server:veth0"; do
        ip netns exec "${l%%:*}" ethtool -L "${l#*:}" rx "$1" tx "$1" || fail "ethtool -L $l $1"
    done
}
if [ "$IO" = xdp ]; then
    for ns in "$P-client" "$P-server"; do
        ip netns exec "$ns" ethtool -K veth0 tx off >/dev/null || fail "tx off in $ns"
        ip netns exec "$ns" sh -c 'echo 1 >/sys/class/net/veth0/queues/tx-0/xps_rxqs &&
            echo 2 >/sys/class/net/veth0/queues/tx-1/xps_rxqs' || fail "xps_rxqs in $ns"
    done
    xdp_queues 1
fi
if [ "$IO" = dpdk ]; then
    for ns in "$P-client" "$P-server"; do
        ip netns exec "$ns" ethtool -K veth0 tx off tso off gso off gro off >/dev/null ||
            fail "offloads off in $ns"
    done
    for l in c0 s0; do
        ip netns exec "$P-mbox" ethtool -K $l gro off >/dev/null || fail "gro off on $l"
    done
fi
HOLD=()
[ "$IO" = xdp ] || [ "$IO" = dpdk ] && HOLD=(--key-hold-max 8388608)
mkdir -p "$W/www" "$W/nginx"
head -c 30000000 /dev/urandom >"$W/www/big.bin"
head -c 100000000 /dev/urandom >"$W/www/huge.bin"
head -c 1000000 /dev/urandom >"$W/www/mid.bin"
printf '%s' 'X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*' >"$W/www/eicar.com"
cat >"$W/nginx.conf" <<EOF
daemon off; pid $W/nginx.pid; error_log $W/nginx/error.log; worker_processes 1;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $W/nginx/b; proxy_temp_path $W/nginx/p; fastcgi_temp_path $W/nginx/f;
    uwsgi_temp_path $W/nginx/u; scgi_temp_path $W/nginx/s;
    server {
        listen 198.18.4.2:443 ssl http2; server_name server.test; root $W/www;
        ssl_certificate $W/pki/rsa.crt; ssl_certificate_key $W/pki/rsa.key;
        ssl_protocols TLSv1.2 TLSv1.3;
    }
}
EOF
ip netns exec "$P-server" nginx -c "$W/nginx.conf" -p "$W/nginx" 2>"$W/nginx.err" &
(cd "$W/www" && exec ip netns exec "$P-server" timeout 120 python3 -m http.server 8080 \
    --bind 198.18.4.2 >/dev/null 2>&1) &
HTTP_PID=$!

# start_mbox TAG [options]: mmtlsd inline with its key server
start_mbox() {
    local tag=$1
    shift
    ip netns exec "$P-mbox" timeout 120 "$MMTLSD" -i c0:s0 --io "$IO" ${RING:+--afp-ring "$RING"} \
        --key-listen 198.18.6.2:4433 \
        --cert "$W/pki/mbox.crt" --key "$W/pki/mbox.key" --client-ca "$W/pki/ca.crt" \
        -l "$W/$tag" ${EICAR_OPT---block-eicar} --log-http -v ${MBOX_V:-} "$@" 2>"$W/$tag.log" &
    MB=$!
    for _ in $(seq 300); do # up to 30 s: the BPF verifier, DPDK's start, a loaded machine
        grep -q bridging "$W/$tag.log" 2>/dev/null && break
        kill -0 "$MB" 2>/dev/null || break
        sleep 0.1
    done
    grep -q bridging "$W/$tag.log" || { echo "mmtlsd did not start: $(cat "$W/$tag.log")"; exit 1; }
    if [ -n "$RING" ]; then
        local want="TPACKET_V2 frames"
        [ "$RING" = blocks ] && want="TPACKET_V3 blocks"
        grep bridging "$W/$tag.log" | grep -q "$want" ||
            { echo "mmtlsd does not bridge with $want: $(grep bridging "$W/$tag.log")"; exit 1; }
    fi
}
stop_mbox() {
    kill -INT "$MB" 2>/dev/null
    wait "$MB" 2>/dev/null
    MB=
}
KEYS=(env LD_PRELOAD="$SHIM" MMTLS_KEYSERVER=198.18.6.2:4433 MMTLS_CA="$W/pki/ca.crt"
    MMTLS_CERT="$W/pki/client.crt" MMTLS_KEY="$W/pki/client.key")
CURL=(timeout 30 curl -sS --resolve server.test:443:198.18.4.2 --cacert "$W/pki/ca.crt")
client() { ip netns exec "$P-client" "$@"; }

start_mbox run1
client "${KEYS[@]}" "${CURL[@]}" --http1.1 -o "$W/got1" https://server.test/huge.bin &&
    cmp -s "$W/got1" "$W/www/huge.bin" && pass "100 MB over HTTP/1.1 with keys: byte-exact" ||
    fail "HTTP/1.1 download"
client "${KEYS[@]}" "${CURL[@]}" --http2 -o "$W/got2" https://server.test/big.bin &&
    cmp -s "$W/got2" "$W/www/big.bin" && pass "30 MB over HTTP/2 with keys: byte-exact" ||
    fail "HTTP/2 download"
client timeout 30 curl -sS -o "$W/got3" http://198.18.4.2:8080/big.bin &&
    cmp -s "$W/got3" "$W/www/big.bin" && pass "plain HTTP (not TLS) passes" || fail "plain HTTP"
# A blocked record: the client is reset and never gets the record; the server sees a reset too
# (an RST from the client's address arrives in the server's namespace).
ip netns exec "$P-server" timeout 15 tcpdump -i veth0 --immediate-mode -B 1024 -U -w "$W/rst.pcap" \
    'tcp[tcpflags] & tcp-rst != 0 and src host 198.18.4.1' 2>"$W/rst.err" &
TD=$!
# wait until it listens (a loaded machine may take more than a second)
for _ in $(seq 50); do
    grep -qs 'listening on' "$W/rst.err" && break
    sleep 0.1
done
client "${KEYS[@]}" "${CURL[@]}" --http1.1 -o "$W/got4" https://server.test/eicar.com 2>"$W/c4"
rc=$?
[ $rc = 56 ] && grep -q "reset" "$W/c4" && ! grep -qs EICAR "$W/got4" &&
    pass "EICAR: the client's transfer is reset, the record never reaches it" ||
    fail "EICAR not reset (curl rc $rc: $(cat "$W/c4"))"
sleep 1
kill -INT $TD 2>/dev/null
wait $TD 2>/dev/null
n=$(tcpdump -r "$W/rst.pcap" 2>/dev/null | wc -l)
[ "$n" -ge 1 ] && pass "EICAR: the server got a reset ($n RST)" || fail "no RST at the server"
client "${CURL[@]}" --http1.1 -o "$W/got5" https://server.test/big.bin 2>"$W/c5"
rc=$?
[ $rc != 0 ] && ! cmp -s "$W/got5" "$W/www/big.bin" &&
    pass "no keys, policy block: the transfer is cut (curl rc $rc)" || fail "no-keys block"
# More clients under the shim: wget (GnuTLS), python3, openssl s_client.
client "${KEYS[@]}" timeout 30 wget -q --no-check-certificate -O "$W/got7" \
    https://198.18.4.2/big.bin && cmp -s "$W/got7" "$W/www/big.bin" &&
    pass "wget (GnuTLS) with keys: byte-exact" || fail "wget"
client "${KEYS[@]}" timeout 30 python3 - "$W/got8" "$W/pki/ca.crt" <<'PY' &&
import http.client, ssl, sys
ctx = ssl.create_default_context(cafile=sys.argv[2]); ctx.check_hostname = False
c = http.client.HTTPSConnection("198.18.4.2", 443, context=ctx, timeout=20)
c.request("GET", "/big.bin", headers={"Host": "server.test"})
open(sys.argv[1], "wb").write(c.getresponse().read())
PY
    cmp -s "$W/got8" "$W/www/big.bin" && pass "python3 with keys: byte-exact" || fail "python3"
printf 'GET /eicar.com HTTP/1.0\r\nHost: server.test\r\n\r\n' |
    client "${KEYS[@]}" timeout 20 openssl s_client -connect 198.18.4.2:443 -quiet -ign_eof \
        -servername server.test -CAfile "$W/pki/ca.crt" >"$W/got9" 2>/dev/null
! grep -q EICAR "$W/got9" && pass "openssl s_client: EICAR response blocked" || fail "s_client"
# A bypass the operator does not allow counts as no keys: blocked.
client "${KEYS[@]}" MMTLS_BYPASS=server.test "${CURL[@]}" --http1.1 -o "$W/got10" \
    https://server.test/big.bin 2>/dev/null
[ $? != 0 ] && pass "bypass refused (name not allowed): blocked" || fail "bypass refused"
stop_mbox


start_mbox run3 --bypass-allow 'server.*' --user nobody
# --user: the bridge, the key server and the logs were opened as root; it now runs as nobody
mb_user=$(ps -o user= -p "$(pgrep -P "$MB" mmtlsd | head -1)" 2>/dev/null | tr -d ' ')
[ "$mb_user" = nobody ] && pass "--user nobody: mmtlsd runs as nobody once its sockets are open" ||
    fail "--user: mmtlsd runs as '$mb_user'"
client "${KEYS[@]}" MMTLS_BYPASS=server.test "${CURL[@]}" --http1.1 -o "$W/got11" \
    https://server.test/eicar.com && cmp -s "$W/got11" "$W/www/eicar.com" &&
    pass "bypass allowed: passes uninspected (even EICAR)" || fail "bypass allowed"
# mmtlsd restarted in the middle of a transfer: the flow is mid-stream for the new instance
# (not recognisable as TLS) and passes; the download completes.
client "${KEYS[@]}" "${CURL[@]}" --http1.1 --limit-rate 10M -o "$W/got12" \
    https://server.test/big.bin &
CURL_PID=$!
sleep 1
stop_mbox
start_mbox run4
wait $CURL_PID && cmp -s "$W/got12" "$W/www/big.bin" &&
    pass "mmtlsd restarted mid-flow: the transfer completes byte-exact" || fail "restart mid-flow"
stop_mbox

# Two workers, many concurrent flows: 2 curl processes x 64 parallel connections, every flow's
# both directions must reach the same worker (else its session cannot be decrypted).
W2=2
# AF_XDP's worker is the RX queue and a veth has no symmetric RSS, so a flow's two directions
# can reach different workers (fail closed: its session is blocked): xdp runs this case with one
# worker (mmtlsd warns about several on xdp).  The fast path's workers share the divert
# interface through a PACKET_FANOUT_HASH group (symmetric): two workers.
[ "$IO" = xdp ] && W2=1
start_mbox run5 --workers $W2
PAR_PIDS=()
for k in 1 2; do
    args=()
    for i in $(seq 64); do
        args+=(-o "$W/par$k.$i" "https://server.test/mid.bin?c=$k&i=$i")
    done
    client "${KEYS[@]}" "${CURL[@]}" --http1.1 --parallel --parallel-max 64 "${args[@]}" &
    PAR_PIDS+=($!)
done
wait "${PAR_PIDS[@]}"
bad=0
for f in "$W"/par*.*; do cmp -s "$f" "$W/www/mid.bin" || bad=$((bad + 1)); done
[ "$(ls "$W"/par*.* | wc -l)" = 128 ] && [ $bad = 0 ] &&
    pass "two workers: 128 concurrent downloads byte-exact" || fail "two workers ($bad bad)"
stop_mbox

start_mbox run2 --on-missing-keys pass --key-wait 300 "${HOLD[@]}"
client "${CURL[@]}" --http1.1 -o "$W/got6" https://server.test/big.bin &&
    cmp -s "$W/got6" "$W/www/big.bin" &&
    pass "no keys, policy pass: released after the wait, byte-exact" || fail "no-keys pass"
stop_mbox

# The rule engine inline: a Suricata drop rule on the response body blocks the EICAR download
# (no built-in demo rule this time), an alert rule on the URI only logs.
cat >"$W/inline.rules" <<'RULES'
drop http any any -> any any (msg:"inline eicar"; file_data; content:"EICAR-STANDARD-ANTIVIRUS-TEST-FILE"; sid:9200001; rev:1;)
alert http any any -> any any (msg:"inline big"; http.uri; content:"/big.bin"; sid:9200002; rev:1;)
RULES
EICAR_OPT= start_mbox run7 --rules "$W/inline.rules"
client "${KEYS[@]}" "${CURL[@]}" --http1.1 -o "$W/got14" https://server.test/eicar.com 2>"$W/c14"
rc=$?
[ $rc = 56 ] && ! grep -qs EICAR "$W/got14" &&
    pass "rules inline: a drop rule resets the EICAR download" || fail "rules drop (curl rc $rc)"
client "${KEYS[@]}" "${CURL[@]}" --http2 -o "$W/got15" https://server.test/big.bin &&
    cmp -s "$W/got15" "$W/www/big.bin" &&
    pass "rules inline: an alert rule lets the download through (HTTP/2)" || fail "rules alert"
stop_mbox
PYTHONPATH="$HERE" python3 - "$W/run7/eve.json" <<'EOF' || fail "rules inline: eve"
import sys
from evecheck import load, events, check, done
al = events(load(sys.argv[1]), "alert")
check([a["alert"]["action"] for a in al if a["alert"]["signature_id"] == 9200001] == ["blocked"],
      "one blocked alert for the drop rule")
check([a["http"]["url"] for a in al if a["alert"]["signature_id"] == 9200002] == ["/big.bin"],
      "one allowed alert for the URI rule, with the url")
done()
EOF

start_mbox run6 --on-missing-keys alert --key-wait 300 "${HOLD[@]}"
client "${CURL[@]}" --http1.1 -o "$W/got13" https://server.test/big.bin &&
    cmp -s "$W/got13" "$W/www/big.bin" &&
    pass "no keys, policy alert: released after the wait, byte-exact" || fail "no-keys alert"
stop_mbox
python3 - "$W/run6/eve.json" <<'EOF' || fail "policy alert: no no_keys error logged"
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1])]
t = [e["tls"] for e in ev if e["event_type"] == "tls"]
print("   run 6 session:", t)
sys.exit(0 if len(t) == 1 and not t[0]["blocked"] and any(
    x.get("code") == "no_keys" for x in t[0].get("errors", [])) else 1)
EOF

PYTHONPATH="$HERE" python3 - "$W/run1/eve.json" "$W/run2/eve.json" "$W/run3/eve.json" \
    "$W/run5/eve.json" "$W2" "$IO" <<'EOF' || fail "eve checks"
import sys
from evecheck import load, check, done
r1, r2 = load(sys.argv[1]), load(sys.argv[2])
tls = [e["tls"] for e in r1 if e["event_type"] == "tls"]
alerts = [e for e in r1 if e["event_type"] == "alert"]
http = [e["http"]["url"] for e in r1 if e["event_type"] == "http"]
st = [e["stats"] for e in r1 if e["event_type"] == "stats"][0]
check(len(tls) == 8, "8 TLS sessions in run 1 (got %d)" % len(tls))
check(sum(1 for t in tls if t["key_status"] == "decrypted" and not t["blocked"]) == 4,
      "four downloads decrypted, not blocked (curl h1, h2, wget, python3)")
check(len(alerts) == 2 and all(a["alert"]["signature_id"] == 9000001 for a in alerts),
      "two EICAR alerts (curl, s_client)")
check("/big.bin" in http and "/eicar.com" in http, "http events for the requests")
check(st["tls"]["inline"]["rst_sent"] >= 4, "RSTs sent (EICAR + no keys)")
check(st["tls"]["inline"]["blocked_missing_keys"] == 2,
      "two sessions blocked for missing keys (no keys; bypass refused)")
check(st["tls"]["keys"]["bypass_refused"] == 1, "one bypass refused")
t2 = [e["tls"] for e in r2 if e["event_type"] == "tls"]
check(len(t2) == 1 and t2[0]["key_status"] == "no_keys" and not t2[0]["blocked"],
      "run 2: released without keys, not blocked")
t3 = [e["tls"] for e in load(sys.argv[3]) if e["event_type"] == "tls"]
r5 = load(sys.argv[4])
t5 = [e for e in r5 if e["event_type"] == "tls"]
s5 = [e for e in r5 if e["event_type"] == "stats"]
dec5 = sum(1 for e in t5 if e["tls"]["key_status"] == "decrypted" and not e["tls"]["blocked"])
check(len(t5) == 128 and dec5 == 128, "run 5: 128 sessions, all decrypted")
check(len(set(e["flow_id"] for e in t5)) == 128, "run 5: flow ids unique across workers")
check(sys.argv[5] == "1" or sorted(e.get("worker") for e in s5) == [0, 1],
      "run 5: a stats event per worker")
check(all(e["stats"]["tls"]["sessions"] > 0 for e in s5), "run 5: both workers had sessions")
print("   run 5 sessions per worker:", [e["stats"]["tls"]["sessions"] for e in s5])
check(any(t["key_status"] == "bypass" and not t["blocked"] for t in t3), "run 3: a bypass session")
print("   run 1 inline counters:", st["tls"]["inline"])
done()
EOF

tb_finish "$W"
