# Shared by the back-end tests of tools/mmtls-bridge (test_afpacket.sh, test_xdp.sh,
# test_dpdk.sh): three namespaces, the bridge in the middle one as a bump in the wire.
#
#   ns client            ns mbox (no addresses)                              ns server
#   c0 198.18.3.1 ====== m0  <-- mmtls-bridge m0 m1 -->  m1 ====== s0 198.18.3.2
#
# Source it after setting TAG (namespace and work directory prefix); it sets NS_C, NS_M, NS_S,
# WORK, BRIDGE_PID and SRV_PID (the server process: killed at exit) and installs the exit
# trap.  bridge_require TOOL... skips (exit 77) without root or a tool.
NS_C=${TAG}c
NS_M=${TAG}m
NS_S=${TAG}s
WORK=$(mktemp -d /tmp/${TAG}.XXXXXX)
BRIDGE_PID=
SRV_PID=

skip() { echo "SKIP: $*"; exit 77; }
log() { echo "# $*"; }

bridge_require() {
    [ "$(id -u)" = 0 ] || skip "needs root (network namespaces)"
    for t in "$@"; do
        command -v "$t" >/dev/null || skip "$t not installed"
    done
}

cleanup() {
    [ -n "$BRIDGE_PID" ] && kill "$BRIDGE_PID" 2>/dev/null
    [ -n "$SRV_PID" ] && kill "$SRV_PID" 2>/dev/null
    wait 2>/dev/null
    for ns in $NS_C $NS_M $NS_S; do
        ip netns del "$ns" 2>/dev/null
    done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

in_c() { ip netns exec "$NS_C" "$@"; }
in_m() { ip netns exec "$NS_M" "$@"; }
in_s() { ip netns exec "$NS_S" "$@"; }

# bridge_probe ARGS...: starts "$BRIDGE" ARGS in the middle namespace, waits up to 30 s for it
# to report its ports ("<->") or to exit, then stops it; true when it reported them.  Log in
# $WORK/probe.log.  (A fixed short timeout turned a slow start on a loaded machine into a skip.)
bridge_probe() {
    local pid up=1
    ip netns exec "$NS_M" "$BRIDGE" "$@" 2>"$WORK/probe.log" &
    pid=$!
    for _ in $(seq 300); do
        grep -q '<->' "$WORK/probe.log" && { up=0; break; }
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -INT "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    grep -q '<->' "$WORK/probe.log" && up=0
    return $up
}

# The namespaces and the two veth pairs, addresses on the end hosts only.
bridge_topology() {
    ip netns add "$NS_C" && ip netns add "$NS_M" && ip netns add "$NS_S" || return 1
    ip link add c0 netns "$NS_C" type veth peer name m0 netns "$NS_M" || return 1
    ip link add m1 netns "$NS_M" type veth peer name s0 netns "$NS_S" || return 1
    # The bump in the wire speaks no IP of its own (no IPv6 ND/MLD either).
    in_m sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
    in_m sysctl -qw net.ipv6.conf.m0.disable_ipv6=1 net.ipv6.conf.m1.disable_ipv6=1
    for ns in $NS_C $NS_M $NS_S; do ip -n "$ns" link set lo up; done
    ip -n "$NS_M" link set m0 up && ip -n "$NS_M" link set m1 up || return 1
    ip -n "$NS_C" addr add 198.18.3.1/24 dev c0 && ip -n "$NS_C" link set c0 up || return 1
    ip -n "$NS_S" addr add 198.18.3.2/24 dev s0 && ip -n "$NS_S" link set s0 up || return 1
}

# mtu N: the MTU of the four veth ends.
mtu() {
    ip -n "$NS_C" link set c0 mtu "$1" && ip -n "$NS_M" link set m0 mtu "$1" &&
        ip -n "$NS_M" link set m1 mtu "$1" && ip -n "$NS_S" link set s0 mtu "$1"
}
