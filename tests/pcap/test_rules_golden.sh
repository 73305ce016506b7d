#!/usr/bin/env bash
# Golden test of the rule engine (issue 6) on real traffic: nginx serves known files over HTTPS
# (TLS 1.3), clients make known requests, the capture and their key logs go through
# `mmtlsd -r --rules`, and the alerts must be exactly the expected ones (sid, action, direction,
# HTTP fields):
#   - curl (HTTP/1.1, one keep-alive connection): a request with a known User-Agent
#     (http_user_agent, Snort 3 sticky syntax), /secret.txt (http_uri, Suricata modifier syntax),
#     a response body with a marker (file_data), the EICAR file (drop rule: session blocked),
#     a POST body (http_client_body) and the server name (tls.sni);
#   - curl --http2: the same URI rule over HTTP/2;
#   - python3 writing its request one byte per TLS record (so also one TCP segment per byte):
#     a raw-stream rule and an http_uri rule still match the pattern split over 30+ records;
#   - rules that must not fire (another URI, a to_client rule on request bytes, a negated
#     content that is present, a marker 90 KB into a body: beyond the default 64 KB depth) do
#     not; with --inspect-depth 200000 the marker is found;
#   - the decrypted sessions exported with --pcap-out and read back as plain TCP streams give the
#     same alerts (but the tls.sni one, and the drop rule's, whose record was never exported).
# shellcheck source=tests/pcap/lib.sh disable=SC2154
. "$(dirname "$0")/lib.sh"
need_root_netns
need_cmd nginx curl
pki
net_setup 1500

www=$T_WORK/www
mkdir -p "$www"
printf 'hello\n' >"$www/index.html"
printf 'top secret\n' >"$www/secret.txt"
printf 'a page with MMTLS-BODY-MARKER-42 in it\n' >"$www/marker.html"
cp "$MMTLS_SRCDIR/../shared/data/eicar.com" "$www/eicar.com" 2>/dev/null ||
    printf '%s' 'X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*' >"$www/eicar.com"
# a body whose marker lies beyond the default inspection depth (64 KB)
{ head -c 90000 /dev/zero | tr '\0' 'a'; printf 'DEEP-BODY-MARKER-77'; head -c 10000 /dev/zero | tr '\0' 'b'; } \
    >"$www/deep.txt"
mkdir -p "$www/split"
printf 'split ok\n' >"$www/split/zz-split-marker-in-tiny-records.txt"
NGINX_ROOT=$www
HOST=server.test:$S_PORT

cat >"$T_WORK/golden.rules" <<'EOF'
# Snort 3 style: sticky buffer before the content, options with commas
alert http any any -> any any ( msg:"golden user agent"; http_user_agent; content:"GoldenAgent/7",nocase; classtype:trojan-activity; sid:9100001; rev:3; )
# Suricata legacy style: the modifier after the content
alert tcp any any -> any any (msg:"golden uri"; flow:to_server,established; content:"/secret.txt"; http_uri; sid:9100002; rev:1;)
alert http any any -> any any (msg:"golden body marker"; file_data; content:"MMTLS-BODY-MARKER-"; content:"42"; distance:0; within:2; sid:9100003; rev:1;)
drop http any any -> any any (msg:"golden eicar"; file_data; content:"EICAR-STANDARD-ANTIVIRUS-TEST-FILE"; sid:9100004; rev:1;)
alert http any any -> any any (msg:"golden post body"; http_client_body; content:"token=golden-exfil"; sid:9100005; rev:1;)
alert tls any any -> any any (msg:"golden sni"; tls.sni; content:"server.test"; sid:9100006; rev:1;)
alert tcp any any -> any any (msg:"golden raw split"; flow:to_server; content:"zz-split-marker-in-tiny-records"; sid:9100007; rev:1;)
alert http any any -> any any (msg:"golden uri split"; http.uri; content:"/split/zz-split-marker"; sid:9100008; rev:1;)
# fires only when the inspection depth reaches 90 KB into the body (not by default: 64 KB)
alert http any any -> any any (msg:"golden deep body"; file_data; content:"DEEP-BODY-MARKER-77"; sid:9100009; rev:1;)
# must not fire
alert http any any -> any any (msg:"never: uri"; http_uri; content:"/never-requested"; sid:9100101;)
alert tcp any any -> any any (msg:"never: wrong direction"; flow:to_client; content:"GoldenAgent/7"; sid:9100102;)
alert http any any -> any any (msg:"never: negated"; http_uri; content:"/secret"; content:!".txt"; sid:9100103;)
EOF

new_case golden
cap_start "$d/cap.pcap" || t_finish
nginx_start "$d" || {
    cap_stop
    t_finish
}
cc=(-sS --cacert "$T_PKI/ca.crt" --resolve "$HOST:$S_IP")
SSLKEYLOGFILE=$d/keys.log ip netns exec "$NS_C" timeout -k 5 60 curl "${cc[@]}" --http1.1 \
    -A "GoldenAgent/7.1" -o "$d/r1" "https://$HOST/index.html" \
    --next "${cc[@]}" --http1.1 -o "$d/r2" "https://$HOST/secret.txt" \
    --next "${cc[@]}" --http1.1 -o "$d/r3" "https://$HOST/marker.html" \
    --next "${cc[@]}" --http1.1 --data-binary "token=golden-exfil" -o "$d/r4" \
    "https://$HOST/index.html" 2>"$d/curl1.err" ||
    t_fail golden "HARNESS: curl: $(head -c 300 "$d/curl1.err")"
SSLKEYLOGFILE=$d/keys.log ip netns exec "$NS_C" timeout -k 5 60 curl "${cc[@]}" --http1.1 \
    -o "$d/r5" "https://$HOST/eicar.com" 2>"$d/curl2.err"
SSLKEYLOGFILE=$d/keys.log ip netns exec "$NS_C" timeout -k 5 60 curl "${cc[@]}" --http1.1 \
    -o "$d/r8" "https://$HOST/deep.txt" 2>"$d/curl4.err" ||
    t_fail golden "HARNESS: curl deep.txt: $(head -c 300 "$d/curl4.err")"
SSLKEYLOGFILE=$d/keys.log ip netns exec "$NS_C" timeout -k 5 60 curl "${cc[@]}" --http2 \
    -o "$d/r6" "https://$HOST/secret.txt" 2>"$d/curl3.err" ||
    t_fail golden "HARNESS: curl --http2: $(head -c 300 "$d/curl3.err")"
SSLKEYLOGFILE=$d/keys.log ip netns exec "$NS_C" timeout -k 5 60 "$PY" - "$S_IP" "$S_PORT" \
    "$T_PKI/ca.crt" >"$d/r7" 2>"$d/py.err" <<'EOF' ||
import socket, ssl, sys
ip, port, ca = sys.argv[1], int(sys.argv[2]), sys.argv[3]
ctx = ssl.create_default_context(cafile=ca)
ctx.keylog_filename = __import__("os").environ["SSLKEYLOGFILE"]
raw = socket.create_connection((ip, port), timeout=20)
raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
s = ctx.wrap_socket(raw, server_hostname="server.test")
req = b"GET /split/zz-split-marker-in-tiny-records.txt HTTP/1.1\r\nHost: server.test\r\nConnection: close\r\n\r\n"
for b in req:              # one SSL_write, so one TLS record and one TCP segment, per byte
    s.send(bytes([b]))
data = b""
while True:
    chunk = s.recv(65536)
    if not chunk:
        break
    data += chunk
sys.stdout.write(data.decode(errors="replace"))
EOF
    t_fail golden "HARNESS: python: $(tail -c 300 "$d/py.err")"
sleep 0.3
srv_wait kill
cap_stop
grep -q "split ok" "$d/r7" || t_fail golden "HARNESS: the byte-by-byte client got no file"

run_mmtlsd "$d/cap.pcap" "$d/mm" --keylog "$d/keys.log" --rules "$T_WORK/golden.rules" --log-http \
    --pcap-out "$T_WORK/export.pcap"
if mm_ok golden "$d/mm"; then
    $PY - "$d/mm/eve.json" <<'EOF' || t_fail golden "alerts differ (above)"
import json, sys, collections
ev = [json.loads(l) for l in open(sys.argv[1])]
al = [e for e in ev if e["event_type"] == "alert"]
got = collections.Counter(a["alert"]["signature_id"] for a in al)
sessions = [e for e in ev if e["event_type"] == "tls" and e["tls"].get("sni") == "server.test"]
want = {9100001: 1, 9100002: 2, 9100003: 1, 9100004: 1, 9100005: 1,
        9100006: len(sessions), 9100007: 1, 9100008: 1}  # the SNI rule: once per session
ok = True
for sid, n in sorted(want.items()):
    if got.get(sid, 0) != n:
        ok = False
        print("   sid %d: %d alert(s), want %d" % (sid, got.get(sid, 0), n))
for sid in got:
    if sid not in want:
        ok = False
        print("   sid %d fired and must not" % sid)
def one(sid):
    return [a for a in al if a["alert"]["signature_id"] == sid][0]
a = one(9100001)
if not (a["alert"]["rev"] == 3 and a["alert"]["category"] == "trojan-activity" and
        a["direction"] == "to_server" and a["alert"]["action"] == "allowed" and
        a["http"]["http_user_agent"].startswith("GoldenAgent/7") and a["tls"]["sni"] == "server.test"):
    ok = False
    print("   sid 9100001 fields:", a)
a = one(9100004)
if not (a["alert"]["action"] == "blocked" and a["direction"] == "to_client" and
        a["http"]["url"] == "/eicar.com"):
    ok = False
    print("   sid 9100004 (drop) fields:", a)
blocked = [e for e in ev if e["event_type"] == "tls" and e["tls"]["blocked"]]
if len(blocked) != 1:
    ok = False
    print("   want exactly the EICAR session blocked, got %d" % len(blocked))
urls = sorted(a["http"]["url"] for a in al if a["alert"]["signature_id"] == 9100002)
if urls != ["/secret.txt", "/secret.txt"] or not any(
        a.get("http", {}).get("protocol") == "HTTP/2" for a in al
        if a["alert"]["signature_id"] == 9100002):
    ok = False
    print("   sid 9100002: one alert over HTTP/1.1 and one over HTTP/2 wanted:", urls)
print("   alerts:", dict(sorted(got.items())))
sys.exit(0 if ok else 1)
EOF
fi
# A deeper inspection depth finds the marker 90 KB into the body.
name=golden-depth
T_CASES=$((T_CASES + 1))
run_mmtlsd "$d/cap.pcap" "$d/mm3" --keylog "$d/keys.log" --rules "$T_WORK/golden.rules" \
    --inspect-depth 200000
if mm_ok "$name" "$d/mm3"; then
    n=$(grep -c '"signature_id":9100009' "$d/mm3/eve.json")
    [ "$n" = 1 ] || t_fail "$name" "sid 9100009: $n alert(s) with --inspect-depth 200000, want 1"
fi

# The exported decrypted pcap read back as plain TCP (no keys): the same alerts, except the
# tls.sni rule (no TLS left) and the drop rule, whose record was blocked and so never exported.
name=golden-export
T_CASES=$((T_CASES + 1))
run_mmtlsd "$T_WORK/export.pcap" "$d/mm2" --rules "$T_WORK/golden.rules"
if mm_ok "$name" "$d/mm2"; then
    $PY - "$d/mm/eve.json" "$d/mm2/eve.json" <<'EOF' || t_fail "$name" "alerts differ (above)"
import json, sys, collections
def alerts(p):
    return collections.Counter(json.loads(l)["alert"]["signature_id"] for l in open(p)
                               if '"event_type":"alert"' in l)
a, b = alerts(sys.argv[1]), alerts(sys.argv[2])
want = {k: v for k, v in a.items() if k not in (9100006, 9100004)}
print("   from the capture:", dict(sorted(a.items())), " from the export:", dict(sorted(b.items())))
sys.exit(0 if dict(b) == want else 1)
EOF
fi
t_finish
