#!/usr/bin/env bash
# DPDK port (src/io/io_dpdk.c) end to end, through tools/mmtls-bridge --io dpdk (net_af_packet
# vdevs over m0 and m1, EAL without hugepages or PCI):
#
#   ns client            ns mbox (no addresses: a bump in the wire)          ns server
#   c0 198.18.3.1 ====== m0  <-- mmtls-bridge m0 m1 --io dpdk -->  m1 ====== s0 198.18.3.2
#
# net_af_packet carries no virtio_net_hdr: the end hosts send complete checksums and no GSO
# frames (ethtool -K tx off tso off gso off), GRO is off on m0/m1.
# Cases:
#   test_ping          ICMP both ways
#   test_http_down     100 MB server -> client (HTTP), sha256 equal
#   test_tcp_up        100 MB client -> server (raw TCP), sha256 equal
#   test_both_ways     32 MB each way at once, sha256 of both; every frame forwarded in the mbuf
#                      it arrived in (tx frames = frames without copy), nothing dropped
#   test_vlan          802.1Q frames (VID 100) sent raw on c0 reach s0 still tagged (the kernel
#                      strips the tag into the packet socket's metadata, the driver puts it back)
#   test_big_mtu       MTU 5000: 4900-byte pings pass whole (ring frames follow the MTU; with
#                      the default 2048-byte frames the kernel would truncate them)
#   test_bad_args      --dpdk-args the EAL refuses: an error and exit status 1, no crash
#
# Run as root: MMTLS_BUILDDIR=build bash tests/integration/test_dpdk.sh [case...]
# Exit 77 (skip) without root, tools, or DPDK (build without libdpdk).
set -u

SRCDIR=$(cd "$(dirname "$0")/../.." && pwd)
B=${MMTLS_BUILDDIR:-$SRCDIR/build}
BRIDGE=${MMTLS_BRIDGE:-$B/tools/mmtls-bridge/mmtls-bridge}
[ -x "$BRIDGE" ] || BRIDGE=$B/mmtls-bridge
SIZE_MB=${MMTLS_DPDK_SIZE_MB:-100}
ALL_TESTS="test_ping test_http_down test_tcp_up test_both_ways test_vlan test_big_mtu test_bad_args"

TAG=mmdpdk$$
# shellcheck source=lib_bridge.sh
. "$(dirname "$0")/lib_bridge.sh"
bridge_require ip curl python3 timeout sha256sum ethtool ping tcpdump
[ -x "$BRIDGE" ] || { echo "FAIL: build mmtls-bridge first ($BRIDGE)"; exit 1; }

setup_topology() {
    bridge_topology || return 1
    # no virtio_net_hdr through net_af_packet: complete checksums, MTU-size frames
    in_c ethtool -K c0 tx off tso off gso off gro off >/dev/null &&
        in_s ethtool -K s0 tx off tso off gso off gro off >/dev/null &&
        in_m ethtool -K m0 gro off >/dev/null && in_m ethtool -K m1 gro off >/dev/null
}

start_bridge() {
    : >"$WORK/bridge.log"
    timeout -s INT 300 ip netns exec "$NS_M" "$BRIDGE" m0 m1 --io dpdk "$@" 2>"$WORK/bridge.log" &
    BRIDGE_PID=$!
    for _ in $(seq 100); do
        grep -q '<->' "$WORK/bridge.log" && return 0
        kill -0 "$BRIDGE_PID" 2>/dev/null || break
        sleep 0.1
    done
    echo "bridge did not start:"; cat "$WORK/bridge.log"
    kill "$BRIDGE_PID" 2>/dev/null
    wait "$BRIDGE_PID" 2>/dev/null
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

# sink.py ADDR PORT OUT READY: accepts one TCP connection and writes what it receives to OUT.
cat >"$WORK/sink.py" <<'PYEOF'
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2])))
s.listen(1)
open(sys.argv[4], "w").close()
c, _ = s.accept()
with open(sys.argv[3], "wb") as f:
    while True:
        b = c.recv(1 << 20)
        if not b:
            break
        f.write(b)
PYEOF
# send.py FILE ADDR PORT
cat >"$WORK/send.py" <<'PYEOF'
import socket, sys
s = socket.create_connection((sys.argv[2], int(sys.argv[3])), timeout=60)
with open(sys.argv[1], "rb") as f:
    s.sendfile(f)
s.shutdown(socket.SHUT_WR)
s.recv(1)
PYEOF

wait_file() {
    for _ in $(seq 50); do [ -e "$1" ] && return 0; sleep 0.1; done
    return 1
}

# same_sha FILE REF: sha256 of FILE equals that of REF
same_sha() {
    local want got
    want=$(sha256sum "$2" | cut -d' ' -f1)
    got=$(sha256sum "$1" | cut -d' ' -f1)
    [ "$want" = "$got" ] || { echo "$1: sha256 mismatch ($(stat -c %s "$1") bytes)"; return 1; }
}

test_ping() {
    start_bridge || return 1
    in_c ping -c 3 -i 0.2 -W 2 198.18.3.2 >/dev/null || { stop_bridge; echo "ping failed"; return 1; }
    in_s ping -c 3 -i 0.2 -W 2 198.18.3.1 >/dev/null || { stop_bridge; echo "ping back failed"; return 1; }
    stop_bridge
}

test_http_down() {
    local rc t0 t1
    start_bridge || return 1
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
    same_sha "$WORK/got" "$WORK/www/blob"
}

test_tcp_up() {
    local rc
    start_bridge || return 1
    rm -f "$WORK/up" "$WORK/sink.ready"
    timeout 150 ip netns exec "$NS_S" python3 "$WORK/sink.py" 198.18.3.2 9000 "$WORK/up" \
        "$WORK/sink.ready" &
    SRV_PID=$!
    wait_file "$WORK/sink.ready" || { stop_bridge; echo "sink did not start"; return 1; }
    in_c timeout 120 python3 "$WORK/send.py" "$WORK/www/blob" 198.18.3.2 9000
    rc=$?
    wait "$SRV_PID"
    SRV_PID=
    stop_bridge
    [ $rc = 0 ] || { echo "upload failed ($rc)"; return 1; }
    same_sha "$WORK/up" "$WORK/www/blob"
}

test_both_ways() {
    local rc=0 up_pid sinkc line n
    head -c $((32 * 1024 * 1024)) "$WORK/www/blob" >"$WORK/part"
    start_bridge || return 1
    rm -f "$WORK/up" "$WORK/sink.ready" "$WORK/down" "$WORK/sinkc.ready"
    timeout 150 ip netns exec "$NS_S" python3 "$WORK/sink.py" 198.18.3.2 9001 "$WORK/up" \
        "$WORK/sink.ready" &
    SRV_PID=$!
    timeout 150 ip netns exec "$NS_C" python3 "$WORK/sink.py" 198.18.3.1 9002 "$WORK/down" \
        "$WORK/sinkc.ready" &
    sinkc=$!
    wait_file "$WORK/sink.ready" && wait_file "$WORK/sinkc.ready" ||
        { echo "sinks did not start"; rc=1; }
    in_c timeout 120 python3 "$WORK/send.py" "$WORK/part" 198.18.3.2 9001 &
    up_pid=$!
    in_s timeout 120 python3 "$WORK/send.py" "$WORK/part" 198.18.3.1 9002 || { echo "down failed"; rc=1; }
    wait $up_pid || { echo "up failed"; rc=1; }
    wait "$SRV_PID"
    SRV_PID=
    wait $sinkc
    stop_bridge
    same_sha "$WORK/up" "$WORK/part" || rc=1
    same_sha "$WORK/down" "$WORK/part" || rc=1
    # zero copy: "tx N frames B bytes (N without copy)", nothing dropped
    for p in m0 m1; do
        line=$(grep "^mmtls-bridge $p: " "$WORK/bridge.log")
        n=$(echo "$line" | sed -n 's/.* tx \([0-9]*\) frames [0-9]* bytes (\([0-9]*\) without copy).*/\1 \2/p')
        read -r tx zc <<<"$n"
        [ -n "${zc:-}" ] && [ "$tx" -gt 10000 ] && [ "$tx" = "$zc" ] ||
            { echo "$p: want >10000 frames all sent without copy: '$line'"; rc=1; }
        echo "$line" | grep -q 'tx dropped 0,.* dropped 0$' ||
            { echo "$p: frames dropped: '$line'"; rc=1; }
    done
    return $rc
}

test_vlan() {
    local rc=0 td n
    start_bridge || return 1
    # capture tagged frames arriving on s0 (tcpdump reads the tag the kernel strips back
    # from the packet socket's auxdata)
    timeout 20 ip netns exec "$NS_S" tcpdump -i s0 -nn -U -w "$WORK/vlan.pcap" \
        'vlan 100 and udp port 4444' 2>"$WORK/td.err" &
    td=$!
    for _ in $(seq 50); do
        grep -qs 'listening on' "$WORK/td.err" && break
        sleep 0.1
    done
    # 802.1Q frames (VID 100) sent raw on c0: UDP 198.18.13.1 -> 198.18.13.2:4444
    in_c timeout 10 python3 - <<'PYEOF' || { echo "cannot send tagged frames"; rc=1; }
import socket, struct, time
def csum(b):
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    s = (s >> 16) + (s & 0xffff)
    return ~(s + (s >> 16)) & 0xffff
payload = b"mmtls-dpdk-vlan-test" * 10
udp = struct.pack("!HHHH", 5555, 4444, 8 + len(payload), 0) + payload
ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 1, 0, 64, 17, 0,
                 socket.inet_aton("198.18.13.1"), socket.inet_aton("198.18.13.2"))
ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
eth = b"\xff" * 6 + b"\x02\x00\x00\x00\x00\x01" + struct.pack("!HH", 0x8100, 100) + b"\x08\x00"
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind(("c0", 0))
for _ in range(5):
    s.send(eth + ip + udp)
    time.sleep(0.05)
PYEOF
    sleep 1
    kill -INT $td 2>/dev/null
    wait $td 2>/dev/null
    stop_bridge
    n=$(tcpdump -r "$WORK/vlan.pcap" -nn 2>/dev/null | wc -l)
    log "tagged frames at the server: $n"
    [ "$n" -ge 5 ] || { echo "want 5 frames with VLAN 100 at s0, got $n"; rc=1; }
    return $rc
}

test_big_mtu() {
    local rc=0
    mtu 5000 || { echo "cannot set MTU 5000"; return 1; }
    start_bridge || { mtu 1500; return 1; }
    in_c ping -c 3 -i 0.2 -W 2 -s 4500 -M do 198.18.3.2 >/dev/null ||
        { echo "4500-byte pings did not cross at MTU 5000"; rc=1; }
    in_s ping -c 3 -i 0.2 -W 2 -s 4900 -M do 198.18.3.1 >/dev/null ||
        { echo "4900-byte pings did not cross back at MTU 5000"; rc=1; }
    stop_bridge
    mtu 1500
    return $rc
}

test_bad_args() {
    local rc
    timeout 20 ip netns exec "$NS_M" "$BRIDGE" m0 m1 --io dpdk \
        --dpdk-args "--no-such-eal-option" >"$WORK/bad.out" 2>"$WORK/bad.log"
    rc=$?
    [ $rc = 1 ] || { echo "exit status $rc, want 1"; cat "$WORK/bad.log"; return 1; }
    grep -q 'EAL initialisation failed' "$WORK/bad.log" ||
        { echo "no error message: $(cat "$WORK/bad.log")"; return 1; }
    return 0
}

setup_topology || { echo "FAIL: cannot build the namespaces"; exit 1; }
mkdir -p "$WORK/www"
head -c "$((SIZE_MB * 1024 * 1024))" /dev/urandom >"$WORK/www/blob"

# Probe: is DPDK there at all (a build without libdpdk answers "built without DPDK")?
if ! bridge_probe m0 m1 --io dpdk; then
    grep -q 'built without DPDK' "$WORK/probe.log" && skip "built without DPDK"
    echo "FAIL: the DPDK bridge does not start:"
    cat "$WORK/probe.log"
    exit 1
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
