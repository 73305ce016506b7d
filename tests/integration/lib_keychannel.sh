#!/usr/bin/env bash
# Shared set-up of the key channel tests (sourced): PKI with a client certificate, a client and
# a server namespace (198.18.2.1 / 198.18.2.2), nginx (TLS 1.2 + 1.3) in the server namespace,
# and start_middlebox / stop_middlebox: tcpdump -w - | mmtlsd -r - --key-listen 198.18.2.2:4433.
# Needs: W (a fresh directory), NAME, ROOT, MMTLSD, skip() from the test; defines fail(), pass(),
# FAILS, cleanup (trap).

chmod 755 "$W" # nginx workers (www-data) read the files
NS_C=mmtls-kce-c-$$
NS_S=mmtls-kce-s-$$
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
    [ -f "$W/nginx.pid" ] && kill "$(cat "$W/nginx.pid" 2>/dev/null)" 2>/dev/null
    ip netns del "$NS_C" 2>/dev/null
    ip netns del "$NS_S" 2>/dev/null
    [ -n "${KEEP:-}" ] || rm -rf "$W"
}
trap cleanup EXIT
FAILS=0
fail() { echo "[$NAME] FAIL: $*"; FAILS=$((FAILS + 1)); }
pass() { echo "[$NAME] ok: $*"; }

# --- PKI: server certificates (scripts/mkcerts.sh) and a client certificate for the channel ---
bash "$ROOT/scripts/mkcerts.sh" "$W/pki" 198.18.2.2 >/dev/null || { echo "mkcerts failed"; exit 1; }

# --- namespaces -------------------------------------------------------------------------------
ip netns add "$NS_C" && ip netns add "$NS_S" || skip "cannot create namespaces"
ip link add veth-c netns "$NS_C" type veth peer name veth-s netns "$NS_S"
ip -n "$NS_C" addr add 198.18.2.1/24 dev veth-c
ip -n "$NS_S" addr add 198.18.2.2/24 dev veth-s
for ns in "$NS_C:veth-c" "$NS_S:veth-s"; do
    ip -n "${ns%%:*}" link set "${ns#*:}" up
    ip -n "${ns%%:*}" link set lo up
done

# --- nginx ------------------------------------------------------------------------------------
mkdir -p "$W/www" "$W/nginx"
for i in 1 2 3 4 5 6; do head -c $((20000 * i)) /dev/urandom | base64 >"$W/www/file$i.txt"; done
cat >"$W/nginx.conf" <<EOF
daemon off;
pid $W/nginx.pid;
error_log $W/nginx/error.log;
worker_processes 1;
events { worker_connections 64; }
http {
    access_log off;
    client_body_temp_path $W/nginx/body;
    proxy_temp_path $W/nginx/proxy;
    fastcgi_temp_path $W/nginx/fastcgi;
    uwsgi_temp_path $W/nginx/uwsgi;
    scgi_temp_path $W/nginx/scgi;
    server {
        listen 198.18.2.2:443 ssl;
        server_name server.test;
        ssl_certificate $W/pki/rsa.crt;
        ssl_certificate_key $W/pki/rsa.key;
        ssl_protocols TLSv1.2 TLSv1.3;
        root $W/www;
    }
}
EOF
ip netns exec "$NS_S" nginx -c "$W/nginx.conf" -p "$W/nginx" 2>"$W/nginx.err" &
PIDS+=($!)

# --- the middlebox: live capture into mmtlsd with its key server -------------------------------
# start_middlebox TAG [MMTLSD_ARGS...]: outputs in $W/TAG/{eve.json,plain/}, log $W/TAG.log
start_middlebox() {
    local tag=$1 more="${*:2}"
    rm -f "$W/$tag.tcpdump.log"
    ip netns exec "$NS_S" bash -c "tcpdump -i veth-s -s 0 -U --immediate-mode -B 8192 -w - \
        'tcp port 443' 2>'$W/$tag.tcpdump.log' | '$MMTLSD' -r - --key-listen 198.18.2.2:4433 \
        --cert '$W/pki/mbox.crt' --key '$W/pki/mbox.key' --client-ca '$W/pki/ca.crt' \
        -l '$W/$tag' --dump-plaintext '$W/$tag/plain' -v $more 2>'$W/$tag.log'" &
    MB=$!
    PIDS+=($MB)
    for _ in $(seq 100); do
        ip netns exec "$NS_S" ss -ltn | grep -q '198.18.2.2:4433' &&
            ip netns exec "$NS_S" ss -ltn | grep -q '198.18.2.2:443 ' &&
            grep -q listening "$W/$tag.tcpdump.log" 2>/dev/null && break
        sleep 0.1
    done
}

# stop_middlebox: ends the capture; mmtlsd reads to the end, logs and exits (its key server too).
stop_middlebox() {
    kill -INT $(ip netns pids "$NS_S" | xargs -r ps -o pid=,comm= -p |
        awk '$2=="tcpdump"{print $1}') 2>/dev/null
    wait "$MB" 2>/dev/null
    for _ in $(seq 50); do
        ip netns exec "$NS_S" ss -ltn | grep -q '198.18.2.2:4433' || break
        sleep 0.1
    done
}

