#!/usr/bin/env bash
# make-capture.sh OUTDIR [TOTAL_MB] - make the offline benchmark's capture.
#
# Real TLS 1.3 traffic (TLS_AES_256_GCM_SHA384, 16384-byte records) between a python3 ssl
# (OpenSSL) server and client in two network namespaces of this script's own, joined by a veth
# pair (198.18.0.1/24 client, 198.18.0.2/24 server: RFC 2544 benchmark addresses; no other
# traffic). The server sends TOTAL_MB (default 1100; MB = 10^6 bytes) spread over CONNS
# connections (default 64), PARALLEL (default 4) at a time, with sendall() of 16384-byte chunks.
# tcpdump in the server namespace writes the capture.
#
# Writes in OUTDIR: capture.pcap, keys.log (the client's NSS key log), meta.json (what was
# sent, the peers' own checks, tcpdump's drop count, offload settings, timings) and, when
# mmtlsd is built ($MMTLSD, default build-bench/tools/mmtlsd/mmtlsd), verify.json: mmtlsd's
# decryption of the capture, which must show every session "decrypted" with the right cipher
# and every byte of plaintext. Exit 0 only if everything checked out.
#
# Environment: CONNS, PARALLEL, OFFLOADS=on|off (veth TSO/GSO/GRO; default on: the capture
# then holds GSO super-frames of up to 64 KB, i.e. 16x fewer packets for tcpdump to keep up
# with; both kinds are valid captures for mmtlsd), RATE (pace the server with a tc tbf qdisc,
# e.g. RATE=2gbit, so that tcpdump keeps up with MTU-sized packets), MMTLSD.
# Bounded: the client has 240 s, tcpdump is stopped right after, the namespaces go in a trap.
set -euo pipefail

if [ $# -lt 1 ] || [ $# -gt 2 ]; then
    echo "usage: $0 OUTDIR [TOTAL_MB]" >&2
    exit 2
fi
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
OUT=$1
TOTAL_MB=${2:-1100}
CONNS=${CONNS:-64}
PARALLEL=${PARALLEL:-4}
OFFLOADS=${OFFLOADS:-on}
RATE=${RATE:-}
MMTLSD=${MMTLSD:-$ROOT/build-bench/tools/mmtlsd/mmtlsd}
PY=${PY:-python3}
PORT=4433
C_IP=198.18.0.1
S_IP=198.18.0.2
NS_C=mmtls-bench-$$-c
NS_S=mmtls-bench-$$-s
VETH_C=mbc$$
VETH_S=mbs$$

[ "$(id -u)" = 0 ] || { echo "make-capture.sh: needs root (namespaces, tcpdump)" >&2; exit 2; }
for c in ip tcpdump timeout openssl "$PY"; do
    command -v "$c" >/dev/null || { echo "make-capture.sh: $c not installed" >&2; exit 2; }
done

mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
# Bytes per connection: a whole number of 16384-byte records.
PER_CONN=$(( (TOTAL_MB * 1000000 / CONNS + 16383) / 16384 * 16384 ))
TOTAL=$((PER_CONN * CONNS))
need_kb=$(( TOTAL * 11 / 10 / 1024 ))
free_kb=$(df -Pk "$OUT" | awk 'NR==2 {print $4}')
if [ "$free_kb" -lt "$need_kb" ]; then
    echo "make-capture.sh: $OUT has ${free_kb} kB free, need about ${need_kb} kB" >&2
    exit 2
fi

NET=0
TCPDUMP_PID=""
SERVER_PID=""
cleanup() {
    [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null
    [ -n "$TCPDUMP_PID" ] && kill "$TCPDUMP_PID" 2>/dev/null
    wait 2>/dev/null
    if [ "$NET" = 1 ]; then
        ip netns del "$NS_C" 2>/dev/null
        ip netns del "$NS_S" 2>/dev/null
    fi
    rm -f "$OUT/openssl-bench.cnf"
    return 0
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { printf '[make-capture] %s\n' "$*" >&2; }
trap 'log "failed at line $LINENO (exit $?)"' ERR

bash "$ROOT/scripts/mkcerts.sh" "$OUT/pki" >/dev/null

# TLS 1.3 with TLS_AES_256_GCM_SHA384 only, for both peers: python 3.11's ssl module cannot set
# TLS 1.3 suites, but libssl reads the system_default section of $OPENSSL_CONF.
cat >"$OUT/openssl-bench.cnf" <<'EOF'
openssl_conf = openssl_init
[openssl_init]
ssl_conf = ssl_sect
[ssl_sect]
system_default = system_default_sect
[system_default_sect]
MinProtocol = TLSv1.3
Ciphersuites = TLS_AES_256_GCM_SHA384
EOF

ip netns add "$NS_C"
NET=1
ip netns add "$NS_S"
ip link add "$VETH_C" type veth peer name "$VETH_S"
ip link set "$VETH_C" netns "$NS_C"
ip link set "$VETH_S" netns "$NS_S"
ip -n "$NS_C" link set lo up
ip -n "$NS_S" link set lo up
ip -n "$NS_C" link set "$VETH_C" up
ip -n "$NS_S" link set "$VETH_S" up
ip -n "$NS_C" addr add "$C_IP/24" dev "$VETH_C"
ip -n "$NS_S" addr add "$S_IP/24" dev "$VETH_S"
# No IPv6 on the link: nothing but the benchmark's TCP in the capture.
ip netns exec "$NS_C" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 || true
ip netns exec "$NS_S" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 || true
if [ "$OFFLOADS" = off ]; then
    ip netns exec "$NS_C" ethtool -K "$VETH_C" tso off gso off gro off >/dev/null
    ip netns exec "$NS_S" ethtool -K "$VETH_S" tso off gso off gro off >/dev/null
fi
if [ -n "$RATE" ]; then
    # Pace the server's sending so that tcpdump keeps up (needed with OFFLOADS=off).
    ip netns exec "$NS_S" tc qdisc add dev "$VETH_S" root tbf rate "$RATE" burst 256kb \
        latency 100ms
fi
offl=$(ip netns exec "$NS_S" ethtool -k "$VETH_S" 2>/dev/null |
    grep -E '^(tcp-segmentation-offload|generic-segmentation-offload|generic-receive-offload):' |
    tr -s ' ' | paste -sd, - || echo unknown)

rm -f "$OUT/capture.pcap" "$OUT/keys.log" "$OUT/verify.json"
ip netns exec "$NS_S" tcpdump -i "$VETH_S" -s 0 -U -B 262144 -n -w "$OUT/capture.pcap" \
    "tcp port $PORT" 2>"$OUT/tcpdump.log" &
TCPDUMP_PID=$!
for _ in $(seq 100); do
    grep -q 'listening on' "$OUT/tcpdump.log" 2>/dev/null && break
    sleep 0.1
done
grep -q 'listening on' "$OUT/tcpdump.log" || { log "tcpdump did not start"; exit 1; }

export OPENSSL_CONF=$OUT/openssl-bench.cnf
ip netns exec "$NS_S" timeout 300 "$PY" "$HERE/peers.py" server "$S_IP" "$PORT" \
    "$OUT/pki/rsa.crt" "$OUT/pki/rsa.key" "$CONNS" >"$OUT/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 100); do
    grep -q listening "$OUT/server.log" 2>/dev/null && break
    sleep 0.1
done

log "sending $TOTAL bytes: $CONNS connections x $PER_CONN bytes, $PARALLEL in parallel," \
    "offloads $OFFLOADS"
t0=$(date +%s.%N)
rc=0
ip netns exec "$NS_C" timeout 240 "$PY" "$HERE/peers.py" client "$S_IP" "$PORT" \
    "$OUT/pki/ca.crt" "$OUT/keys.log" "$CONNS" "$PARALLEL" "$PER_CONN" \
    >"$OUT/client.jsonl" 2>"$OUT/client.log" || rc=$?
t1=$(date +%s.%N)
wait "$SERVER_PID" || rc=$?
SERVER_PID=""
unset OPENSSL_CONF
# tcpdump may still be behind the kernel's buffer (the machine is busy): on SIGINT it would
# drop what it has not read yet. Wait until the file has stopped growing (at most 60 s).
last=-1
stable=0
for _ in $(seq 120); do
    cur=$(stat -c %s "$OUT/capture.pcap")
    if [ "$cur" = "$last" ]; then
        stable=$((stable + 1))
        [ "$stable" -ge 3 ] && break
    else
        stable=0
    fi
    last=$cur
    sleep 0.5
done
kill -INT "$TCPDUMP_PID"
wait "$TCPDUMP_PID" || true
TCPDUMP_PID=""
ip netns del "$NS_C"
ip netns del "$NS_S"
NET=0
if [ "$rc" != 0 ]; then
    log "the peers failed (rc $rc):"
    cat "$OUT/client.log" "$OUT/server.log" >&2
    exit 1
fi
dropped=$(sed -n 's/^\([0-9]*\) packets dropped by kernel.*/\1/p' "$OUT/tcpdump.log")
captured=$(sed -n 's/^\([0-9]*\) packets captured.*/\1/p' "$OUT/tcpdump.log")
size=$(stat -c %s "$OUT/capture.pcap")
secs=$(echo "$t1 - $t0" | bc)
log "captured $captured packets ($size bytes) in $secs s, $dropped dropped by the kernel"

"$PY" - "$OUT" "$TOTAL_MB" "$CONNS" "$PARALLEL" "$PER_CONN" "$TOTAL" "$OFFLOADS" "$offl" \
    "$captured" "$dropped" "$size" "$secs" "${RATE:-none}" <<'EOF'
import json, sys
out, total_mb, conns, par, per, total, offloads, offl, cap, drop, size, secs, rate = sys.argv[1:]
conn = [json.loads(l) for l in open(out + "/client.jsonl")]
meta = {"total_mb": int(total_mb), "connections": int(conns), "parallel": int(par),
        "bytes_per_connection": int(per), "plain_bytes_toclient": int(total),
        "record_plaintext": 16384, "offloads": offloads, "rate": rate, "veth_features": offl,
        "packets": int(cap), "tcpdump_dropped": int(drop), "capture_bytes": int(size),
        "send_seconds": float(secs),
        "peers_ok": all(c["ok"] for c in conn) and len(conn) == int(conns),
        "ciphers": sorted({c.get("cipher", "?") for c in conn}),
        "versions": sorted({c.get("version", "?") for c in conn})}
json.dump(meta, open(out + "/meta.json", "w"), indent=1)
print(json.dumps(meta))
EOF

received=$(sed -n 's/^\([0-9]*\) packets received by filter.*/\1/p' "$OUT/tcpdump.log")
if [ "$captured" != "$received" ]; then
    log "tcpdump wrote $captured of the $received packets it received: capture incomplete"
    exit 1
fi
if [ "$dropped" != 0 ]; then
    log "tcpdump dropped $dropped packets: the capture has holes; try RATE=1gbit or OFFLOADS=on"
    exit 1
fi

if [ -x "$MMTLSD" ]; then
    log "verifying with $MMTLSD"
    vdir=$(mktemp -d)
    "$MMTLSD" -r "$OUT/capture.pcap" --keylog "$OUT/keys.log" -l "$vdir" 2>"$OUT/verify.log" ||
        { cat "$OUT/verify.log" >&2; rm -rf "$vdir"; exit 1; }
    cat "$OUT/verify.log" >&2
    if ! "$PY" "$HERE/evecheck.py" "$vdir/eve.json" "$CONNS" "$TOTAL" >"$OUT/verify.json"; then
        rm -rf "$vdir"
        exit 1
    fi
    rm -rf "$vdir"
    log "mmtlsd decrypted every session: $(cat "$OUT/verify.json")"
else
    log "no mmtlsd at $MMTLSD: capture not verified (run.sh verifies it)"
fi
log "done: $OUT/capture.pcap $OUT/keys.log"
