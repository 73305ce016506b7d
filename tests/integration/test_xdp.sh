#!/usr/bin/env bash
# AF_XDP port (src/io/io_xdp.c) end to end, through tools/mmtls-bridge --io xdp:
#
#   ns client            ns mbox (no addresses: a bump in the wire)          ns server
#   c0 198.18.3.1 ====== m0  <-- mmtls-bridge m0 m1 --io xdp -->  m1 ====== s0 198.18.3.2
#
# AF_XDP frames are single UMEM frames without checksum offload state, so the end hosts' tx
# checksumming is off (a CHECKSUM_PARTIAL frame would leave the bridge with an unfinished
# checksum); with an XDP program on m0/m1 the kernel turns TSO off on c0/s0 by itself.
# Cases:
#   test_ping          ICMP both ways (own redirect program, auto mode: copy on veth)
#   test_http_down     100 MB server -> client (HTTP), sha256 equal
#   test_tcp_up        100 MB client -> server (raw TCP), sha256 equal
#   test_libxdp        ping and the download with libxdp's default program (--xdp-prog libxdp)
#   test_busy          a second bridge on queues a running one holds is refused (own program:
#                      at once; libxdp's: after the bounded busy retry, with its message), the
#                      first still forwards; then five stop/start cycles in a row each forward
#                      (a closed socket unbinds its queue later: the open retries meanwhile)
#   test_zerocopy      --xdp-mode zerocopy on veth (no zero-copy driver): refused with an error
#   test_big_frame     MTU 5000: 1000-byte pings pass, 4500-byte ones (larger than a UMEM
#                      frame) are dropped and counted by the kernel, never truncated
#   test_accounting    the two ports share one UMEM and forward by descriptor: after transfers
#                      both ways at once (default UMEM, then a 64-frame-per-port one that runs
#                      out of frames all the time), every frame is back (free + fill = frames,
#                      none in rx or tx, fill rings full), no frame was ever in two places
#                      (errors 0), every frame went out by descriptor, sha256 equal
#
# Run as root: MMTLS_BUILDDIR=build bash tests/integration/test_xdp.sh [case...]
# Exit 77 (skip) without root, tools, or AF_XDP (kernel or build without libxdp).
set -u

SRCDIR=$(cd "$(dirname "$0")/../.." && pwd)
B=${MMTLS_BUILDDIR:-$SRCDIR/build}
BRIDGE=${MMTLS_BRIDGE:-$B/tools/mmtls-bridge/mmtls-bridge}
[ -x "$BRIDGE" ] || BRIDGE=$B/mmtls-bridge
SIZE_MB=${MMTLS_XDP_SIZE_MB:-100}
ALL_TESTS="test_ping test_http_down test_tcp_up test_libxdp test_busy test_zerocopy test_big_frame
test_accounting"

TAG=mmxdp$$
# shellcheck source=lib_bridge.sh
. "$(dirname "$0")/lib_bridge.sh"
bridge_require ip curl python3 timeout sha256sum ethtool ping
[ -x "$BRIDGE" ] || { echo "FAIL: build mmtls-bridge first ($BRIDGE)"; exit 1; }

setup_topology() {
    bridge_topology || return 1
    in_c ethtool -K c0 tx off >/dev/null && in_s ethtool -K s0 tx off >/dev/null
}

start_bridge() {
    : >"$WORK/bridge.log"
    timeout -s INT 300 ip netns exec "$NS_M" "$BRIDGE" m0 m1 --io xdp "$@" 2>"$WORK/bridge.log" &
    BRIDGE_PID=$!
    for _ in $(seq 50); do
        grep -q '<->' "$WORK/bridge.log" && return 0
        kill -0 "$BRIDGE_PID" 2>/dev/null || break
        sleep 0.1
    done
    echo "bridge did not start:"; cat "$WORK/bridge.log"
    BRIDGE_PID=
    return 1
}

stop_bridge() {
    [ -n "$BRIDGE_PID" ] || return 0
    kill -INT "$BRIDGE_PID" 2>/dev/null
    wait "$BRIDGE_PID" 2>/dev/null
    BRIDGE_PID=
    sed 's/^/#   /' "$WORK/bridge.log"
}

# sink.py PORT OUT: accepts one TCP connection and writes what it receives to OUT.
cat >"$WORK/sink.py" <<'PYEOF'
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("198.18.3.2", int(sys.argv[1])))
s.listen(1)
open(sys.argv[3], "w").close()
c, _ = s.accept()
with open(sys.argv[2], "wb") as f:
    while True:
        b = c.recv(1 << 20)
        if not b:
            break
        f.write(b)
PYEOF

wait_file() {
    for _ in $(seq 50); do [ -e "$1" ] && return 0; sleep 0.1; done
    return 1
}

check_sha() {
    local want got
    want=$(cut -d' ' -f1 "$WORK/blob.sha256")
    got=$(sha256sum "$1" | cut -d' ' -f1)
    [ "$want" = "$got" ] || { echo "sha256 mismatch: want $want got $got"; return 1; }
}

test_ping() {
    start_bridge || return 1
    in_c ping -c 3 -i 0.2 -W 2 198.18.3.2 >/dev/null || { stop_bridge; echo "ping failed"; return 1; }
    in_s ping -c 3 -i 0.2 -W 2 198.18.3.1 >/dev/null || { stop_bridge; echo "ping back failed"; return 1; }
    stop_bridge
}

# download [bridge options]: the blob from the server through the bridge (HTTP).
download() {
    local rc t0 t1
    start_bridge "$@" || return 1
    timeout 300 ip netns exec "$NS_S" python3 -m http.server --bind 198.18.3.2 8080 \
        --directory "$WORK/www" >/dev/null 2>&1 &
    SRV_PID=$!
    for _ in $(seq 50); do
        in_c timeout 1 bash -c "exec 3<>/dev/tcp/198.18.3.2/8080" 2>/dev/null && break
        sleep 0.1
    done
    rm -f "$WORK/got"
    t0=$(date +%s.%N)
    in_c timeout 120 curl -sS --max-time 110 -o "$WORK/got" http://198.18.3.2:8080/blob
    rc=$?
    t1=$(date +%s.%N)
    kill "$SRV_PID" 2>/dev/null
    wait "$SRV_PID" 2>/dev/null
    SRV_PID=
    stop_bridge
    [ $rc = 0 ] || { echo "curl failed ($rc)"; return 1; }
    log "download in $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }') s"
    check_sha "$WORK/got"
}

test_http_down() { download; }

test_tcp_up() {
    local rc
    start_bridge || return 1
    rm -f "$WORK/up" "$WORK/sink.ready"
    timeout 150 ip netns exec "$NS_S" python3 "$WORK/sink.py" 9000 "$WORK/up" "$WORK/sink.ready" &
    SRV_PID=$!
    wait_file "$WORK/sink.ready" || { stop_bridge; echo "sink did not start"; return 1; }
    in_c timeout 120 python3 -c '
import socket, sys
s = socket.create_connection(("198.18.3.2", 9000), timeout=60)
with open(sys.argv[1], "rb") as f:
    s.sendfile(f)
s.shutdown(socket.SHUT_WR)
s.recv(1)
' "$WORK/www/blob"
    rc=$?
    wait "$SRV_PID"
    SRV_PID=
    stop_bridge
    [ $rc = 0 ] || { echo "upload failed ($rc)"; return 1; }
    check_sha "$WORK/up"
}

test_libxdp() {
    start_bridge --xdp-prog libxdp || return 1
    in_c ping -c 3 -i 0.2 -W 2 198.18.3.2 >/dev/null || { stop_bridge; echo "ping failed"; return 1; }
    stop_bridge
    ip -n "$NS_M" link show m0 | grep -q 'prog/xdp' && { echo "libxdp left its program"; return 1; }
    download --xdp-prog libxdp
}

test_busy() {
    local rc=0 t0 t1 i
    start_bridge --xdp-prog libxdp || return 1
    for prog in own libxdp; do
        t0=$(date +%s.%N)
        if timeout 30 ip netns exec "$NS_M" "$BRIDGE" m0 m1 --io xdp --xdp-prog "$prog" \
            2>"$WORK/bridge2.log"; then
            echo "a second bridge ($prog program) ran on held queues"; rc=1
        fi
        t1=$(date +%s.%N)
        log "second bridge ($prog program) refused after $(awk -v a="$t0" -v b="$t1" \
            'BEGIN { printf "%.1f", b - a }') s: $(tail -n 1 "$WORK/bridge2.log")"
        [ -s "$WORK/bridge2.log" ] || { echo "no error message ($prog program)"; rc=1; }
    done
    grep -q 'another socket holds the queue' "$WORK/bridge2.log" ||
        { echo "libxdp program: no busy-queue message"; rc=1; }
    in_c ping -c 3 -i 0.2 -W 2 198.18.3.2 >/dev/null || { echo "the first bridge stopped forwarding"; rc=1; }
    stop_bridge
    for i in 1 2 3 4 5; do
        start_bridge --xdp-prog libxdp || { echo "restart $i failed"; return 1; }
        in_c ping -c 1 -W 2 198.18.3.2 >/dev/null || { echo "no forwarding after restart $i"; rc=1; }
        stop_bridge >/dev/null
    done
    return $rc
}

test_zerocopy() {
    # veth has no zero-copy support: the port must refuse, not fall back silently.
    if start_bridge --xdp-mode zerocopy; then
        stop_bridge
        echo "zero-copy mode accepted on veth"
        return 1
    fi
    grep -q 'zero-copy' "$WORK/bridge.log" || { echo "no zero-copy error message"; return 1; }
    ip -n "$NS_M" link show m0 | grep -q 'prog/xdp' && { echo "program left attached"; return 1; }
    return 0
}

test_big_frame() {
    local rc=0 drops
    mtu 5000 || { echo "cannot set MTU 5000"; return 1; }
    start_bridge || { mtu 1500; return 1; }
    in_c ping -c 3 -i 0.2 -W 2 -s 1000 198.18.3.2 >/dev/null || { echo "1000-byte ping failed"; rc=1; }
    if in_c ping -c 3 -i 0.2 -W 1 -s 4500 -M do 198.18.3.2 >/dev/null; then
        echo "4500-byte frames crossed a bridge whose UMEM frames hold 3840 bytes"
        rc=1
    fi
    stop_bridge
    mtu 1500
    drops=$(sed -n 's/^mmtls-bridge m0: .*kernel drops \([0-9]*\),.*/\1/p' "$WORK/bridge.log")
    log "kernel drops on m0: ${drops:-?}"
    [ "${drops:-0}" -ge 3 ] || { echo "oversized frames were not counted as kernel drops"; rc=1; }
    return $rc
}

# both_ways MB: MB bytes client -> server and server -> client at the same time (raw TCP), sha
# of both checked.  The bridge must be running.
both_ways() {
    local mb=$1 rc=0 up_pid
    head -c "$((mb * 1024 * 1024))" "$WORK/www/blob" >"$WORK/part"
    sha256sum "$WORK/part" | cut -d' ' -f1 >"$WORK/part.sha"
    rm -f "$WORK/up" "$WORK/sink.ready" "$WORK/down" "$WORK/sinkc.ready"
    timeout 150 ip netns exec "$NS_S" python3 "$WORK/sink.py" 9001 "$WORK/up" "$WORK/sink.ready" &
    SRV_PID=$!
    wait_file "$WORK/sink.ready" || { echo "sink did not start"; return 1; }
    # the other direction: the server connects to a sink in the client namespace
    timeout 150 ip netns exec "$NS_C" python3 -c '
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("198.18.3.1", 9002))
s.listen(1)
open(sys.argv[2], "w").close()
c, _ = s.accept()
with open(sys.argv[1], "wb") as f:
    while True:
        b = c.recv(1 << 20)
        if not b:
            break
        f.write(b)
' "$WORK/down" "$WORK/sinkc.ready" &
    local sinkc=$!
    wait_file "$WORK/sinkc.ready" || { echo "client sink did not start"; kill $sinkc; return 1; }
    local send='
import socket, sys
s = socket.create_connection((sys.argv[2], int(sys.argv[3])), timeout=60)
with open(sys.argv[1], "rb") as f:
    s.sendfile(f)
s.shutdown(socket.SHUT_WR)
s.recv(1)
'
    in_c timeout 120 python3 -c "$send" "$WORK/part" 198.18.3.2 9001 &
    up_pid=$!
    in_s timeout 120 python3 -c "$send" "$WORK/part" 198.18.3.1 9002 || { echo "down failed"; rc=1; }
    wait $up_pid || { echo "up failed"; rc=1; }
    wait "$SRV_PID"
    SRV_PID=
    wait $sinkc
    for f in up down; do
        [ "$(sha256sum "$WORK/$f" | cut -d' ' -f1)" = "$(cat "$WORK/part.sha")" ] ||
            { echo "$f: sha256 mismatch ($(stat -c %s "$WORK/$f") bytes)"; rc=1; }
    done
    return $rc
}

# check_umem FRAMES: the bridge's exit lines say every frame of its one shared UMEM is back.
check_umem() {
    local want=$1 line n free fill rx tx errs fwd0 fwd1 txf0 txf1 rc=0
    line=$(grep '^mmtls-bridge m0 umem:' "$WORK/bridge.log")
    log "${line:-no umem line}"
    read -r n free fill rx tx errs <<<"$(echo "$line" |
        sed -n 's/.*frames \([0-9]*\) free \([0-9]*\) fill \([0-9]*\) rx \([0-9]*\) tx \([0-9]*\) errors \([0-9]*\).*/\1 \2 \3 \4 \5 \6/p')"
    [ -n "${errs:-}" ] || { echo "no umem line in the bridge's log"; return 1; }
    echo "$line" | grep -q '(shared)' || { echo "the ports do not share one UMEM"; rc=1; }
    grep -q '^mmtls-bridge m1 umem:' "$WORK/bridge.log" && { echo "a second UMEM"; rc=1; }
    [ "$n" = "$want" ] || { echo "UMEM of $n frames, want $want"; rc=1; }
    [ $((free + fill + rx + tx)) = "$n" ] ||
        { echo "free $free + fill $fill + rx $rx + tx $tx != $n frames"; rc=1; }
    [ "$errs" = 0 ] || { echo "$errs frame accounting errors"; rc=1; }
    [ "$rx" = 0 ] && [ "$tx" = 0 ] || { echo "frames not back at exit: rx $rx tx $tx"; rc=1; }
    [ "$fill" = $((n / 2)) ] || { echo "fill rings hold $fill frames, want $((n / 2))"; rc=1; }
    fwd0=$(sed -n 's/^mmtls-bridge m0: .*forwarded by descriptor \([0-9]*\).*/\1/p' "$WORK/bridge.log")
    fwd1=$(sed -n 's/^mmtls-bridge m1: .*forwarded by descriptor \([0-9]*\).*/\1/p' "$WORK/bridge.log")
    txf0=$(sed -n 's/^mmtls-bridge m0: .* tx \([0-9]*\) frames.*/\1/p' "$WORK/bridge.log")
    txf1=$(sed -n 's/^mmtls-bridge m1: .* tx \([0-9]*\) frames.*/\1/p' "$WORK/bridge.log")
    log "tx frames m0 $txf0 (by descriptor $fwd0), m1 $txf1 (by descriptor $fwd1)"
    [ "${fwd0:-0}" -gt 1000 ] && [ "${fwd1:-0}" -gt 1000 ] ||
        { echo "too few frames forwarded by descriptor"; rc=1; }
    [ "$fwd0" = "$txf0" ] && [ "$fwd1" = "$txf1" ] || { echo "some frames were copied"; rc=1; }
    return $rc
}

test_accounting() {
    local rc=0
    start_bridge || return 1
    both_ways 32 || rc=1
    stop_bridge
    check_umem 8192 || rc=1
    # 64 frames per port: 32 in each fill ring, the free stack and the tx rings run dry
    start_bridge --xdp-frames 64 --burst 16 || return 1
    both_ways 8 || rc=1
    stop_bridge
    check_umem 128 || rc=1
    return $rc
}

setup_topology || { echo "FAIL: cannot build the namespaces"; exit 1; }
mkdir -p "$WORK/www"
head -c "$((SIZE_MB * 1024 * 1024))" /dev/urandom >"$WORK/www/blob"
sha256sum "$WORK/www/blob" >"$WORK/blob.sha256"

# Probe: can an AF_XDP port be opened here at all?
if ! bridge_probe m0 m1 --io xdp; then
    skip "AF_XDP unavailable: $(head -1 "$WORK/probe.log")"
fi

fails=0
for t in ${*:-$ALL_TESTS}; do
    if $t >"$WORK/case.log" 2>&1; then
        echo "ok - $t"
    else
        echo "not ok - $t"
        fails=$((fails + 1))
    fi
    sed 's/^/#   /' "$WORK/case.log"
done
[ $fails = 0 ] && echo "PASS" || echo "FAIL: $fails case(s)"
[ $fails = 0 ]
