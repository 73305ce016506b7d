#!/usr/bin/env bash
# mkcerts.sh OUTDIR [MBOX_IP] - make a throw-away test PKI with the openssl CLI only:
#   ca.key/ca.crt          self-signed test CA (RSA-2048)
#   rsa.key/rsa.crt        RSA-2048 server certificate, SAN DNS:server.test, signed by the CA
#   ecdsa.key/ecdsa.crt    ECDSA P-256 server certificate, SAN DNS:server.test, signed by the CA
#   client.key/client.crt  a key channel client certificate (clientAuth), CN demo-client
#   mbox.key/mbox.crt      the middlebox key server's certificate, SAN IP:MBOX_IP (default
#                          198.18.6.2, the testbed's key server address)
# Idempotent: files that already exist (and verify against the CA) are kept.
# These keys protect nothing: they exist only to make test captures.
set -euo pipefail

if [ $# -lt 1 ] || [ $# -gt 2 ]; then
    echo "usage: $0 OUTDIR [MBOX_IP]" >&2
    exit 2
fi
out=$1
mbox_ip=${2:-198.18.6.2}
mkdir -p "$out"
cd "$out"

# The CA's subject and the servers' subjects are what the tests expect in eve.json
# ("subject" / "issuerdn"); keep them in sync with tests/pcap/lib.sh.
CA_SUBJ="/C=XX/O=mmtls test/CN=mmtls test CA"
SRV_SUBJ_RSA="/C=XX/O=mmtls test/CN=server.test"
SRV_SUBJ_EC="/C=XX/O=mmtls test ecdsa/CN=server.test"

if [ ! -s ca.key ] || [ ! -s ca.crt ]; then
    rm -f ca.key ca.crt ca.srl
    openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 3650 \
        -subj "$CA_SUBJ" -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
fi

ext=$(mktemp)
trap 'rm -f "$ext" server.csr' EXIT
cat >"$ext" <<'EOF'
basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=DNS:server.test
EOF

# mk NAME SUBJECT KEYGEN-ARGS...
mk() {
    local name=$1 subj=$2
    shift 2
    if [ -s "$name.key" ] && [ -s "$name.crt" ] &&
        openssl verify -CAfile ca.crt "$name.crt" >/dev/null 2>&1; then
        return 0
    fi
    openssl genpkey "$@" -out "$name.key" 2>/dev/null
    openssl req -new -key "$name.key" -subj "$subj" -out server.csr 2>/dev/null
    openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial \
        -days 3650 -sha256 -extfile "$ext" -out "$name.crt" 2>/dev/null
    openssl verify -CAfile ca.crt "$name.crt" >/dev/null
}

mk rsa "$SRV_SUBJ_RSA" -algorithm RSA -pkeyopt rsa_keygen_bits:2048
mk ecdsa "$SRV_SUBJ_EC" -algorithm EC -pkeyopt ec_paramgen_curve:P-256
# key channel certificates: mkpeer NAME SUBJECT EXTENSIONS
mkpeer() {
    local name=$1 subj=$2 exts=$3
    [ -s "$name.key" ] && [ -s "$name.crt" ] && grep -q "$exts" "$name.ext" 2>/dev/null && return 0
    printf '%s\n' "$exts" | tr ';' '\n' >"$name.ext"
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$name.key" \
        -out "$name.csr" -subj "$subj" 2>/dev/null
    openssl x509 -req -in "$name.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 30 \
        -extfile "$name.ext" -out "$name.crt" 2>/dev/null
    rm -f "$name.csr"
}
mkpeer client "/CN=demo-client" "extendedKeyUsage=clientAuth"
mkpeer mbox "/CN=middlebox" "subjectAltName=IP:$mbox_ip;extendedKeyUsage=serverAuth"
chmod 600 ./*.key
echo "certificates in $(pwd): ca.crt rsa.crt/rsa.key ecdsa.crt/ecdsa.key"
