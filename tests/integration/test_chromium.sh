#!/usr/bin/env bash
# Debian's Chromium (headless) as a real client through the inline middlebox on the testbed
# (scripts/testbed.sh): client -- mmtlsd -i c0:s0 -- server (nginx, TLS 1.3).  Chromium writes
# its secrets to SSLKEYLOGFILE; mmtls-keyagent follows that file and ships them to mmtlsd's key
# server.  The test CA is trusted through an NSS database in $HOME/.pki/nssdb (real certificate
# verification, no --ignore-certificate-errors).
# Cases:
#   - HTTP/2 (nginx `listen ... ssl http2`, ALPN h2): the dumped DOM holds the page's marker;
#     eve.json has a tls event for server.test, TLS 1.3, alpn h2, key_status decrypted;
#   - HTTP/1.1 (a second nginx port without http2): the same, alpn http/1.1; an http event
#     (url, host, status 200) for the page over each protocol;
#   - EICAR in a page: mmtlsd --block-eicar resets the session, the DOM does not hold the EICAR
#     string, eve.json has an alert with signature_id 9000001 and the session is blocked;
#   - without the NSS database Chromium refuses the server (ERR_CERT_AUTHORITY_INVALID);
#   - every session's keys came through the agent: matched, none held past --key-wait.
# Environment: MMTLSD, MMTLS_KEYAGENT (the binaries), MMTLS_BUILDDIR, CHROMIUM (the browser,
# default chromium), KEEP=1 keeps the work directory.
# Exit 0 pass, 1 fail, 77 skip.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BUILD=${MMTLS_BUILDDIR:-$ROOT/build}
MMTLSD=${MMTLSD:-$BUILD/tools/mmtlsd/mmtlsd}
KA=${MMTLS_KEYAGENT:-$BUILD/tools/mmtls-keyagent/mmtls-keyagent}
CHROMIUM=${CHROMIUM:-chromium}
NAME=test_chromium
P=mmtls-tc$$

# shellcheck source=lib_testbed.sh
. "$HERE/lib_testbed.sh"
[ "$(id -u)" = 0 ] || skip "needs root"
for c in ip nginx openssl certutil timeout python3 "$CHROMIUM"; do
    command -v "$c" >/dev/null || skip "no $c"
done
[ -x "$MMTLSD" ] && [ -x "$KA" ] || { echo "[$NAME] FAIL: build first"; exit 1; }

W=$(mktemp -d /tmp/mmtls-chromium.XXXXXX)
chmod 755 "$W"
MB=
AG=
cleanup() {
    [ -n "$AG" ] && kill "$AG" 2>/dev/null
    [ -n "$MB" ] && kill "$MB" 2>/dev/null
    [ -f "$W/nginx.pid" ] && kill "$(cat "$W/nginx.pid" 2>/dev/null)" 2>/dev/null
    tb_down
    [ -n "${KEEP:-}" ] || rm -rf "$W"
}
trap cleanup EXIT

tb_up "$W"
mkdir -p "$W/www" "$W/nginx" "$W/home/.pki/nssdb"
MARK=mmtls-chromium-$$-$RANDOM
EICAR='X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*'
printf '<!DOCTYPE html>\n<html><head><title>t</title></head><body><p id="m">%s</p>\n' \
    "$MARK" >"$W/www/index.html"
head -c 20000 /dev/urandom | base64 -w 100 | sed 's/^/<p>/; s/$/<\/p>/' >>"$W/www/index.html"
echo '</body></html>' >>"$W/www/index.html"
printf '<!DOCTYPE html>\n<html><body><pre>%s</pre></body></html>\n' "$EICAR" \
    >"$W/www/eicar.html"
cat >"$W/nginx.conf" <<EOF
daemon off; pid $W/nginx.pid; error_log $W/nginx/error.log; worker_processes 1;
events { worker_connections 64; }
http {
    access_log $W/nginx/access.log;
    types { text/html html; }
    client_body_temp_path $W/nginx/b; proxy_temp_path $W/nginx/p; fastcgi_temp_path $W/nginx/f;
    uwsgi_temp_path $W/nginx/u; scgi_temp_path $W/nginx/s;
    ssl_certificate $W/pki/rsa.crt; ssl_certificate_key $W/pki/rsa.key;
    ssl_protocols TLSv1.3;
    server {
        listen 198.18.4.2:443 ssl http2; server_name server.test; root $W/www;
    }
    server {
        listen 198.18.4.2:8443 ssl; server_name server.test; root $W/www;
    }
    server {
        listen 198.18.4.2:9443 ssl; server_name server.test; root $W/www;
    }
}
EOF
ip netns exec "$P-server" timeout 150 nginx -c "$W/nginx.conf" -p "$W/nginx" \
    2>"$W/nginx.err" &

# The test CA in an NSS database where Chromium looks for it ($HOME/.pki/nssdb).
certutil -N -d "sql:$W/home/.pki/nssdb" --empty-password &&
    certutil -A -d "sql:$W/home/.pki/nssdb" -n "mmtls test CA" -t "C,," -i "$W/pki/ca.crt" ||
    skip "certutil cannot make an NSS database"

ip netns exec "$P-mbox" timeout 150 "$MMTLSD" -i c0:s0 --key-listen 198.18.6.2:4433 \
    --cert "$W/pki/mbox.crt" --key "$W/pki/mbox.key" --client-ca "$W/pki/ca.crt" \
    -l "$W/mbox" --block-eicar --log-http --key-wait 3000 -v 2>"$W/mbox.log" &
MB=$!
for _ in $(seq 50); do
    grep -q bridging "$W/mbox.log" 2>/dev/null && break
    sleep 0.1
done
grep -q bridging "$W/mbox.log" || { echo "mmtlsd did not start: $(cat "$W/mbox.log")"; exit 1; }

# The key agent follows Chromium's key log (created empty first).
: >"$W/keylog.txt"
ip netns exec "$P-client" timeout 150 "$KA" --keylog "$W/keylog.txt" \
    --keyserver 198.18.6.2:4433 --ca "$W/pki/ca.crt" --cert "$W/pki/client.crt" \
    --key "$W/pki/client.key" -v 2>"$W/agent.log" &
AG=$!
for _ in $(seq 50); do
    grep -q "connected to key server" "$W/agent.log" 2>/dev/null && break
    sleep 0.1
done
grep -q "connected to key server" "$W/agent.log" ||
    { echo "mmtls-keyagent did not connect: $(cat "$W/agent.log")"; exit 1; }
for _ in $(seq 50); do
    ip netns exec "$P-client" timeout 1 bash -c 'exec 3<>/dev/tcp/198.18.4.2/8443' \
        2>/dev/null && break
    sleep 0.1
done

# browse TAG URL [flags]: Chromium's DOM of URL in $W/TAG.dom, its stderr in $W/TAG.err
browse() {
    local tag=$1 url=$2
    shift 2
    ip netns exec "$P-client" env HOME="${HOME_DIR:-$W/home}" SSLKEYLOGFILE="$W/keylog.txt" \
        timeout 40 "$CHROMIUM" --headless --no-sandbox --disable-gpu --disable-quic \
        --no-first-run --no-default-browser-check --disable-background-networking \
        --disable-component-update --disable-sync --disable-extensions \
        --disable-default-apps --metrics-recording-only --disable-breakpad \
        --user-data-dir="$W/ud-$tag" --host-resolver-rules="MAP server.test 198.18.4.2" \
        --dump-dom "$@" "$url" >"$W/$tag.dom" 2>"$W/$tag.err"
}

browse h2 https://server.test/index.html
grep -q "$MARK" "$W/h2.dom" && pass "HTTP/2: Chromium got the page through mmtlsd" ||
    fail "HTTP/2: marker not in the DOM ($(head -c 300 "$W/h2.dom"))"
browse h1 https://server.test:8443/index.html
grep -q "$MARK" "$W/h1.dom" && pass "HTTP/1.1: Chromium got the page through mmtlsd" ||
    fail "HTTP/1.1: marker not in the DOM ($(head -c 300 "$W/h1.dom"))"
browse eicar https://server.test:8443/eicar.html
err=$(grep -o 'Page load failed: net::ERR_[A-Z_]*' "$W/eicar.err" | head -n1)
! grep -q EICAR-STANDARD "$W/eicar.dom" && [ -n "$err" ] &&
    pass "EICAR: not in Chromium's DOM (${err#Page load failed: })" ||
    fail "EICAR page reached the browser ($(head -c 300 "$W/eicar.dom"))"
# Without the NSS database (an empty HOME) the test CA is unknown: the certificate is refused,
# so the database above is what makes Chromium trust the server (verification is real).
mkdir -p "$W/nohome"
HOME_DIR="$W/nohome" browse untrusted https://server.test:9443/index.html
grep -q 'ERR_CERT_AUTHORITY_INVALID' "$W/untrusted.err" && ! grep -q "$MARK" "$W/untrusted.dom" &&
    pass "without the NSS database the test CA is not trusted" ||
    fail "untrusted CA: $(grep -o 'net::ERR_[A-Z_]*' "$W/untrusted.err" | head -n1)"
# nginx saw each protocol it was meant to (the browser did not fall back)
grep -q '"GET /index.html HTTP/2.0" 200' "$W/nginx/access.log" &&
    grep -q '"GET /index.html HTTP/1.1" 200' "$W/nginx/access.log" &&
    pass "nginx served /index.html over HTTP/2 and HTTP/1.1" || fail "nginx access log"

grep -q "^CLIENT_TRAFFIC_SECRET_0 " "$W/keylog.txt" ||
    fail "Chromium wrote no TLS 1.3 secrets to SSLKEYLOGFILE"
kill -INT "$MB" 2>/dev/null
wait "$MB" 2>/dev/null
MB=

PYTHONPATH="$HERE" python3 - "$W/mbox/eve.json" "$W/keylog.txt" <<'EOF' || fail "eve checks"
import sys
from evecheck import load, check, done
ev = load(sys.argv[1])
crs = {l.split()[1].lower() for l in open(sys.argv[2]) if len(l.split()) == 3}
tls = [e for e in ev if e["event_type"] == "tls" and e["tls"].get("sni") == "server.test"
       and e["dest_port"] in (443, 8443)]
def port(p):
    return [e["tls"] for e in tls if e["dest_port"] == p]
h2 = [t for t in port(443) if t.get("alpn") == "h2" and t["key_status"] == "decrypted"
      and not t["blocked"] and t.get("version") == "TLS 1.3" and t["plain_bytes_toclient"] > 20000]
check(h2, "HTTP/2: a decrypted TLS 1.3 session with alpn h2 and the page's bytes")
h1 = [t for t in port(8443) if t.get("alpn") == "http/1.1" and t["key_status"] == "decrypted"
      and not t["blocked"] and t.get("version") == "TLS 1.3"]
check(h1, "HTTP/1.1: a decrypted TLS 1.3 session with alpn http/1.1")
check(len(tls) >= 3 and all(e["tls"]["key_status"] == "decrypted" for e in tls),
      "all %d sessions decrypted" % len(tls))
check(all(t["client_random"].lower() in crs for t in port(443) + port(8443)),
      "every session's client_random is in Chromium's key log")
http = [e for e in ev if e["event_type"] == "http"]
check(any(e["http"]["url"] == "/index.html" and e["http"].get("hostname") == "server.test"
          and e["dest_port"] == 8443 and e["http"].get("status") == 200
          for e in http), "an http event for /index.html (HTTP/1.1), status 200")
check(any(e["http"]["url"] == "/index.html" and e["http"].get("protocol") == "HTTP/2"
          and e["dest_port"] == 443 and e["http"].get("status") == 200
          for e in http), "an http event for /index.html (HTTP/2), status 200")
alerts = [e for e in ev if e["event_type"] == "alert"]
check(alerts and all(a["alert"]["signature_id"] == 9000001 for a in alerts),
      "EICAR alert(s), signature_id 9000001 (%d)" % len(alerts))
check(any(t["blocked"] for t in port(8443)), "the EICAR session is blocked")
check(any(e["http"]["url"] == "/eicar.html" for e in http), "an http event for /eicar.html")
st = [e["stats"] for e in ev if e["event_type"] == "stats"]
check(st and st[0]["tls"]["inline"]["rst_sent"] >= 1, "RSTs sent for the EICAR session")
keys = st[0]["tls"]["keys"] if st else {}
check(keys.get("matched", 0) >= len(tls) and keys.get("holds_expired", 1) == 0,
      "keys from the agent matched every session, no hold expired (%s)" % keys)
# The refused (untrusted) sessions end before Chromium derives application secrets: they may
# count as blocked for missing keys; no other session may.
refused = [e for e in ev if e["event_type"] == "tls" and e["dest_port"] == 9443]
check(st and st[0]["tls"]["inline"]["blocked_missing_keys"] <= len(refused),
      "no session but the refused ones lacked its keys")
if st:
    print("   key stall:", st[0]["tls"]["inline"]["key_stall_us"])
done()
EOF

tb_finish "$W"
