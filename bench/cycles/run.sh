#!/usr/bin/env bash
# Cycles per packet and per byte (issue 8; docs/BENCHMARKS.md "Cycles per packet and per byte").
#
#   client ns: veth0 198.18.4.1 -- [mbox ns: c0 | middle | s0] -- veth0 198.18.4.2 :server ns
#              d0    198.18.7.1 ------------ direct veth pair ---------- d0 198.18.7.2
#
# One run, ROUNDS interleaved rounds (default 3, medians): openssl speed / EVP decryption /
# mmtlsd -r per byte; forwarding-only cost per frame and per byte through the Linux bridge,
# mmtls-bridge (AF_PACKET, AF_XDP copy mode) and mmtlsd (AF_PACKET, AF_XDP, --io fast), each
# minus the direct link in the same round; TLS 1 MB objects inspected to 64 KB (bridge, mmtlsd
# AF_PACKET, mmtlsd --io fast); mmtlsd --workers 1|2; then perf profiles and callgrind counts.
# See bench/cycles/bench.py for what is measured and how CPU time is accounted.
#
# Usage (root): bash bench/cycles/run.sh
#   ROUNDS=3 FWD_MB=2048 FWD_MB_B=512 TLS_SECS=4 SCALE_CONNS=32 CAP_MB=256 PREFIX=b8
#   PARTS="offline fwd tls64k scale profile callgrind" NO_BUILD=1 KEEP=1
#   CAP_BIG=DIR CAP_SMALL=DIR (captures from bench/offline/make-capture.sh, made if not given)
#   OUT=bench/cycles/results-DATE.json PLOT=docs/img/cycles.png
# Writes OUT (.json), OUT with .md (tables, model, profiles), the plot.  About 10 minutes.
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
export MMTLS_BUILDDIR=${MMTLS_BUILDDIR:-$ROOT/build-cycles}
DATE=$(date +%Y-%m-%d)
export OUT=${OUT:-$ROOT/bench/cycles/results-$DATE.json}
PLOT=${PLOT:-$ROOT/docs/img/cycles.png}
export PREFIX=${PREFIX:-b8}
CAP_MB=${CAP_MB:-256}
export FWD_MB=${FWD_MB:-2048}
[ "$(id -u)" = 0 ] || { echo "needs root"; exit 77; }
for c in ip nginx openssl taskset curl ethtool h2load perf valgrind tcpdump gcc; do
    command -v $c >/dev/null || { echo "no $c (nghttp2-client linux-perf valgrind ...)"; exit 77; }
done
/usr/bin/python3 -c 'import matplotlib' 2>/dev/null || apt-get install -y python3-matplotlib
if [ -z "${NO_BUILD:-}" ]; then
    cmake -S "$ROOT" -B "$MMTLS_BUILDDIR" -DCMAKE_BUILD_TYPE=Release >/dev/null
    cmake --build "$MMTLS_BUILDDIR" -j2 --target mmtlsd mmtls-bridge mmtls-preload >/dev/null
fi
gcc -std=c11 -D_POSIX_C_SOURCE=200809L -O2 -g -Wall -Wextra -Werror \
    "$ROOT/bench/cycles/evp_open.c" -lcrypto -o "$MMTLS_BUILDDIR/evp_open"
export EVP_OPEN=$MMTLS_BUILDDIR/evp_open

export WORK=$(mktemp -d /tmp/mmtls-cycles.XXXXXX)
export SHMDIR=$(mktemp -d /dev/shm/mmtls-cycles.XXXXXX)
chmod 755 "$WORK" "$SHMDIR"
cleanup() {
    bash "$ROOT/scripts/testbed.sh" down "$PREFIX"
    rm -rf "$SHMDIR"
    [ -n "${KEEP:-}" ] && echo "work directory kept: $WORK" || rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# captures (TLS 1.3, TLS_AES_256_GCM_SHA384, 16 KB records) unless given
MMTLSD=$MMTLS_BUILDDIR/tools/mmtlsd/mmtlsd
if [ -z "${CAP_BIG:-}" ]; then
    CAP_BIG=$SHMDIR/cap-big
    MMTLSD=$MMTLSD bash "$ROOT/bench/offline/make-capture.sh" "$CAP_BIG" "$CAP_MB" >"$WORK/cap-big.log"
fi
if [ -z "${CAP_SMALL:-}" ]; then
    CAP_SMALL=$SHMDIR/cap-small
    CONNS=4 MMTLSD=$MMTLSD bash "$ROOT/bench/offline/make-capture.sh" "$CAP_SMALL" 32 \
        >"$WORK/cap-small.log"
fi
export CAP_BIG CAP_SMALL

head -c $((FWD_MB << 20)) /dev/urandom >"$SHMDIR/fwd.bin"
head -c 1048576 /dev/urandom >"$SHMDIR/1m.bin"
chmod 644 "$SHMDIR"/*.bin

bash "$ROOT/scripts/testbed.sh" up "$PREFIX"
# the direct link: the same end hosts, no middle (the reference every middle is measured against)
ip link add d0 netns "$PREFIX-client" type veth peer name d0 netns "$PREFIX-server"
ip -n "$PREFIX-client" addr add 198.18.7.1/24 dev d0
ip -n "$PREFIX-server" addr add 198.18.7.2/24 dev d0
ip -n "$PREFIX-client" link set d0 up
ip -n "$PREFIX-server" link set d0 up
for ns in client mbox server; do
    ip netns exec "$PREFIX-$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 \
        net.core.somaxconn=4096 net.ipv4.tcp_max_syn_backlog=4096
done
bash "$ROOT/scripts/mkcerts.sh" "$WORK/pki" >/dev/null
ulimit -n "$(ulimit -Hn)"
/usr/bin/python3 "$ROOT/bench/cycles/bench.py"
[ -n "${KEEP:-}" ] && cp "$WORK"/perf-*.txt "$(dirname "$OUT")/" 2>/dev/null || true
/usr/bin/python3 "$ROOT/bench/cycles/report.py" "$OUT" "${OUT%.json}.md" "$PLOT"
