# Shared by the tests that run on scripts/testbed.sh (source it after setting NAME and P):
# verdict helpers, the testbed and its certificates, the final summary, and the usual pieces:
# client, the KEYS env of the key-sharing shim, nginx, mmtlsd inline (tb_mbox_start/stop).
# shellcheck shell=bash

skip() {
    echo "[$NAME] SKIP: $*"
    exit 77
}
FAILS=0
fail() {
    echo "[$NAME] FAIL: $*"
    FAILS=$((FAILS + 1))
}
pass() { echo "[$NAME] ok: $*"; }

# tb_paths: BUILD (MMTLS_BUILDDIR, default $ROOT/build) and the binaries in it, each overridable
# as ctest does (tests/CMakeLists.txt): MMTLSD, SHIM (MMTLS_PRELOAD), KA (MMTLS_KEYAGENT).
# shellcheck disable=SC2034 # for the sourcing script
tb_paths() {
    BUILD=${MMTLS_BUILDDIR:-$ROOT/build}
    MMTLSD=${MMTLSD:-$BUILD/tools/mmtlsd/mmtlsd}
    SHIM=${MMTLS_PRELOAD:-$BUILD/lib/keyshare/libmmtls-preload.so}
    KA=${MMTLS_KEYAGENT:-$BUILD/tools/mmtls-keyagent/mmtls-keyagent}
}

# tb_up W: the three namespaces (prefix $P) and test certificates in W/pki.
tb_up() {
    bash "$ROOT/scripts/testbed.sh" up "$P" >/dev/null || skip "cannot build the testbed"
    bash "$ROOT/scripts/mkcerts.sh" "$1/pki" >/dev/null
}
tb_down() { bash "$ROOT/scripts/testbed.sh" down "$P"; }

# tb_finish W: the summary line and the exit status.
tb_finish() {
    if [ "$FAILS" = 0 ]; then
        echo "[$NAME] all cases passed"
        exit 0
    fi
    echo "[$NAME] $FAILS case(s) failed (KEEP=1 keeps $1)"
    exit 1
}

# The helpers below use the scripts' variables: P (prefix), W (work dir), MMTLSD, SHIM.

# client CMD...: CMD in the client namespace.
client() { ip netns exec "$P-client" "$@"; }

# tb_keys: KEYS, the env prefix that shares a client's keys through the preload shim ($SHIM)
# with mmtlsd's key server (198.18.6.2:4433), authenticated by the certificates in $W/pki.
# shellcheck disable=SC2034 # KEYS is for the sourcing script
tb_keys() {
    KEYS=(env LD_PRELOAD="$SHIM" MMTLS_KEYSERVER=198.18.6.2:4433 MMTLS_CA="$W/pki/ca.crt"
        MMTLS_CERT="$W/pki/client.crt" MMTLS_KEY="$W/pki/client.key")
}

# tb_nginx [--conns N] [--name NAME] [--http2] [--http 'DIRECTIVES'] [--timeout SECS]:
# nginx (TLS 1.2 + 1.3, RSA certificate of $W/pki) on 198.18.4.2:443 in the server namespace,
# in the background, serving $W/www; config $W/nginx.conf, pid file $W/nginx.pid (for cleanup).
# Defaults: 1024 connections, server_name server.test, no HTTP/2, no timeout.
tb_nginx() {
    local conns=1024 name=server.test h2='' http='' to=()
    while [ $# -gt 0 ]; do
        case $1 in
        --conns) conns=$2; shift ;;
        --name) name=$2; shift ;;
        --http2) h2=" http2" ;;
        --http) http=" $2"; shift ;;
        --timeout) to=(timeout "$2"); shift ;;
        *) echo "tb_nginx: unknown option $1" >&2; exit 2 ;;
        esac
        shift
    done
    mkdir -p "$W/nginx"
    cat >"$W/nginx.conf" <<EOF
daemon off; pid $W/nginx.pid; error_log $W/nginx/error.log; worker_processes 1;
events { worker_connections $conns; }
http {
    access_log off;$http
    client_body_temp_path $W/nginx/b; proxy_temp_path $W/nginx/p; fastcgi_temp_path $W/nginx/f;
    uwsgi_temp_path $W/nginx/u; scgi_temp_path $W/nginx/s;
    server {
        listen 198.18.4.2:443 ssl$h2; server_name $name; root $W/www;
        ssl_certificate $W/pki/rsa.crt; ssl_certificate_key $W/pki/rsa.key;
        ssl_protocols TLSv1.2 TLSv1.3;
    }
}
EOF
    ip netns exec "$P-server" "${to[@]}" nginx -c "$W/nginx.conf" -p "$W/nginx" 2>"$W/nginx.err" &
}

# tb_mbox_start LOG SECS [mmtlsd options]: mmtlsd -i c0:s0 in the mbox namespace under
# `timeout SECS`, in the background, with its key server on 198.18.6.2:4433 (certificates of
# $W/pki), stderr to LOG; waits for it to bridge (exits 1 if it does not). Sets MB (the
# background job, what tb_mbox_stop and the cleanup kill) and MBPID (mmtlsd's own pid, empty
# if not found).
# shellcheck disable=SC2034 # MBPID is for the sourcing script
tb_mbox_start() {
    local log=$1 secs=$2
    shift 2
    ip netns exec "$P-mbox" timeout "$secs" "$MMTLSD" -i c0:s0 --key-listen 198.18.6.2:4433 \
        --cert "$W/pki/mbox.crt" --key "$W/pki/mbox.key" --client-ca "$W/pki/ca.crt" "$@" \
        2>"$log" &
    MB=$!
    for _ in $(seq 300); do # up to 30 s: the BPF verifier, DPDK's start, a loaded machine
        grep -q bridging "$log" 2>/dev/null && break
        kill -0 "$MB" 2>/dev/null || break
        sleep 0.1
    done
    grep -q bridging "$log" || { echo "mmtlsd did not start: $(cat "$log")"; exit 1; }
    MBPID=$(pgrep -P "$MB" mmtlsd | head -1)
}
# tb_mbox_stop: SIGINT to mmtlsd (its summary goes to the log), waits for it, clears MB.
tb_mbox_stop() {
    kill -INT "$MB" 2>/dev/null
    wait "$MB" 2>/dev/null
    MB=
}
