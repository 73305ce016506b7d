#!/usr/bin/env bash
# Installs what building, testing and the demo need, from Debian 12's archive (idempotent).
set -euo pipefail
PKGS=(build-essential cmake pkg-config clang libclang-rt-14-dev clang-format
      libssl-dev openssl libpcap-dev libcmocka-dev libvectorscan-dev libpcre2-dev
      tcpdump gnutls-bin iproute2 ethtool python3 python3-scapy nginx curl wget
      chromium libnss3-tools)
PKGS+=(libnghttp2-dev zlib1g-dev tshark) # HTTP/2 and gzip bodies (src/http); pcap export tests
PKGS+=(python3-cryptography iptables gdb) # adversarial suite (TLS re-framing), floods, core dumps
PKGS+=(libxdp-dev libbpf-dev xdp-tools) # AF_XDP back end and the kernel fast path
PKGS+=(libdpdk-dev) # the DPDK back end (net_af_packet in CI, no hugepages)
missing=()
for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    echo "deps: installing ${missing[*]}"
    if [ "$(id -u)" != 0 ]; then
        echo "deps: run as root (or install these packages yourself)" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
