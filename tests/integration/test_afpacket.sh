#!/usr/bin/env bash
# AF_PACKET port (src/io/io_afpacket.c) end to end, through tools/mmtls-bridge:
#
#   ns client            ns mbox (no addresses: a bump in the wire)          ns server
#   c0 198.18.3.1 ====== m0  <-- mmtls-bridge m0 m1 -->  m1 ====== s0 198.18.3.2
#   c0.42 198.18.42.1 (802.1Q id 42)                               s0.42 198.18.42.2
#
# Offloads stay at veth's defaults (TSO/GSO/GRO on: the bridge sees 64 KiB super-frames with
# partial checksums) unless a case turns them off.  Cases (ALL_TESTS, xdp-tools style):
#   test_ping          ICMP both ways through the bridge
#   test_http_vnet     100 MB HTTP download, PACKET_VNET_HDR on both ports, sha256 equal;
#                      frames are sent by reference from the RX ring (mmtls_afp_tx_ref)
#   test_http_ring     same through the TX ring (--tx-ring)
#   test_http_frames   same with TPACKET_V2 frame rings (--frame-ring), by reference and
#                      through the V2 TX ring (the fast path's divert port reads a V2 ring)
#   test_http_novnet   same as test_http_vnet with --no-vnet and offloads off on all four ends
#   test_http_slow     --no-vnet --tx-ring, curl reading at 50 MB/s: data waits in the client's
#                      socket while the TX ring (zero-copy: skb frags point into ring slots)
#                      wraps many times; guards against slots reused while still referenced
#   test_vlan          802.1Q frames (VID 42, PCP 3): the bridge gets them untagged with the TCI
#                      in the ring header and must re-insert the tag; plain frames arrive
#                      byte-exact, and a tagged 20 KB TCP GSO super-frame (sent with a vnet
#                      header) is segmented by the kernel after the bridge with correct
#                      checksums.  This kernel has no 8021q module (no VLAN sub-interfaces, so
#                      no tagged HTTP download): the frames are crafted and captured with
#                      AF_PACKET sockets in python (PACKET_AUXDATA gives the received tag).
#
# Run as root: MMTLS_BUILDDIR=build bash tests/integration/test_afpacket.sh [case...]
# Exit 77 (skip) without root, ip, curl, python3 or AF_PACKET rings.  The bridge binary is
# $MMTLS_BRIDGE, else $MMTLS_BUILDDIR/mmtls-bridge; if neither exists it is built from the
# libraries of $MMTLS_BUILDDIR with:
#   gcc -std=c11 -D_GNU_SOURCE -O2 -Iinclude -Isrc tools/mmtls-bridge/bridge.c \
#       $B/libmmtls_io.a $B/libmmtls_util.a -lcrypto -o $B/mmtls-bridge
set -u

SRCDIR=$(cd "$(dirname "$0")/../.." && pwd)
B=${MMTLS_BUILDDIR:-$SRCDIR/build}
BRIDGE=${MMTLS_BRIDGE:-$B/mmtls-bridge}
SIZE_MB=${MMTLS_AFP_SIZE_MB:-100}
ALL_TESTS="test_ping test_http_vnet test_http_ring test_http_frames test_http_novnet test_http_slow
    test_vlan"

TAG=mmafp$$
# shellcheck source=lib_bridge.sh
. "$(dirname "$0")/lib_bridge.sh"
bridge_require ip curl python3 timeout sha256sum ethtool

if [ ! -x "$BRIDGE" ]; then
    [ -f "$B/libmmtls_io.a" ] || skip "no $BRIDGE and no $B/libmmtls_io.a to build it from"
    gcc -std=c11 -D_GNU_SOURCE -O2 -g -Wall -Wextra -I"$SRCDIR/include" -I"$SRCDIR/src" \
        "$SRCDIR/tools/mmtls-bridge/bridge.c" "$B/libmmtls_io.a" "$B/libmmtls_util.a" -lcrypto \
        $(pkg-config --libs libxdp libbpf 2>/dev/null) -o "$B/mmtls-bridge" || { echo "FAIL: cannot build mmtls-bridge"; exit 1; }
    BRIDGE=$B/mmtls-bridge
fi

# offloads on|off on the four veth ends (tx checksumming included: without vnet_hdr a frame
# with a partial checksum cannot be handed on).
offloads() {
    local v=$1
    in_c ethtool -K c0 tso "$v" gso "$v" gro "$v" tx "$v" >/dev/null 2>&1
    in_m ethtool -K m0 tso "$v" gso "$v" gro "$v" tx "$v" >/dev/null 2>&1
    in_m ethtool -K m1 tso "$v" gso "$v" gro "$v" tx "$v" >/dev/null 2>&1
    in_s ethtool -K s0 tso "$v" gso "$v" gro "$v" tx "$v" >/dev/null 2>&1
}

start_bridge() {
    : >"$WORK/bridge.log"
    timeout -s INT 600 ip netns exec "$NS_M" "$BRIDGE" m0 m1 "$@" 2>"$WORK/bridge.log" &
    BRIDGE_PID=$!
    for _ in $(seq 50); do
        grep -q '<->' "$WORK/bridge.log" && return 0
        kill -0 "$BRIDGE_PID" 2>/dev/null || break
        sleep 0.1
    done
    echo "bridge did not start:"; cat "$WORK/bridge.log"
    return 1
}

stop_bridge() {
    [ -n "$BRIDGE_PID" ] || return 0
    kill -INT "$BRIDGE_PID" 2>/dev/null
    wait "$BRIDGE_PID" 2>/dev/null
    BRIDGE_PID=
    sed 's/^/#   /' "$WORK/bridge.log"
}

start_http() {
    timeout 600 ip netns exec "$NS_S" python3 -m http.server --bind "$1" 8080 \
        --directory "$WORK/www" >"$WORK/http.log" 2>&1 &
    SRV_PID=$!
    for _ in $(seq 50); do
        in_s bash -c "exec 3<>/dev/tcp/$1/8080" 2>/dev/null && return 0
        sleep 0.1
    done
    echo "http server did not start"; cat "$WORK/http.log"
    return 1
}

stop_http() {
    [ -n "$SRV_PID" ] && kill "$SRV_PID" 2>/dev/null
    wait "$SRV_PID" 2>/dev/null
    SRV_PID=
}

# download SERVER_IP: fetch the blob through the bridge and compare digests.
download() {
    local ip=$1 t0 t1 want got
    start_http "$ip" || return 1
    rm -f "$WORK/got"
    t0=$(date +%s.%N)
    in_c timeout 120 curl -sS --max-time 110 ${CURL_RATE:+--limit-rate $CURL_RATE} \
        -o "$WORK/got" "http://$ip:8080/blob"
    local rc=$?
    t1=$(date +%s.%N)
    stop_http
    [ $rc = 0 ] || { echo "curl failed ($rc)"; return 1; }
    want=$(cut -d' ' -f1 "$WORK/blob.sha256")
    got=$(sha256sum "$WORK/got" | cut -d' ' -f1)
    log "$SIZE_MB MB in $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }') s"
    [ "$want" = "$got" ] || { echo "sha256 mismatch: want $want got $got"; return 1; }
}

test_ping() {
    offloads on
    start_bridge || return 1
    in_c ping -c 3 -i 0.2 -W 2 198.18.3.2 >/dev/null || { stop_bridge; echo "ping failed"; return 1; }
    in_s ping -c 3 -i 0.2 -W 2 198.18.3.1 >/dev/null || { stop_bridge; echo "ping back failed"; return 1; }
    stop_bridge
}

# http_through ARGS...: the download through a bridge started with ARGS.
http_through() {
    start_bridge "$@" || return 1
    download 198.18.3.2
    local rc=$?
    stop_bridge
    return $rc
}

test_http_vnet() {
    offloads on
    http_through
}

# The same through the TX ring (a copy into the slot) instead of sends by reference.
test_http_ring() {
    offloads on
    http_through --tx-ring
}

# TPACKET_V2 frame rings (mmtls_afp_opts.frame_ring): receive, send by reference, the V2 TX ring.
test_http_frames() {
    offloads on
    http_through --frame-ring && http_through --frame-ring --tx-ring
}

test_http_novnet() {
    offloads off
    http_through --no-vnet
    local rc=$?
    offloads on
    return $rc
}

test_http_slow() {
    offloads off
    CURL_RATE=50M http_through --no-vnet --tx-ring
    local rc=$?
    offloads on
    return $rc
}

write_vlan_py() {
    cat >"$WORK/vlan.py" <<'PYEOF'
# vlan.py send IFNAME DSTMAC | vlan.py recv IFNAME SECONDS
import os, socket, struct, sys, time

TCI = (3 << 13) | 42
ETH_P_ALL, SOL_PACKET, PACKET_AUXDATA, PACKET_VNET_HDR = 3, 263, 8, 15
random = __import__("random").Random(42)
PLAIN = [bytes(random.getrandbits(8) for _ in range(n)) for n in (46, 100, 512, 1000, 1472)]
GSO_PAYLOAD = bytes(random.getrandbits(8) for _ in range(20000))
MSS = 1448

def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s

def ip4(proto, plen, ident):
    h = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + plen, ident, 0x4000, 64, proto, 0,
                    socket.inet_aton("198.18.3.1"), socket.inet_aton("198.18.3.2"))
    return h[:10] + struct.pack("!H", 0xFFFF - csum(h)) + h[12:]

def udp_frame(i, payload):
    u = struct.pack("!HHHH", 40000 + i, 9, 8 + len(payload), 0) + payload
    return ip4(17, len(u), i) + u

def mac_header(dst, src):
    return dst + src + struct.pack("!HH", 0x8100, TCI) + b"\x08\x00"

def send(ifname, dst):
    dst = bytes.fromhex(dst.replace(":", ""))
    src = bytes.fromhex(open("/sys/class/net/%s/address" % ifname).read().strip().replace(":", ""))
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
    s.setsockopt(SOL_PACKET, PACKET_VNET_HDR, 1)
    s.bind((ifname, 0))
    none = struct.pack("=BBHHHH", 0, 0, 0, 0, 0, 0)
    for i, p in enumerate(PLAIN):
        s.send(none + mac_header(dst, src) + udp_frame(i, p))
    # TCP GSO super-frame, checksum left to the stack: pseudo-header sum in the field
    # (CHECKSUM_PARTIAL, virtio 1.1 §5.1.6.2).
    plen = 20 + len(GSO_PAYLOAD)
    pseudo = socket.inet_aton("198.18.3.1") + socket.inet_aton("198.18.3.2") + struct.pack("!BBH", 0, 6, plen)
    tcp = struct.pack("!HHIIBBHHH", 40100, 9, 1000, 0, 5 << 4, 0x18, 65535, csum(pseudo), 0)
    l2 = 18
    vnet = struct.pack("=BBHHHH", 1, 1, l2 + 40, MSS, l2 + 20, 16)
    s.send(vnet + mac_header(dst, src) + ip4(6, plen, 999) + tcp + GSO_PAYLOAD)

def recv(ifname, secs):
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.setsockopt(SOL_PACKET, PACKET_AUXDATA, 1)
    s.bind((ifname, 0))
    s.settimeout(0.2)
    open(sys.argv[4], "w").close()          # ready
    want = {udp_frame(i, p) for i, p in enumerate(PLAIN)}
    seg, plain_ok, bad = {}, 0, 0
    end = time.time() + secs
    while time.time() < end and (want or sum(map(len, seg.values())) < len(GSO_PAYLOAD)):
        try:
            data, anc, _, _ = s.recvmsg(70000, socket.CMSG_SPACE(32))
        except socket.timeout:
            continue
        tci = None
        for lvl, typ, b in anc:
            if lvl == SOL_PACKET and typ == PACKET_AUXDATA:
                st, _, _, _, _, t, _ = struct.unpack("=IIIHHHH", b[:20])
                if st & (1 << 4):
                    tci = t
        if len(data) < 34 or data[12:14] != b"\x08\x00" or data[26:30] != socket.inet_aton("198.18.3.1"):
            continue
        if tci != TCI:
            print("frame without tag %r" % tci); bad += 1; continue
        ip = data[14:]
        if ip[9] == 17 and ip in want:
            want.discard(ip); plain_ok += 1
        elif ip[9] == 6:
            ihl = 20
            tot = struct.unpack("!H", ip[2:4])[0]
            t = ip[ihl:tot]
            pseudo = ip[12:20] + struct.pack("!BBH", 0, 6, len(t))
            if csum(pseudo + t) != 0xFFFF or csum(ip[:20]) != 0xFFFF:
                print("bad checksum in segment at seq %d" % struct.unpack("!I", t[4:8])); bad += 1
            seg[struct.unpack("!I", t[4:8])[0]] = t[20:]
        else:
            print("unexpected or altered frame"); bad += 1
    got = b"".join(seg[k] for k in sorted(seg))
    print("plain %d/%d, tcp segments %d, %d payload bytes, bad %d" % (plain_ok, len(PLAIN), len(seg), len(got), bad))
    ok = plain_ok == len(PLAIN) and got == GSO_PAYLOAD and bad == 0 and len(seg) > 1
    sys.exit(0 if ok else 1)

if sys.argv[1] == "send":
    send(sys.argv[2], sys.argv[3])
else:
    recv(sys.argv[2], float(sys.argv[3]))
PYEOF
}

test_vlan() {
    offloads on
    # After the bridge the super-frame has to be segmented and checksummed in software.
    in_m ethtool -K m1 tso off gso off tx off >/dev/null 2>&1
    in_s ethtool -K s0 gro off >/dev/null 2>&1
    write_vlan_py
    start_bridge || return 1
    rm -f "$WORK/vlan.ready"
    in_s timeout 20 python3 "$WORK/vlan.py" recv s0 10 "$WORK/vlan.ready" &
    local rx=$!
    for _ in $(seq 50); do [ -e "$WORK/vlan.ready" ] && break; sleep 0.1; done
    in_c timeout 10 python3 "$WORK/vlan.py" send c0 "$(in_s cat /sys/class/net/s0/address)" ||
        echo "send failed"
    wait $rx
    local rc=$?
    stop_bridge
    offloads on
    return $rc
}

bridge_topology || { echo "FAIL: cannot build the namespaces"; exit 1; }
mkdir -p "$WORK/www"
head -c "$((SIZE_MB * 1024 * 1024))" /dev/urandom >"$WORK/www/blob"
sha256sum "$WORK/www/blob" >"$WORK/blob.sha256"

# Probe: can an AF_PACKET ring be opened here at all?
if ! bridge_probe m0 lo; then
    skip "AF_PACKET rings unavailable: $(head -1 "$WORK/probe.log")"
fi

fails=0
for t in ${*:-$ALL_TESTS}; do
    # Not in a subshell: the trap must still see BRIDGE_PID/SRV_PID if a case fails.
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
