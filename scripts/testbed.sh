#!/usr/bin/env bash
# scripts/testbed.sh up|down|status [PREFIX]
#
# Three network namespaces joined by veth pairs, addresses only inside them (RFC 2544 range):
#
#   PREFIX-client  veth0 198.18.4.1/24 ---- c0 [PREFIX-mbox] s0 ---- veth0 198.18.4.2/24  PREFIX-server
#                  mgmt0 (no address)  ---- mgmt0 198.18.6.2/24   (key channel)
#
# The middlebox namespace has no address on c0/s0: mmtlsd -i c0:s0 bridges them (a bump in the
# wire).  Its key server listens on 198.18.6.2; the client reaches it over mgmt0 with its data
# address 198.18.4.1 as source, so keys pass the ownership check (docs/keyproto.md).
# Offloads (GSO/GRO/TSO) are left at the kernel defaults: mmtlsd uses PACKET_VNET_HDR.
# TB_QUEUES=N (default 1): the two data veth pairs get N RX and N TX queues (AF_XDP: one worker
# per queue; ethtool -L lowers the count later).
set -euo pipefail
CMD=${1:-}
P=${2:-mmtls-tb}
C=$P-client
M=$P-mbox
S=$P-server

up() {
    down 2>/dev/null || true
    ip netns add "$C"
    ip netns add "$M"
    ip netns add "$S"
    local q=${TB_QUEUES:-1}
    ip link add veth0 netns "$C" numtxqueues "$q" numrxqueues "$q" type veth \
        peer name c0 netns "$M" numtxqueues "$q" numrxqueues "$q"
    ip link add veth0 netns "$S" numtxqueues "$q" numrxqueues "$q" type veth \
        peer name s0 netns "$M" numtxqueues "$q" numrxqueues "$q"
    ip link add mgmt0 netns "$C" type veth peer name mgmt0 netns "$M"
    for ns in "$C" "$M" "$S"; do ip -n "$ns" link set lo up; done
    ip -n "$C" addr add 198.18.4.1/24 dev veth0
    ip -n "$S" addr add 198.18.4.2/24 dev veth0
    ip -n "$M" addr add 198.18.6.2/24 dev mgmt0
    for l in "$C:veth0" "$C:mgmt0" "$M:c0" "$M:s0" "$M:mgmt0" "$S:veth0"; do
        ip -n "${l%%:*}" link set "${l#*:}" up
    done
    # the key channel leaves the client with its data address as source
    ip -n "$C" route add 198.18.6.0/24 dev mgmt0 src 198.18.4.1
    ip -n "$M" route add 198.18.4.1/32 dev mgmt0
    echo "testbed $P up: $C (198.18.4.1) -- $M [c0|s0, key server 198.18.6.2] -- $S (198.18.4.2)"
}

down() {
    for ns in "$C" "$M" "$S"; do ip netns del "$ns" 2>/dev/null || true; done
}

case "$CMD" in
up) up ;;
down) down ;;
status) ip netns list | grep -E "^$P-" || echo "testbed $P is down" ;;
*)
    echo "usage: $0 up|down|status [PREFIX]" >&2
    exit 2
    ;;
esac
