#!/usr/bin/env bash
# The quick start's first command: the inline middlebox, live.
#
#   client (curl + LD_PRELOAD shim) -- mmtlsd -i c0:s0 (bump in the wire) -- nginx (TLS 1.3)
#
# Builds mmtls, sets up three network namespaces (scripts/testbed.sh), starts nginx and mmtlsd
# with its key server, then curl fetches a page and the EICAR test file over HTTPS, sharing its
# session keys through the preload shim.  The middlebox's live log shows the server name and the
# decrypted request lines; the EICAR download is blocked (both ends reset) by the demo rule.
# Tears everything down at the end.  (scripts/demo-offline.sh shows the offline mode.)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
bash scripts/deps.sh

echo "== building mmtls"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" --target mmtlsd mmtls-preload >/dev/null
MMTLSD=$ROOT/build/tools/mmtlsd/mmtlsd
SHIM=$ROOT/build/lib/keyshare/libmmtls-preload.so

P=mmtls-demo
W=$(mktemp -d /tmp/mmtls-demo.XXXXXX)
chmod 755 "$W"
MB= TAIL=
cleanup() {
    [ -n "$TAIL" ] && kill "$TAIL" 2>/dev/null
    [ -n "$MB" ] && kill -INT "$MB" 2>/dev/null && wait "$MB" 2>/dev/null
    [ -f "$W/nginx.pid" ] && kill "$(cat "$W/nginx.pid" 2>/dev/null)" 2>/dev/null
    bash "$ROOT/scripts/testbed.sh" down "$P"
}
trap cleanup EXIT

echo "== testbed: client 198.18.4.1 -- [middlebox: bridges c0 and s0] -- server 198.18.4.2"
bash scripts/testbed.sh up "$P" >/dev/null

echo "== certificates: a CA, the server, the middlebox's key server, one client"
bash scripts/mkcerts.sh "$W/pki" >/dev/null

mkdir -p "$W/www" "$W/nginx"
echo "<html><body><h1>Hello through an inspecting middlebox</h1></body></html>" >"$W/www/index.html"
cp "$ROOT/../shared/data/eicar.com" "$W/www/eicar.com" 2>/dev/null ||
    printf '%s' 'X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*' \
        >"$W/www/eicar.com"
cat >"$W/nginx.conf" <<CONF
daemon off; pid $W/nginx.pid; error_log $W/nginx/error.log; worker_processes 1;
events { worker_connections 64; }
http {
    access_log off;
    client_body_temp_path $W/nginx/b; proxy_temp_path $W/nginx/p; fastcgi_temp_path $W/nginx/f;
    uwsgi_temp_path $W/nginx/u; scgi_temp_path $W/nginx/s;
    server {
        listen 198.18.4.2:443 ssl; server_name server.test; root $W/www;
        ssl_certificate $W/pki/rsa.crt; ssl_certificate_key $W/pki/rsa.key;
        ssl_protocols TLSv1.3;
    }
}
CONF
ip netns exec "$P-server" nginx -c "$W/nginx.conf" -p "$W/nginx" 2>"$W/nginx.err" &

echo "== middlebox: mmtlsd -i c0:s0 --key-listen 198.18.6.2:4433 --block-eicar --log-http"
ip netns exec "$P-mbox" "$MMTLSD" -i c0:s0 --key-listen 198.18.6.2:4433 \
    --cert "$W/pki/mbox.crt" --key "$W/pki/mbox.key" --client-ca "$W/pki/ca.crt" \
    -l "$W/log" --block-eicar --log-http -v 2>"$W/mmtlsd.log" &
MB=$!
for _ in $(seq 50); do grep -q bridging "$W/mmtlsd.log" 2>/dev/null && break; sleep 0.1; done

echo "== the middlebox's live log ($W/log/eve.json):"
touch "$W/log/eve.json"
tail -n +1 -f "$W/log/eve.json" | python3 -u -c '
import json, sys
for line in sys.stdin:
    e = json.loads(line)
    t = e["event_type"]
    if t == "http":
        h = e["http"]
        print("   [mmtlsd] %s  %s %s%s  (decrypted request, SNI %s)" % (e["src_ip"], h["http_method"],
              h.get("hostname", ""), h["url"], e.get("tls", {}).get("sni", "-")))
    elif t == "alert":
        a = e["alert"]
        print("   [mmtlsd] ALERT %s: %s (sid %d) %s -> %s" % (a["action"].upper(), a["signature"],
              a["signature_id"], e["src_ip"], e["dest_ip"]))
    elif t == "tls":
        s = e["tls"]
        print("   [mmtlsd] session %s -> %s  SNI %s  %s %s  keys: %s%s" % (e["src_ip"],
              e["dest_ip"], s.get("sni", "-"), s.get("version", "?"), s.get("cipher_suite", "?"),
              s["key_status"], "  BLOCKED" if s["blocked"] else ""))
' &
TAIL=$!

KEYS=(env LD_PRELOAD="$SHIM" MMTLS_KEYSERVER=198.18.6.2:4433 MMTLS_CA="$W/pki/ca.crt"
    MMTLS_CERT="$W/pki/client.crt" MMTLS_KEY="$W/pki/client.key")
CURL=(timeout 20 curl -sS --http1.1 --resolve server.test:443:198.18.4.2 --cacert "$W/pki/ca.crt")

echo
echo "== client: curl https://server.test/index.html  (keys shared through the preload shim)"
ip netns exec "$P-client" "${KEYS[@]}" "${CURL[@]}" https://server.test/index.html
sleep 1
echo
echo "== client: curl https://server.test/eicar.com  (the demo rule blocks it)"
if ip netns exec "$P-client" "${KEYS[@]}" "${CURL[@]}" -o "$W/eicar.got" \
    https://server.test/eicar.com; then
    echo "   !! the download was not blocked" >&2
else
    echo "   -> curl failed as it should: the middlebox reset the connection"
fi
sleep 1.5
kill -INT "$MB" 2>/dev/null && wait "$MB" 2>/dev/null
MB=
sleep 0.5
echo
echo "== done (logs kept in $W)"
