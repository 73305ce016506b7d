#!/usr/bin/env bash
# certs.sh DIR - a throw-away CA, a key server certificate (127.0.0.1) and a client certificate,
# all ECDSA P-256, for keybench.  Files: ca.pem ca.key server.pem server.key client.pem client.key
set -euo pipefail
D=$1
mkdir -p "$D"
cd "$D"
ossl() { openssl "$@" 2>/dev/null; }
ossl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem \
    -days 2 -subj "/CN=keybench CA" -addext basicConstraints=critical,CA:TRUE \
    -addext keyUsage=critical,keyCertSign,cRLSign
for who in server client; do
    ossl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout $who.key -out $who.csr \
        -subj "/CN=keybench-$who"
    if [ $who = server ]; then
        ext="subjectAltName=IP:127.0.0.1,DNS:localhost
extendedKeyUsage=serverAuth"
    else
        ext="extendedKeyUsage=clientAuth"
    fi
    printf '%s\nbasicConstraints=CA:FALSE\n' "$ext" >$who.ext
    ossl x509 -req -in $who.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
        -extfile $who.ext -out $who.pem
    rm -f $who.csr $who.ext
done
