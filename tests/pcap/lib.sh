# shellcheck shell=bash
# tests/pcap/lib.sh - helpers for the end-to-end tests of the offline engine.
#
# Each test script sources this file, then: need_root_netns; need_cmd ...; net_setup; runs
# cases (each case: make payloads, start tcpdump in the server namespace, run real TLS peers
# with key logs, stop tcpdump, check that the peers themselves got their data intact, run
# mmtlsd on the capture and compare its plaintext dumps and eve.json with the ground truth);
# finally t_finish.  Exit codes: 0 pass, 1 fail, 77 skip (the CTest SKIP_RETURN_CODE).
#
# Environment: MMTLSD (the binary; CTest sets it), MMTLS_SRCDIR, MMTLS_KEEP=1 keeps the work
# directory even on success, MMTLS_VERBOSE=1 prints every command's stderr on failure.
# If $MMTLSD does not exist the captures are still made and the peers checked, and the test
# exits 77 (skip) at the end unless something else failed.

set -u
set -o pipefail

T_NAME=$(basename "$0" .sh)
MMTLS_SRCDIR=${MMTLS_SRCDIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
MMTLSD=${MMTLSD:-$MMTLS_SRCDIR/build/tools/mmtlsd/mmtlsd}
T_PKI=""
T_WORK=$(mktemp -d "${TMPDIR:-/tmp}/mmtls-$T_NAME.XXXXXX")
T_FAILS=0
T_CASES=0
T_PIDS=()
T_NET=0
# Namespaces and interfaces are unique per test run, so tests may run in parallel.
NS_C=mmtls-t-$$-c
NS_S=mmtls-t-$$-s
VETH_C=mtc$$
VETH_S=mts$$
# RFC 2544 benchmark addresses (198.18.0.0/15) and a ULA prefix for IPv6.
C_IP=198.18.0.1
S_IP=198.18.0.2
C_IP6=fd00:6d6d::1
S_IP6=fd00:6d6d::2
S_PORT=4433
# The expected certificate names (scripts/mkcerts.sh).
CERT_SUBJECT_CN=server.test
CERT_ISSUER_CN="mmtls test CA"

# Which python3 has scapy is irrelevant: every python helper here uses the standard library.
PY=python3

t_log() { printf '[%s] %s\n' "$T_NAME" "$*"; }

# t_fail CASE MESSAGE... - record a failure and go on with the next check.
t_fail() {
    T_FAILS=$((T_FAILS + 1))
    printf '[%s] FAIL %s: %s\n' "$T_NAME" "$1" "${*:2}" >&2
}

t_skip() {
    printf '[%s] SKIP: %s\n' "$T_NAME" "$*" >&2
    exit 77
}

t_cleanup() {
    local p
    for p in "${T_PIDS[@]}"; do
        kill "$p" 2>/dev/null
    done
    for p in "${T_PIDS[@]}"; do
        wait "$p" 2>/dev/null
    done
    if [ "$T_NET" = 1 ]; then
        ip netns del "$NS_C" 2>/dev/null
        ip netns del "$NS_S" 2>/dev/null
    fi
    if [ "$T_FAILS" = 0 ] && [ "${MMTLS_KEEP:-0}" != 1 ]; then
        rm -rf "$T_WORK"
    else
        printf '[%s] work directory kept: %s\n' "$T_NAME" "$T_WORK" >&2
    fi
}
trap t_cleanup EXIT
trap 'exit 130' INT TERM

# t_finish - the test's exit code.
t_finish() {
    if [ "$T_FAILS" != 0 ]; then
        t_log "$T_FAILS failure(s) in $T_CASES case(s)"
        exit 1
    fi
    if ! have_mmtlsd; then
        t_log "captures made and peers verified ($T_CASES cases), but $MMTLSD is missing: skip"
        exit 77
    fi
    t_log "all $T_CASES case(s) passed"
    exit 0
}

# need_cmd CMD... - skip the test (77) when a tool is missing.
need_cmd() {
    local c
    for c in "$@"; do
        command -v "$c" >/dev/null 2>&1 || t_skip "$c not installed"
    done
}

need_root_netns() {
    [ "$(id -u)" = 0 ] || t_skip "needs root (network namespaces, tcpdump)"
    need_cmd ip tcpdump timeout openssl ss cmp "$PY"
    ip netns add "mmtls-t-$$-probe" 2>/dev/null || t_skip "cannot create network namespaces"
    ip netns del "mmtls-t-$$-probe"
}

have_mmtlsd() { [ -x "$MMTLSD" ]; }

# pki - make (once per run) the test certificates; sets T_PKI.
pki() {
    T_PKI=$T_WORK/pki
    bash "$MMTLS_SRCDIR/scripts/mkcerts.sh" "$T_PKI" >/dev/null || {
        t_fail setup "mkcerts.sh failed"
        exit 1
    }
}

# net_setup [MTU] - two namespaces joined by a veth pair, IPv4 + IPv6, offloads off.
net_setup() {
    local mtu=${1:-1500} ns dev
    ip netns add "$NS_C" || exit 1
    T_NET=1
    ip netns add "$NS_S" || exit 1
    ip link add "$VETH_C" type veth peer name "$VETH_S" || exit 1
    ip link set "$VETH_C" netns "$NS_C"
    ip link set "$VETH_S" netns "$NS_S"
    for ns in "$NS_C:$VETH_C" "$NS_S:$VETH_S"; do
        dev=${ns#*:}
        ns=${ns%%:*}
        ip -n "$ns" link set lo up
        ip -n "$ns" link set "$dev" mtu "$mtu" up
        # Real segment boundaries on the wire: no TSO/GSO/GRO on the veths.
        if command -v ethtool >/dev/null 2>&1; then
            ip netns exec "$ns" ethtool -K "$dev" tso off gso off gro off >/dev/null 2>&1 ||
                t_log "ethtool -K failed on $dev (offloads stay on)"
        fi
    done
    ip -n "$NS_C" addr add "$C_IP/24" dev "$VETH_C"
    ip -n "$NS_S" addr add "$S_IP/24" dev "$VETH_S"
    if [ "$mtu" -ge 1280 ]; then # IPv6 needs an MTU of 1280 at least
        ip -n "$NS_C" addr add "$C_IP6/64" dev "$VETH_C" nodad
        ip -n "$NS_S" addr add "$S_IP6/64" dev "$VETH_S" nodad
    fi
    # No router solicitations or other IPv6 chatter in the captures if we can help it.
    ip netns exec "$NS_C" sysctl -qw net.ipv6.conf.all.forwarding=0 2>/dev/null
}

# set_mtu MTU - change the MTU of both veths.
set_mtu() {
    ip -n "$NS_C" link set "$VETH_C" mtu "$1"
    ip -n "$NS_S" link set "$VETH_S" mtu "$1"
}

# in_ns NS TIMEOUT CMD... - exec CMD in namespace NS, bounded by timeout.  It REPLACES the
# calling shell: call it only as a pipeline element or in a background job, so that $! is
# the pid of timeout itself (timeout relays SIGINT/SIGTERM to the command).
in_ns() {
    local ns=$1 t=$2
    shift 2
    exec ip netns exec "$ns" timeout -k 5 "$t" "$@"
}

# cap_start FILE [IFACE] - tcpdump in the server namespace (IFACE: the server veth by default,
# or "any" for Linux cooked SLL2 captures); returns when tcpdump is listening.
T_CAP_PID=""
T_CAP_FILE=""
T_CAP_BAD=0
cap_start() {
    local file=$1 ifc=${2:-$VETH_S} i
    T_CAP_FILE=$file
    T_CAP_BAD=0
    rm -f "$file" "$file.err"
    # Not through a shell function: $! must be the process that gets the SIGINT.
    # "any" sizes its ring slots by the snap length, not by an MTU: keep it small (the MTU is
    # at most 1500 and offloads are off) and the buffer large, or the kernel drops packets.
    local snap=(-s 0 -B 16384)
    [ "$ifc" = any ] && snap=(-s 65535 -B 65536)
    ip netns exec "$NS_S" timeout -k 5 300 tcpdump -i "$ifc" -n -U --immediate-mode "${snap[@]}" \
        -Z root -w "$file" 2>"$file.err" &
    T_CAP_PID=$!
    T_PIDS+=("$T_CAP_PID")
    for i in $(seq 1 100); do
        grep -q 'listening on' "$file.err" 2>/dev/null && return 0
        sleep 0.05
    done
    t_fail capture "tcpdump did not start: $(cat "$file.err")"
    return 1
}

# cap_stop - let the last packets land, then stop tcpdump with SIGINT and wait for it.
cap_stop() {
    [ -n "$T_CAP_PID" ] || return 0
    sleep 0.3
    kill -INT "$T_CAP_PID" 2>/dev/null
    wait "$T_CAP_PID" 2>/dev/null
    T_CAP_PID=""
    if grep -Eq '^[1-9][0-9]* packets? dropped by kernel' "$T_CAP_FILE.err"; then
        t_fail "$(basename "$(dirname "$T_CAP_FILE")")" "HARNESS: tcpdump dropped packets:" \
            "$(tr '\n' ' ' <"$T_CAP_FILE.err")"
        T_CAP_BAD=1
        return 1
    fi
}

# wait_port PORT - until something listens on TCP PORT in the server namespace (max 10 s).
wait_port() {
    local i
    for i in $(seq 1 200); do
        if ip netns exec "$NS_S" ss -Htln "sport = :$1" 2>/dev/null | grep -q .; then
            return 0
        fi
        sleep 0.05
    done
    return 1
}

fsize() { stat -c %s "$1" 2>/dev/null || echo 0; }

# wait_size FILE SIZE [SECONDS] - until FILE holds at least SIZE bytes.
wait_size() {
    local f=$1 n=$2 t=${3:-30} end
    end=$((SECONDS + t))
    while [ "$(fsize "$f")" -lt "$n" ]; do
        [ $SECONDS -ge $end ] && return 1
        sleep 0.05
    done
    return 0
}

# wait_file FILE [SECONDS]
wait_file() {
    local f=$1 t=${2:-30} end
    end=$((SECONDS + t))
    while [ ! -e "$f" ]; do
        [ $SECONDS -ge $end ] && return 1
        sleep 0.05
    done
    return 0
}

# Payloads. payload_bin: random bytes. payload_hex: random lowercase hex lines - safe for
# programs in command mode (s_client treats a read starting with Q, R, k or K as a command).
payload_bin() { head -c "$2" /dev/urandom >"$1"; }
payload_hex() { head -c $(($2 / 2)) /dev/urandom | od -An -v -tx1 | tr -d ' \n' | fold -w 64 | head -c "$2" >"$1"; }

# ---------------------------------------------------------------------------------------------
# Running peers.  A case directory D holds, for connection i = 1..N:
#   cp$i  what client i sends          sp$i  what the server sends on connection i
#   co$i  what client i received       so    what the server received (all connections)
#   exp_c2s$i / exp_s2c$i              the application data mmtlsd must dump (default cp$i/sp$i)
#   keys.log (client key log), skeys.log (server key log), cap.pcap, *.err
# ---------------------------------------------------------------------------------------------

# srv_feed D N - the server's stdin: connection i's payload, held open until client i is done.
srv_feed() {
    local d=$1 n=$2 i
    local total=0
    for i in $(seq 1 "$n"); do
        [ -e "$d/sp$i" ] && cat "$d/sp$i"
        wait_file "$d/c$i.done" 60
        total=$((total + $(fsize "$d/cp$i")))
    done
    # s_server stops reading the connection at EOF on stdin: hold stdin open until it has read
    # everything (srv_wait does not wait for this feeder, only for the server).
    wait_size "$d/so" "$total" 10
    sleep 0.2
}

# cli_feed D I - client i's stdin: its payload, held open until it has received all the server
# sends it (so the client's close never cuts the server's data), then EOF -> close_notify.
cli_feed() {
    local d=$1 i=$2
    cat "$d/cp$i"
    wait_size "$d/co$i" "$(fsize "$d/sp$i")" 30
    sleep 0.1
}

# srv_start D N CMD... - start a server for N connections (stdin: srv_feed, or the function
# named by SRV_FEED; stdout: D/so).
T_SRV_PID=""
srv_start() {
    local d=$1 n=$2
    shift 2
    "${SRV_FEED:-srv_feed}" "$d" "$n" | in_ns "$NS_S" 90 "$@" >"$d/so" 2>"$d/srv.err" &
    T_SRV_PID=$!
    T_PIDS+=("$T_SRV_PID")
    wait_port "$S_PORT" || {
        t_fail "$(basename "$d")" "server did not listen: $(head -c 600 "$d/srv.err")"
        return 1
    }
}

# srv_start_nostdin D CMD... - a server that does not read its stdin (gnutls-serv --echo).
srv_start_nostdin() {
    local d=$1
    shift
    in_ns "$NS_S" 90 "$@" </dev/null >"$d/so" 2>"$d/srv.err" &
    T_SRV_PID=$!
    T_PIDS+=("$T_SRV_PID")
    wait_port "$S_PORT" || {
        t_fail "$(basename "$d")" "server did not listen: $(head -c 600 "$d/srv.err")"
        return 1
    }
}

# srv_wait [kill] - wait for the server (kill it first with "kill").
srv_wait() {
    [ -n "$T_SRV_PID" ] || return 0
    if [ "${1:-}" = kill ]; then
        kill "$T_SRV_PID" 2>/dev/null
    fi
    wait "$T_SRV_PID" 2>/dev/null
    T_SRV_PID=""
}

# cli_run D I [FEEDER] -- CMD... - run client i to completion in the client namespace.
cli_run() {
    local d=$1 i=$2 feeder=cli_feed rc
    shift 2
    if [ "$1" != "--" ]; then
        feeder=$1
        shift
    fi
    shift
    "$feeder" "$d" "$i" | in_ns "$NS_C" 60 "$@" >"$d/co$i" 2>"$d/cli$i.err"
    rc=$?
    touch "$d/c$i.done"
    return $rc
}

# Common peer command lines.
ossl_srv() { # ossl_srv D N [rsa|ecdsa] EXTRA...
    local d=$1 n=$2 cert=${3:-rsa}
    shift 3
    srv_start "$d" "$n" openssl s_server -accept "$S_PORT" -naccept "$n" -quiet \
        -cert "$T_PKI/$cert.crt" -key "$T_PKI/$cert.key" -keylogfile "$d/skeys.log" "$@"
}
ossl_cli() { # ossl_cli D I [FEEDER] -- EXTRA...
    local d=$1 i=$2 feeder=cli_feed
    shift 2
    if [ "$1" != "--" ]; then
        feeder=$1
        shift
    fi
    shift
    cli_run "$d" "$i" "$feeder" -- openssl s_client -connect "${T_CONNECT:-$S_IP:$S_PORT}" \
        -servername "$CERT_SUBJECT_CN" -CAfile "$T_PKI/ca.crt" -quiet -no_ign_eof \
        -keylogfile "$d/keys.log" "$@"
}

# new_case NAME - start a case: sets the globals name=NAME and d=a fresh case directory.
new_case() {
    name=$1
    d=$T_WORK/$1
    rm -rf "$d"
    mkdir -p "$d"
    T_CASES=$((T_CASES + 1))
}

# check_peers D N [noserver] - the capture is complete and the peers got exactly what the
# other side sent.  A failure
# here is a harness (or peer) problem, not an mmtlsd one: it is reported as HARNESS.
check_peers() {
    local d=$1 n=$2 i name
    name=$(basename "$d")
    [ "$T_CAP_BAD" = 0 ] || return 1
    for i in $(seq 1 "$n"); do
        if [ -e "$d/sp$i" ] && ! cmp -s "$d/sp$i" "$d/co$i"; then
            t_fail "$name" "HARNESS: client $i received $(fsize "$d/co$i") bytes, server sent" \
                "$(fsize "$d/sp$i") (cmp: $(cmp "$d/sp$i" "$d/co$i" 2>&1 | head -1));" \
                "client stderr: $(tail -c 400 "$d/cli$i.err" | tr '\n' ' ')"
            return 1
        fi
    done
    if [ "${3:-}" != noserver ]; then
        local want=$d/srv_expect
        : >"$want"
        for i in $(seq 1 "$n"); do cat "$d/cp$i" >>"$want"; done
        if ! cmp -s "$want" "$d/so"; then
            t_fail "$name" "HARNESS: server received $(fsize "$d/so") bytes, clients sent" \
                "$(fsize "$want"); server stderr: $(tail -c 400 "$d/srv.err" | tr '\n' ' ')"
            return 1
        fi
    fi
    return 0
}

# client_ports CAP - the client ports of the TCP connections in CAP, in order of their SYN.
client_ports() {
    tcpdump -nr "$1" tcp 2>/dev/null | awk '/Flags \[S\],/ {
        for (i = 2; i <= NF; i++) {
            if ($i == ">") {
                n = split($(i - 1), a, ".")
                if (!seen[a[n]]++) {
                    print a[n]
                }
                break
            }
        }
    }'
}

# run_mmtlsd CAP OUT [ARGS...] - run mmtlsd (bounded); sets MM_RC; writes OUT/{eve.json,dump,log}.
MM_RC=0
run_mmtlsd() {
    local cap=$1 out=$2
    shift 2
    rm -rf "$out"
    mkdir -p "$out/dump"
    timeout -k 5 120 "$MMTLSD" -r "$cap" -l "$out" --dump-plaintext "$out/dump" "$@" \
        >"$out/log" 2>&1
    MM_RC=$?
}

# mm_ok NAME OUT - mmtlsd exited 0 (and not by a signal or a timeout).
mm_ok() {
    if [ "$MM_RC" != 0 ]; then
        t_fail "$1" "mmtlsd exit code $MM_RC$([ "$MM_RC" -gt 128 ] && echo " (signal $((MM_RC - 128)))"):" \
            "$(tail -c 600 "$2/log" | tr '\n' ' ')"
        return 1
    fi
    [ -s "$2/eve.json" ] || {
        t_fail "$1" "no $2/eve.json"
        return 1
    }
}

# dump_file OUT PORT DIR - the dump file of the connection with client port PORT.
dump_file() {
    local f
    for f in "$1"/dump/f*-*_"$2"-*_*."$3"; do
        [ -e "$f" ] && {
            echo "$f"
            return 0
        }
    done
    echo "$1/dump/MISSING-port$2.$3"
}

# cmp_dump NAME EXPECTED ACTUAL - byte-exact comparison with a readable summary.
# A missing ACTUAL file equals an empty one.
cmp_dump() {
    local name=$1 exp=$2 act=$3 es as off
    es=$(fsize "$exp")
    as=$(fsize "$act")
    if [ ! -e "$act" ] && [ "$es" = 0 ]; then
        return 0
    fi
    if [ -e "$act" ] && cmp -s "$exp" "$act"; then
        return 0
    fi
    if [ ! -e "$act" ]; then
        t_fail "$name" "dump $(basename "$act") missing (expected $es bytes); dumps present:" \
            "$(cd "$(dirname "$act")" && ls -m 2>/dev/null | head -c 300)"
        return 1
    fi
    off=$(cmp "$exp" "$act" 2>&1 | head -1)
    t_fail "$name" "dump $(basename "$act"): $as bytes, expected $es; first difference: $off"
    $PY - "$exp" "$act" <<'EOF' >&2
import sys
a = open(sys.argv[1], 'rb').read()
b = open(sys.argv[2], 'rb').read()
n = next((i for i in range(min(len(a), len(b))) if a[i] != b[i]), min(len(a), len(b)))
print('    expected[%d:]: %r' % (n, a[n:n + 48]))
print('    actual  [%d:]: %r' % (n, b[n:n + 48]))
if b and b in a:
    print('    (actual is a substring of expected at offset %d)' % a.find(b))
elif len(b) < len(a) and a.startswith(b):
    print('    (actual is a prefix of expected)')
EOF
    return 1
}

# eve_tls NAME OUT PORT EXPR... - the "tls" event of the connection with client port PORT
# satisfies every python expression EXPR (names: e = the event, tls = e["tls"],
# errs = the list of error codes of the session (from tls.errors and tls_error events)).
eve_tls() {
    local name=$1 out=$2 port=$3
    shift 3
    $PY - "$out/eve.json" "$port" "$@" <<'EOF' || t_fail "$name" "eve.json check failed (above)"
import json, sys
path, port, exprs = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
evs = []
for n, line in enumerate(open(path, encoding='utf-8', errors='replace'), 1):
    line = line.strip()
    if not line:
        continue
    try:
        evs.append(json.loads(line))
    except ValueError as ex:
        print('    eve.json line %d is not JSON: %s: %r' % (n, ex, line[:200]), file=sys.stderr)
        sys.exit(1)
mine = [e for e in evs if e.get('src_port') == port or e.get('dest_port') == port]
tlsev = [e for e in mine if e.get('event_type') == 'tls']
if len(tlsev) != 1:
    print('    %d "tls" events for client port %d (want 1); event types for it: %s'
          % (len(tlsev), port, [e.get('event_type') for e in mine]), file=sys.stderr)
    sys.exit(1)
e = tlsev[0]
tls = e.get('tls', {})
errs = [x.get('code') for x in tls.get('errors', []) if isinstance(x, dict)]
for x in mine:
    if x.get('event_type') == 'tls_error':
        t = x.get('tls_error', x.get('error', x))
        if isinstance(t, dict) and t.get('code'):
            errs.append(t.get('code'))
ok = True
if e.get('src_port') != port:
    print('    src_port is %r, the client port is %d' % (e.get('src_port'), port), file=sys.stderr)
    ok = False
for x in exprs:
    try:
        r = eval(x, {}, {'e': e, 'tls': tls, 'errs': errs})
    except Exception as ex:
        r = False
        print('    %s -> %s: %s' % (x, type(ex).__name__, ex), file=sys.stderr)
    if not r:
        ok = False
        print('    not true: %s' % x, file=sys.stderr)
if not ok:
    print('    the event: %s' % json.dumps(e)[:1500], file=sys.stderr)
    sys.exit(1)
EOF
}

# mm_check NAME D N [EVE-EXPR...] - run mmtlsd on D/cap.pcap with D/keys.log and check, for
# each of the N connections, both dumps against exp_c2s$i/exp_s2c$i (default cp$i/sp$i) and
# the eve expressions (each applies to every connection, or "N:EXPR" to connection N only).
# MM_CAP / MM_KEYS override the capture / key log; MM_ARGS adds arguments.
mm_check() {
    local name=$1 d=$2 n=$3 i ports port out ec es
    shift 3
    have_mmtlsd || return 0
    local cap=${MM_CAP:-$d/cap.pcap} keys=${MM_KEYS:-$d/keys.log}
    out=${MM_OUT:-$d/mm}
    if [ "$cap" = - ]; then
        rm -rf "$out"
        mkdir -p "$out/dump"
        timeout -k 5 120 "$MMTLSD" -r - --keylog "$keys" -l "$out" --dump-plaintext "$out/dump" \
            ${MM_ARGS:-} <"$d/cap.pcap" >"$out/log" 2>&1
        MM_RC=$?
        cap=$d/cap.pcap
    else
        # shellcheck disable=SC2086
        run_mmtlsd "$cap" "$out" --keylog "$keys" ${MM_ARGS:-}
    fi
    mm_ok "$name" "$out" || return 1
    mapfile -t ports < <(client_ports "$cap")
    if [ "${#ports[@]}" != "$n" ]; then
        t_fail "$name" "HARNESS: $n connections expected in the capture, found ${#ports[@]}"
        return 1
    fi
    for i in $(seq 1 "$n"); do
        port=${ports[$((i - 1))]}
        ec=$d/exp_c2s$i
        [ -e "$ec" ] || ec=$d/cp$i
        es=$d/exp_s2c$i
        [ -e "$es" ] || es=$d/sp$i
        cmp_dump "${name}[conn $i c2s]" "$ec" "$(dump_file "$out" "$port" c2s)"
        cmp_dump "${name}[conn $i s2c]" "$es" "$(dump_file "$out" "$port" s2c)"
        # Expressions "N:EXPR" apply to connection N only.
        local x ex=()
        for x in "$@"; do
            if [[ $x =~ ^([0-9]+):(.*)$ ]]; then
                [ "${BASH_REMATCH[1]}" = "$i" ] && ex+=("${BASH_REMATCH[2]}")
            else
                ex+=("$x")
            fi
        done
        if [ ${#ex[@]} -gt 0 ]; then
            eve_tls "${name}[conn $i]" "$out" "$port" "${ex[@]}"
        fi
        # MMTLS_TSHARK=1: also check that tshark decrypts the capture to the same bytes.
        if [ "${MMTLS_TSHARK:-0}" = 1 ] && [ -z "${MM_KEYS:-}" ] && [ -z "${MM_CAP:-}" ] &&
            command -v tshark >/dev/null 2>&1; then
            tshark_verify "$d" $((i - 1)) "$i" >"$out/tshark$i.txt" 2>&1 ||
                t_fail "${name}[conn $i]" "HARNESS: $(cat "$out/tshark$i.txt")"
        fi
    done
}

# Standard eve expectations for a fully decrypted session.
eve_std() { # eve_std VERSION CIPHER [ALPN]
    local a=()
    a+=("tls.get('version') == '$1'" "tls.get('cipher_suite') == '$2'"
        "tls.get('key_status') == 'decrypted'" "tls.get('sni') == '$CERT_SUBJECT_CN'"
        "'$CERT_SUBJECT_CN' in str(tls.get('subject'))"
        "'$CERT_ISSUER_CN' in str(tls.get('issuerdn'))"
        "not [c for c in errs if c != 'early_data_skipped']"
        "e.get('dest_port') == $S_PORT"
        "len(tls.get('ja3', {}).get('hash', '')) == 32"
        "tls['ja3'].get('string', '').count(',') == 4"
        "len(tls.get('ja4', '')) == 36 and tls['ja4'][0] + tls['ja4'][3] == 'td'")
    if [ -n "${3:-}" ]; then
        a+=("tls.get('alpn') == '$3'")
    fi
    EVE=("${a[@]}")
}

# tshark_verify D [STREAM] [I] - optional, for humans: does tshark decrypt D/cap.pcap with
# D/keys.log to exactly exp_c2s$I/cp$I and exp_s2c$I/sp$I?  (The tests never depend on it.)
tshark_verify() {
    local d=$1 s=${2:-0} i=${3:-1} ec es
    ec=$d/exp_c2s$i
    [ -e "$ec" ] || ec=$d/cp$i
    es=$d/exp_s2c$i
    [ -e "$es" ] || es=$d/sp$i
    tshark -r "${TSHARK_CAP:-$d/cap.pcap}" -o tcp.reassemble_out_of_order:TRUE \
        -o "tls.keylog_file:$d/keys.log" -q -z "follow,tls,raw,$s" \
        2>/dev/null | $PY -c '
import sys
node0, other = bytearray(), bytearray()
node0_is_server = False
body = False
for line in sys.stdin:
    if line.startswith("====="):
        body = not body
        continue
    if line.startswith("Node 0:"):
        node0_is_server = line.strip().endswith(":" + sys.argv[3])
    if not body or line.startswith(("Follow:", "Filter:", "Node ")):
        continue
    # Node 0 data lines start in column 0, node 1 data lines with a tab.
    (other if line.startswith("\t") else node0).extend(bytes.fromhex(line.strip()))
c2s, s2c = (other, node0) if node0_is_server else (node0, other)
ec, es = open(sys.argv[1], "rb").read(), open(sys.argv[2], "rb").read()
ok = (c2s == ec, s2c == es)
print("tshark: c2s %d bytes %s, s2c %d bytes %s" % (len(c2s), "OK" if ok[0] else "DIFFERS",
      len(s2c), "OK" if ok[1] else "DIFFERS"))
sys.exit(0 if all(ok) else 1)
' "$ec" "$es" "$S_PORT"
}

# cap_has CAP HEX - the capture file contains the byte string HEX (e.g. a magic value).
cap_has() {
    $PY -c 'import sys; sys.exit(0 if bytes.fromhex(sys.argv[2]) in open(sys.argv[1], "rb").read() else 1)' "$1" "$2"
}

# is_prefix FILE OF - FILE (missing = empty) is a prefix of OF.
is_prefix() {
    [ -e "$1" ] || return 0
    $PY -c 'import sys; a = open(sys.argv[1], "rb").read(); sys.exit(0 if open(sys.argv[2], "rb").read().startswith(a) else 1)' "$1" "$2"
}

# nginx_start D - nginx in the server namespace (foreground, one process) serving $NGINX_ROOT over
# HTTPS on $S_IP:$S_PORT and [$S_IP6]:$S_PORT (TLS 1.2 and 1.3), access log D/access.log
nginx_start() {
    local d=$1
    mkdir -p "$d/nginx"
    cat >"$d/nginx.conf" <<EOF
daemon off;
master_process off;
worker_processes 1;
pid $d/nginx/nginx.pid;
error_log $d/nginx/error.log info;
events { worker_connections 64; }
http {
    log_format st '\$request_method \$request_uri \$status';
    access_log $d/access.log st;
    client_body_temp_path $d/nginx/body;
    proxy_temp_path $d/nginx/proxy;
    fastcgi_temp_path $d/nginx/fastcgi;
    uwsgi_temp_path $d/nginx/uwsgi;
    scgi_temp_path $d/nginx/scgi;
    default_type application/octet-stream;
    server {
        listen $S_IP:$S_PORT ssl http2;
        listen [$S_IP6]:$S_PORT ssl http2;
        ssl_certificate $T_PKI/rsa.crt;
        ssl_certificate_key $T_PKI/rsa.key;
        ssl_protocols TLSv1.2 TLSv1.3;
        root $NGINX_ROOT;
    }
}
EOF
    ip netns exec "$NS_S" timeout -k 5 120 nginx -c "$d/nginx.conf" -p "$d/nginx" \
        >"$d/nginx.out" 2>&1 &
    T_SRV_PID=$!
    T_PIDS+=("$T_SRV_PID")
    wait_port "$S_PORT" || {
        t_fail "$(basename "$d")" "nginx did not listen: $(tail -c 600 "$d/nginx/error.log")"
        return 1
    }
}
