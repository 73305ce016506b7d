#!/usr/bin/env bash
# gen-capture.sh OUTDIR [tls13|tls12] - make a small real TLS capture for demos and manual tests.
#
# Runs openssl s_server and s_client in two throw-away network namespaces joined by a veth
# pair (198.18.0.1 -> 198.18.0.2:4433), captures the exchange with tcpdump and writes to OUTDIR:
#   capture.pcap    the packets (Ethernet link type)
#   keys.log        the client's NSS key log (SSLKEYLOGFILE format)
#   c2s.txt         the application data the client sent (an HTTP-like request)
#   s2c.txt         the application data the server sent (an HTTP-like response)
# then, for example:
#   mmtlsd -r OUTDIR/capture.pcap --keylog OUTDIR/keys.log -l /tmp/out --dump-plaintext /tmp/out
# Needs root, iproute2, tcpdump and openssl.  The namespaces are removed on exit.
set -u
if [ $# -lt 1 ] || [ $# -gt 2 ]; then
    echo "usage: $0 OUTDIR [tls13|tls12]" >&2
    exit 2
fi
outdir=$1
proto=${2:-tls13}
here=$(cd "$(dirname "$0")" && pwd)
export MMTLS_SRCDIR=${MMTLS_SRCDIR:-$(dirname "$here")}
# The test helpers do the namespace, capture and peer plumbing (and the cleanup trap).
# shellcheck source=../tests/pcap/lib.sh
. "$MMTLS_SRCDIR/tests/pcap/lib.sh"
need_root_netns
pki
net_setup

case $proto in
tls13) opts=(-tls1_3 -ciphersuites TLS_AES_128_GCM_SHA256) ;;
tls12) opts=(-tls1_2 -cipher ECDHE-RSA-AES128-GCM-SHA256) ;;
*)
    echo "$0: unknown protocol $proto (tls13 or tls12)" >&2
    exit 2
    ;;
esac

new_case demo
{
    printf 'GET /demo HTTP/1.1\r\nHost: server.test\r\nUser-Agent: gen-capture\r\n'
    printf 'X-Secret: this header travels encrypted\r\n\r\n'
} >"$d/cp1"
{
    printf 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n'
    for i in $(seq 1 40); do printf 'line %02d of a response that only the endpoints can read\n' "$i"; done
} >"$d/sp1"
cap_start "$d/cap.pcap" || exit 1
ossl_srv "$d" 1 rsa "${opts[@]}" -alpn http/1.1 || exit 1
ossl_cli "$d" 1 -- "${opts[@]}" -alpn http/1.1 -nocommands
srv_wait
cap_stop
check_peers "$d" 1 || exit 1
mkdir -p "$outdir"
cp "$d/cap.pcap" "$outdir/capture.pcap"
cp "$d/keys.log" "$outdir/keys.log"
cp "$d/cp1" "$outdir/c2s.txt"
cp "$d/sp1" "$outdir/s2c.txt"
echo "wrote $outdir/capture.pcap ($(fsize "$outdir/capture.pcap") bytes), keys.log, c2s.txt, s2c.txt"
