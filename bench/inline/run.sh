#!/usr/bin/env bash
# Inline middlebox benchmark (docs/BENCHMARKS.md, "Inline middlebox"):
#   client (h2load, CPU 0) -- middle (CPU 1) -- server (nginx, CPU 0) on scripts/testbed.sh
# Middles, interleaved in every round: e2e (Linux bridge br0 in the mbox namespace), split
# (nginx TLS reverse proxy in the mbox, keep-alive upstream), mmtls64k (mmtlsd -i c0:s0
# --inspect-depth 65536), mmtlsall (mmtlsd decrypting everything), bare (mmtls-bridge
# --frame-ring c0 s0, the AF_PACKET data plane with no inspection, on TPACKET_V2 frame rings as
# mmtlsd's default).  More on request (MIDDLES): mmtls64kv3 and barev3 (TPACKET_V3 blocks:
# mmtlsd --afp-ring blocks, mmtls-bridge's default), e2erps, mmtlsfast64k, mmtlsfastw64k, and
# rulesNk / depthNk.
# Workloads: persistent HTTP/1.1 connections (h2load --h1 -c 8) fetching 1k..4m objects, and
# ephemeral connections (a new TLS connection per 1 KB request: the server answers
# "Connection: close", h2load reconnects).
#
# Usage (root): bash bench/inline/run.sh     [ROUNDS=3 SECS=3 NO_BUILD=1 OUT=... PLOTDIR=...]
# The rules benchmark (issue 6, ~4 minutes):
#   MIDDLES="split depth16k rules16k depth64k rules64k depth128k rules128k" SIZES=1m EPH=0 \
#   OUT=bench/inline/results-DATE-rules.json bash bench/inline/run.sh
# The kernel fast path (issue 8, ~2 minutes): mmtlsfast64k is mmtlsd --io fast --inspect-depth:
#   MIDDLES="e2e mmtlsfast64k mmtls64k" SIZES=1m EPH=0 \
#   OUT=bench/inline/results-DATE-fast.json bash bench/inline/run.sh
# Writes bench/inline/results-DATE.json and .md, docs/img/inline-*.png.  About 10 minutes.
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
export MMTLS_BUILDDIR=${MMTLS_BUILDDIR:-$ROOT/build-inbench}
DATE=$(date +%Y-%m-%d)
export OUT=${OUT:-$ROOT/bench/inline/results-$DATE.json}
PLOTDIR=${PLOTDIR:-$ROOT/docs/img}
[ "$(id -u)" = 0 ] || { echo "needs root"; exit 77; }
for c in ip nginx openssl taskset; do command -v $c >/dev/null || { echo "no $c"; exit 77; }; done
command -v h2load >/dev/null || apt-get install -y nghttp2-client
/usr/bin/python3 -c 'import matplotlib' 2>/dev/null || apt-get install -y python3-matplotlib
if [ -z "${NO_BUILD:-}" ]; then
    cmake -S "$ROOT" -B "$MMTLS_BUILDDIR" -DCMAKE_BUILD_TYPE=Release >/dev/null
    cmake --build "$MMTLS_BUILDDIR" -j2 --target mmtlsd mmtls-bridge mmtls-preload >/dev/null
fi

export PREFIX=mmtls-ib$$
export WORK=$(mktemp -d /tmp/mmtls-inbench.XXXXXX)
chmod 755 "$WORK"
cleanup() {
    bash "$ROOT/scripts/testbed.sh" down "$PREFIX"
    [ -n "${KEEP:-}" ] || rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
bash "$ROOT/scripts/testbed.sh" up "$PREFIX"
for ns in client mbox server; do
    ip netns exec "$PREFIX-$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 \
        net.core.somaxconn=4096 net.ipv4.tcp_max_syn_backlog=4096 \
        net.ipv4.ip_local_port_range="10000 65000" net.ipv4.tcp_tw_reuse=1
done
bash "$ROOT/scripts/mkcerts.sh" "$WORK/pki" >/dev/null
# the split proxy's own certificate for server.test, signed by the same CA
(
    cd "$WORK/pki"
    printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n%s\n%s\n' \
        'extendedKeyUsage=serverAuth' 'subjectAltName=DNS:server.test' >proxy.ext
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out proxy.key 2>/dev/null
    openssl req -new -key proxy.key -subj "/C=XX/O=mmtls split proxy/CN=server.test" \
        -out proxy.csr 2>/dev/null
    openssl x509 -req -in proxy.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 30 \
        -sha256 -extfile proxy.ext -out proxy.crt 2>/dev/null
)
mkdir -p "$WORK/www"
for s in 1k:1024 16k:16384 64k:65536 256k:262144 1m:1048576 4m:4194304; do
    head -c "${s#*:}" /dev/urandom >"$WORK/www/${s%%:*}.bin"
done
ulimit -n "$(ulimit -Hn)"
/usr/bin/python3 "$ROOT/bench/inline/bench.py"
case "${MIDDLES:-}" in
*rules*) # the rules benchmark (issue 6): its own report, with the rule load summary
    "$MMTLS_BUILDDIR/tools/mmtlsd/mmtlsd" --rules "${RULES:-$ROOT/../shared/data/snort3-community-rules/snort3-community.rules}" \
        --test-rules >"$WORK/test-rules.out" 2>&1 || true
    /usr/bin/python3 "$ROOT/bench/inline/rules_report.py" "$OUT" "${OUT%.json}.md" "$WORK/test-rules.out"
    ;;
*) /usr/bin/python3 "$ROOT/bench/inline/report.py" "$OUT" "${OUT%.json}.md" "$PLOTDIR" ;;
esac
