#!/usr/bin/env bash
# Bare AF_PACKET forwarder floor: TCP throughput and CPU cost of a bump in the wire.
#
#   ns client c0 198.18.3.1 === m0 [ns mbox: forwarder] m1 === s0 198.18.3.2 ns server
#
# Modes, run in ROUNDS interleaved rounds (medians reported):
#   kbridge    Linux bridge in mbox (ip link add br0 type bridge), offloads at defaults: baseline
#   vnet       mmtls-bridge with PACKET_VNET_HDR, offloads at defaults (GSO/GRO super-frames)
#   vnet-qbyp  same with PACKET_QDISC_BYPASS on both ports
#   novnet     mmtls-bridge --no-vnet, offloads (tso gso gro tx-csum) off on all four veth ends
# Load: iperf3 -R (server -> client, one TCP stream) for SECS seconds.
# CPU: the forwarder process (utime+stime from /proc/PID/stat; not available for the kernel
# bridge, whose work is softirq time) and the whole machine (non-idle jiffies from /proc/stat,
# which includes iperf3 at both ends and the veth softirqs), both as CPU seconds per GB moved.
#
# Usage (root): MMTLS_BUILDDIR=build bash bench/afpacket/run.sh   [ROUNDS=3 SECS=10 OUT=file.md]
set -u
SRCDIR=$(cd "$(dirname "$0")/../.." && pwd)
B=${MMTLS_BUILDDIR:-$SRCDIR/build}
BRIDGE=${MMTLS_BRIDGE:-$B/mmtls-bridge}
ROUNDS=${ROUNDS:-3}
SECS=${SECS:-10}
MODES=${MODES:-"kbridge vnet vnet-qbyp novnet"}
OUT=${OUT:-$SRCDIR/bench/afpacket/results-$(date +%Y-%m-%d).md}
TAG=mmafpb$$
NS_C=${TAG}c NS_M=${TAG}m NS_S=${TAG}s
WORK=$(mktemp -d /tmp/${TAG}.XXXXXX)
BRIDGE_PID= IPERF_PID=

[ "$(id -u)" = 0 ] || { echo "needs root"; exit 77; }
for t in ip iperf3 ethtool python3 timeout; do
    command -v $t >/dev/null || { echo "$t not installed (apt-get install -y iperf3)"; exit 77; }
done
if [ ! -x "$BRIDGE" ]; then
    # Same line as tests/integration/test_afpacket.sh (until tools/mmtls-bridge is in CMake).
    gcc -std=c11 -D_GNU_SOURCE -O2 -g -I"$SRCDIR/include" -I"$SRCDIR/src" \
        "$SRCDIR/tools/mmtls-bridge/bridge.c" "$B/libmmtls_io.a" "$B/libmmtls_util.a" -lcrypto \
        -o "$B/mmtls-bridge" || exit 1
    BRIDGE=$B/mmtls-bridge
fi

cleanup() {
    [ -n "$BRIDGE_PID" ] && kill "$BRIDGE_PID" 2>/dev/null
    [ -n "$IPERF_PID" ] && kill "$IPERF_PID" 2>/dev/null
    wait 2>/dev/null
    for ns in $NS_C $NS_M $NS_S; do ip netns del "$ns" 2>/dev/null; done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

in_c() { ip netns exec "$NS_C" "$@"; }
in_m() { ip netns exec "$NS_M" "$@"; }
in_s() { ip netns exec "$NS_S" "$@"; }

ip netns add "$NS_C" && ip netns add "$NS_M" && ip netns add "$NS_S" || exit 1
ip link add c0 netns "$NS_C" type veth peer name m0 netns "$NS_M" || exit 1
ip link add m1 netns "$NS_M" type veth peer name s0 netns "$NS_S" || exit 1
in_m sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.m0.disable_ipv6=1 \
    net.ipv6.conf.m1.disable_ipv6=1
for ns in $NS_C $NS_M $NS_S; do ip -n "$ns" link set lo up; done
ip -n "$NS_M" link set m0 up; ip -n "$NS_M" link set m1 up
ip -n "$NS_C" addr add 198.18.3.1/24 dev c0; ip -n "$NS_C" link set c0 up
ip -n "$NS_S" addr add 198.18.3.2/24 dev s0; ip -n "$NS_S" link set s0 up

offloads() {
    in_c ethtool -K c0 tso "$1" gso "$1" gro "$1" tx "$1" >/dev/null 2>&1
    in_m ethtool -K m0 tso "$1" gso "$1" gro "$1" tx "$1" >/dev/null 2>&1
    in_m ethtool -K m1 tso "$1" gso "$1" gro "$1" tx "$1" >/dev/null 2>&1
    in_s ethtool -K s0 tso "$1" gso "$1" gro "$1" tx "$1" >/dev/null 2>&1
}

timeout 3600 ip netns exec "$NS_S" iperf3 -s -B 198.18.3.2 >/dev/null 2>&1 &
IPERF_PID=$!
sleep 0.5

# busy jiffies of the whole machine
machine_busy() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat; }
proc_cpu() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }
HZ=$(getconf CLK_TCK)

start_fwd() {
    case $1 in
    kbridge)
        offloads on
        in_m ip link add br0 type bridge && in_m ip link set m0 master br0 &&
            in_m ip link set m1 master br0 && in_m ip link set br0 up
        ;;
    vnet | vnet-qbyp | novnet)
        local args=
        [ "$1" = novnet ] && { offloads off; args=--no-vnet; }
        [ "$1" = novnet ] || offloads on
        [ "$1" = vnet-qbyp ] && args=--qdisc-bypass
        : >"$WORK/bridge.log"
        timeout -s INT 600 ip netns exec "$NS_M" "$BRIDGE" m0 m1 $args 2>"$WORK/bridge.log" &
        BRIDGE_PID=$!
        for _ in $(seq 50); do grep -q '<->' "$WORK/bridge.log" && break; sleep 0.1; done
        ;;
    esac
    # the forwarder's own pid (timeout -> ip netns exec execs the bridge)
    FWD_PID=
    [ -n "$BRIDGE_PID" ] && FWD_PID=$(pgrep -P "$BRIDGE_PID" | head -1)
    # wait for the path
    for _ in $(seq 50); do in_c ping -c1 -W1 198.18.3.2 >/dev/null 2>&1 && break; sleep 0.2; done
}

stop_fwd() {
    case $1 in
    kbridge) in_m ip link del br0 ;;
    *)
        kill -INT "$BRIDGE_PID" 2>/dev/null; wait "$BRIDGE_PID" 2>/dev/null; BRIDGE_PID=
        grep -q 'drops 0' "$WORK/bridge.log" || sed 's/^/    /' "$WORK/bridge.log" >&2
        ;;
    esac
}

: >"$WORK/raw"
for r in $(seq "$ROUNDS"); do
    for m in $MODES; do
        start_fwd "$m"
        f0=$( [ -n "$FWD_PID" ] && proc_cpu "$FWD_PID" || echo 0 )
        c0=$(machine_busy)
        in_c timeout $((SECS + 30)) iperf3 -c 198.18.3.2 -R -t "$SECS" -J >"$WORK/ip.json" 2>&1
        c1=$(machine_busy)
        f1=$( [ -n "$FWD_PID" ] && proc_cpu "$FWD_PID" || echo 0 )
        stop_fwd "$m"
        python3 - "$WORK/ip.json" "$m" "$r" "$((c1 - c0))" "$((f1 - f0))" "$HZ" "${FWD_PID:-}" \
            >>"$WORK/raw" <<'PY'
import json, sys
f, mode, rnd, mach, fwd, hz, pid = sys.argv[1:8]
try:
    j = json.load(open(f))
    rx = j["end"]["sum_received"]
    gbit, gb = rx["bits_per_second"] / 1e9, rx["bytes"] / 1e9
    retr = j["end"]["sum_sent"].get("retransmits", -1)
except Exception as e:
    print("%s %s ERR %s" % (mode, rnd, e)); sys.exit(0)
hz = float(hz)
fwd_s = "%.3f" % (int(fwd) / hz / gb) if pid else "-"
print("%s %s %.2f %.3f %s %d" % (mode, rnd, gbit, int(mach) / hz / gb, fwd_s, retr))
PY
        tail -1 "$WORK/raw"
    done
done

python3 - "$WORK/raw" "$OUT" "$ROUNDS" "$SECS" "$(uname -r)" "$(nproc)" <<'PY'
import statistics, sys, time
raw, out, rounds, secs, kern, ncpu = sys.argv[1:7]
rows = {}
for line in open(raw):
    p = line.split()
    if len(p) < 6 or p[2] == "ERR":
        continue
    rows.setdefault(p[0], []).append(p)
desc = {
    "kbridge": "Linux bridge (br0) in mbox, offloads on (baseline)",
    "vnet": "mmtls-bridge, PACKET_VNET_HDR, offloads on",
    "vnet-qbyp": "mmtls-bridge, PACKET_VNET_HDR + PACKET_QDISC_BYPASS, offloads on",
    "novnet": "mmtls-bridge --no-vnet, offloads off (tso gso gro tx) on all four ends",
}
med = lambda xs: statistics.median(xs) if xs else float("nan")
with open(out, "w") as o:
    o.write("# AF_PACKET forwarder floor — %s\n\n" % time.strftime("%Y-%m-%d"))
    o.write("bench/afpacket/run.sh: client ns ↔ veth ↔ mbox ns (forwarder) ↔ veth ↔ server ns, "
            "one iperf3 TCP stream server→client (-R), %s s per run, %s interleaved rounds, "
            "medians (min–max). Kernel %s, %s CPUs shared with other jobs (noisy).\n\n"
            % (secs, rounds, kern, ncpu))
    o.write("CPU s/GB: CPU seconds per GB received. *machine* = all non-idle CPU time of the "
            "machine during the run (/proc/stat; includes both iperf3 ends and all softirq work), "
            "the only figure comparable with the kernel bridge; *forwarder* = the mmtls-bridge "
            "process alone (/proc/PID/stat utime+stime).\n\n")
    o.write("| mode | Gbit/s | machine CPU s/GB | forwarder CPU s/GB | TCP retransmits |\n")
    o.write("|---|---|---|---|---|\n")
    for m in ["kbridge", "vnet", "vnet-qbyp", "novnet"]:
        if m not in rows:
            continue
        r = rows[m]
        g = [float(x[2]) for x in r]
        mc = [float(x[3]) for x in r]
        fw = [float(x[4]) for x in r if x[4] != "-"]
        rt = [int(x[5]) for x in r]
        o.write("| %s | %.2f (%.2f–%.2f) | %.2f | %s | %d |\n" % (
            desc[m], med(g), min(g), max(g), med(mc),
            "%.2f" % med(fw) if fw else "n/a (softirq)", int(med(rt))))
    o.write("\nRaw (mode round Gbit/s machine-s/GB forwarder-s/GB retransmits):\n\n```\n")
    o.write(open(raw).read())
    o.write("```\n")
print("wrote", out)
PY
