#!/usr/bin/env bash
# tests/integration/test_keyagent.sh - mmtls-keyagent end to end, on 127.0.0.1 only.
#
# The receiving end is `openssl s_server -tls1_3 -Verify 1` (a stand-in for mmtlsd's key server):
# it requires a client certificate from the test CA and writes what it receives to a file, which
# a small python decoder of docs/keyproto.md framing turns into messages.  Key logs are written
# by real programs (openssl s_client -keylogfile against a local openssl s_server) and by the
# test itself (synthetic groups with random secrets).
#
# Cases: real TLS 1.3 and 1.2 key logs shipped with the file's secrets; an appended group
# delivered within 1 s; a partial line waits for its newline; an overlong line is skipped; a
# group without application secrets is sent after 2 s; SIGUSR1 and exit counters; a restart
# does not re-send but picks up what was appended meanwhile; rotation (mv + new file, with
# writes to the moved file in between); truncation; a file replaced while the agent was down
# is read from its start; a FIFO with two writers in turn; the key server down at start
# (delivered after it comes up); a client certificate from another CA is refused; bad options.
#
# Environment: MMTLS_KEYAGENT (the binary; CTest sets it), MMTLS_KEEP=1 keeps the work
# directory.  Exit codes: 0 pass, 1 fail, 77 skip.

set -u
set -o pipefail

T_NAME=test_keyagent
SRCDIR=${MMTLS_SRCDIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
KA=${MMTLS_KEYAGENT:-$SRCDIR/build/tools/mmtls-keyagent/mmtls-keyagent}
W=$(mktemp -d "${TMPDIR:-/tmp}/mmtls-$T_NAME.XXXXXX")
FAILS=0
PIDS=()

log() { printf '[%s] %s\n' "$T_NAME" "$*"; }
fail() {
    FAILS=$((FAILS + 1))
    printf '[%s] FAIL %s: %s\n' "$T_NAME" "$1" "${*:2}" >&2
}
skip() {
    printf '[%s] SKIP: %s\n' "$T_NAME" "$*" >&2
    exit 77
}
cleanup() {
    local p
    for p in "${PIDS[@]}"; do
        kill "$p" 2>/dev/null
    done
    for p in "${PIDS[@]}"; do
        wait "$p" 2>/dev/null
    done
    if [ "$FAILS" = 0 ] && [ "${MMTLS_KEEP:-0}" != 1 ]; then
        rm -rf "$W"
    else
        printf '[%s] work directory kept: %s\n' "$T_NAME" "$W" >&2
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

for c in openssl python3 timeout; do
    command -v "$c" >/dev/null || skip "$c not found"
done
[ -x "$KA" ] || skip "mmtls-keyagent not built ($KA)"
cd "$W" || exit 1

# --- PKI: a CA, the key server's certificate (for 127.0.0.1), a client certificate ---------
cat >ext.cnf <<'EOF'
[srv]
subjectAltName=IP:127.0.0.1,DNS:localhost
basicConstraints=CA:FALSE
[cli]
basicConstraints=CA:FALSE
extendedKeyUsage=clientAuth
EOF
mkcert() {
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$1.key" \
        -out "$1.csr" -subj "/CN=$1" 2>/dev/null &&
        openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -out "$1.crt" \
            -days 2 -extfile ext.cnf -extensions "$1" 2>/dev/null
}
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key \
    -out ca.crt -subj "/CN=keyagent test CA" -days 2 2>/dev/null || skip "openssl cannot make a CA"
mkcert srv && mkcert cli || skip "openssl cannot issue certificates"

# --- python helpers ------------------------------------------------------------------------
cat >kp.py <<'EOF'
# docs/keyproto.md decoder and key log helpers for test_keyagent.sh (standard library only).
import json, os, sys

KIND_OF_LABEL = {"CLIENT_EARLY_TRAFFIC_SECRET": 1, "CLIENT_HANDSHAKE_TRAFFIC_SECRET": 2,
                 "SERVER_HANDSHAKE_TRAFFIC_SECRET": 3, "CLIENT_TRAFFIC_SECRET_0": 4,
                 "SERVER_TRAFFIC_SECRET_0": 5, "CLIENT_RANDOM": 32}

def decode(path):
    """Messages in a received byte stream; a trailing partial message is left out."""
    data = open(path, "rb").read() if os.path.exists(path) else b""
    msgs, off = [], 0
    while len(data) - off >= 4:
        ver, typ, ln = data[off], data[off + 1], int.from_bytes(data[off + 2:off + 4], "big")
        if ver != 1 or typ not in (1, 2, 3) or ln > 512:
            raise SystemExit("bad header at %d: %r" % (off, data[off:off + 4]))
        if len(data) - off - 4 < ln:
            break
        b = data[off + 4:off + 4 + ln]
        off += 4 + ln
        if typ == 3:
            if ln != 0:
                raise SystemExit("KEEPALIVE with a body")
            msgs.append({"type": 3})
            continue
        if typ != 1:
            raise SystemExit("unexpected type %d" % typ)
        cr, flags, p = b[:32].hex(), b[32], 33
        if flags & 1:
            alen = 4 if b[p] == 4 else 16
            p += 1 + 2 * alen + 4
        tv, cs, n = int.from_bytes(b[p:p + 2], "big"), int.from_bytes(b[p + 2:p + 4], "big"), b[p + 4]
        p += 5
        secrets = {}
        for _ in range(n):
            k, sl = b[p], b[p + 1]
            secrets[k] = b[p + 2:p + 2 + sl].hex()
            p += 2 + sl
        if p != len(b):
            raise SystemExit("KEYS body not consumed exactly")
        msgs.append({"type": 1, "cr": cr, "flags": flags, "version": tv, "suite": cs,
                     "secrets": secrets})
    return msgs

def keylog(paths):
    """What the key logs say: {client_random: {kind: secret}} (exporters left out)."""
    out = {}
    for path in paths:
        for line in open(path):
            f = line.split()
            if len(f) == 3 and f[0] in KIND_OF_LABEL:
                out.setdefault(f[1].lower(), {})[KIND_OF_LABEL[f[0]]] = f[2].lower()
    return out

def ahead(m):
    """A TLS 1.3 message with the server handshake secret sent ahead of the rest (at most the
    early and handshake secrets): the agent sends it as soon as the line is read."""
    return m["version"] == 0x0304 and 3 in m["secrets"] and set(m["secrets"]) <= {1, 2, 3}

def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "count":  # RECV -> number of client randoms with KEYS messages
        print(len({m["cr"] for m in decode(args[0]) if m["type"] == 1}))
    elif cmd == "msgs":  # RECV -> number of KEYS messages
        print(sum(1 for m in decode(args[0]) if m["type"] == 1))
    elif cmd == "dump":
        for m in decode(args[0]):
            print(json.dumps(m, sort_keys=True))
    elif cmd == "check":  # RECV KEYLOG... -> every group shipped once, exactly
        msgs = [m for m in decode(args[0]) if m["type"] == 1]
        want = keylog(args[1:])
        got = {}
        for m in msgs:
            g = got.get(m["cr"])
            if g is None:
                got[m["cr"]] = dict(m, secrets=dict(m["secrets"]), n=1)
                continue
            # the second message of a TLS 1.3 group whose handshake secrets went ahead: it
            # repeats them and adds the rest
            if g["n"] != 1 or not ahead(g) or any(m["secrets"].get(k) != v
                                                   for k, v in g["secrets"].items()):
                raise SystemExit("client random %s sent twice" % m["cr"])
            g["secrets"].update(m["secrets"])
            g["n"] = 2
        bad = 0
        for cr, sec in want.items():
            m = got.get(cr)
            if m is None:
                print("missing %s" % cr); bad += 1; continue
            tls12 = 32 in sec
            ev = {"secrets": sec, "version": 0x0303 if tls12 else 0x0304, "suite": 0,
                  "flags": 8 | (4 if 1 in sec else 0)}
            gv = {"secrets": m["secrets"], "version": m["version"], "suite": m["suite"],
                  "flags": m["flags"]}
            if ev != gv:
                print("differs %s: want %s got %s" % (cr, ev, gv)); bad += 1
        for cr in got:
            if cr not in want:
                print("unexpected %s" % cr); bad += 1
        sys.exit(1 if bad else 0)
    elif cmd == "gen13":  # FILE [kinds] -> appends one TLS 1.3 group with random secrets
        kinds = args[1].split(",") if len(args) > 1 else ["CLIENT_HANDSHAKE_TRAFFIC_SECRET",
            "SERVER_HANDSHAKE_TRAFFIC_SECRET", "CLIENT_TRAFFIC_SECRET_0", "SERVER_TRAFFIC_SECRET_0"]
        cr = os.urandom(32).hex()
        with open(args[0], "a") as f:
            for k in kinds:
                f.write("%s %s %s\n" % (k, cr, os.urandom(48).hex()))
            f.write("EXPORTER_SECRET %s %s\n" % (cr, os.urandom(48).hex()))
    elif cmd == "gen12":
        with open(args[0], "a") as f:
            f.write("CLIENT_RANDOM %s %s\n" % (os.urandom(32).hex(), os.urandom(48).hex()))

main()
EOF
kp() { python3 "$W/kp.py" "$@"; }

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# start_keyserver NAME PORT: openssl s_server requiring a client certificate; received bytes in
# NAME.recv.  Its stdin is a FIFO held open by this shell so that it never sees end of file.
start_keyserver() {
    local fd
    rm -f "$1.in"
    mkfifo "$1.in"
    exec {fd}<>"$1.in"
    timeout 300 openssl s_server -tls1_3 -Verify 1 -verify_return_error -CAfile ca.crt \
        -cert srv.crt -key srv.key -accept "127.0.0.1:$2" -quiet <&"$fd" >>"$1.recv" 2>"$1.err" &
    PIDS+=($!)
    for _ in $(seq 50); do
        if python3 -c 'import socket,sys; s=socket.create_connection(("127.0.0.1",int(sys.argv[1])),0.2)' \
            "$2" 2>/dev/null; then
            return 0
        fi
        sleep 0.1
    done
    fail "$1" "key server on port $2 did not start"
    return 1
}

# start_agent NAME ARGS...: the agent under timeout; AG_PID is the agent itself (not timeout).
start_agent() {
    local name=$1 tpid
    shift
    timeout 300 "$KA" --ca ca.crt --cert cli.crt --key cli.key -v "$@" 2>>"$name.agent.err" &
    tpid=$!
    PIDS+=("$tpid")
    AG_PID=""
    for _ in $(seq 50); do
        AG_PID=$(cat "/proc/$tpid/task/$tpid/children" 2>/dev/null | awk '{print $1}')
        [ -n "$AG_PID" ] && break
        sleep 0.02
    done
    AG_TPID=$tpid
}

# stop_agent: SIGTERM, expect exit 0.
stop_agent() {
    local rc
    kill -TERM "$AG_PID"
    wait "$AG_TPID"
    rc=$?
    [ "$rc" = 0 ] || fail "$1" "agent exited with $rc after SIGTERM"
}

# wait_count RECV N SECONDS: waits until RECV holds at least N KEYS messages.
wait_count() {
    local end=$((SECONDS + $3))
    while [ "$SECONDS" -le "$end" ]; do
        [ "$(kp count "$1")" -ge "$2" ] && return 0
        sleep 0.05
    done
    return 1
}

ms() { date +%s%3N; }

# --- 1. real key logs, append latency, partial and long lines, 2 s flush, restart ----------
case_main() {
    local c=main port wport n t0 t1 rc
    port=$(free_port)
    start_keyserver ks1 "$port" || return
    : >kl.log
    start_agent a1 --keylog kl.log --keyserver "127.0.0.1:$port"

    # real programs: openssl s_client (TLS 1.3 and 1.2) against a local openssl s_server
    wport=$(free_port)
    timeout 60 openssl s_server -accept "127.0.0.1:$wport" -cert srv.crt -key srv.key -www \
        </dev/null >/dev/null 2>&1 &
    PIDS+=($!)
    sleep 0.5
    for v in -tls1_3 -tls1_2 -tls1_3; do
        printf 'GET / HTTP/1.0\r\n\r\n' | timeout 10 openssl s_client -connect "127.0.0.1:$wport" \
            "$v" -keylogfile kl.log -quiet >/dev/null 2>&1 || fail $c "s_client $v failed"
    done
    grep -q '^CLIENT_RANDOM ' kl.log && grep -q '^SERVER_TRAFFIC_SECRET_0 ' kl.log ||
        fail $c "s_client wrote no TLS 1.2/1.3 key log lines"
    wait_count ks1.recv 3 5 || fail $c "real key log: $(kp count ks1.recv) of 3 messages"
    kp check ks1.recv kl.log || fail $c "received secrets differ from the key log"

    # an appended group arrives within 1 s
    n=$(kp count ks1.recv)
    kp gen13 group.tmp
    t0=$(ms)
    cat group.tmp >>kl.log
    wait_count ks1.recv $((n + 1)) 3 || fail $c "appended group not delivered"
    t1=$(ms)
    [ $((t1 - t0)) -le 1000 ] || fail $c "appended group took $((t1 - t0)) ms"
    log "append delivered in $((t1 - t0)) ms"

    # a partial last line waits for its newline
    n=$(kp count ks1.recv)
    kp gen12 part.tmp
    head -c 50 part.tmp >>kl.log
    sleep 0.7
    [ "$(kp count ks1.recv)" = "$n" ] || fail $c "a partial line was sent"
    tail -c +51 part.tmp >>kl.log
    cat part.tmp >>expect.extra
    wait_count ks1.recv $((n + 1)) 3 || fail $c "completed partial line not delivered"

    # an overlong line is skipped, the next one is read
    python3 -c 'print("CLIENT_RANDOM " + "ab" * 1500)' >>kl.log
    kp gen12 kl.log
    wait_count ks1.recv $((n + 2)) 3 || fail $c "line after an overlong one not delivered"

    # a group without application secrets: its handshake secrets go at once (a KEYS of their
    # own, for an inline middlebox holding the server's TLS 1.3 flight), nothing more after 2 s
    # (nothing new); a group without the server handshake secret waits ~2 s
    n=$(kp count ks1.recv)
    m=$(kp msgs ks1.recv)
    t0=$(ms)
    kp gen13 kl.log CLIENT_HANDSHAKE_TRAFFIC_SECRET,SERVER_HANDSHAKE_TRAFFIC_SECRET
    wait_count ks1.recv $((n + 1)) 1 || fail $c "handshake secrets not sent at once"
    t1=$(ms)
    log "handshake secrets sent after $((t1 - t0)) ms"
    kp gen13 kl.log CLIENT_HANDSHAKE_TRAFFIC_SECRET,CLIENT_TRAFFIC_SECRET_0
    sleep 1.2
    [ "$(kp count ks1.recv)" = "$((n + 1))" ] || fail $c "incomplete group sent before 2 s"
    wait_count ks1.recv $((n + 2)) 4 || fail $c "incomplete group never sent"
    sleep 0.3
    [ "$(kp msgs ks1.recv)" = "$((m + 2))" ] ||
        fail $c "$(($(kp msgs ks1.recv) - m)) messages for two incomplete groups, want 2"
    kp check ks1.recv kl.log || fail $c "received secrets differ from the key log"

    # counters on SIGUSR1
    kill -USR1 "$AG_PID"
    sleep 0.3
    grep -q 'long 1,' a1.agent.err || fail $c "SIGUSR1 counters missing or long != 1"

    # restart: nothing old is sent again; what was appended while the agent was down is
    n=$(kp count ks1.recv)
    stop_agent $c
    grep -q "sent $(kp msgs ks1.recv)," a1.agent.err ||
        fail $c "exit counters do not say sent $(kp msgs ks1.recv)"
    kp gen13 kl.log
    start_agent a2 --keylog kl.log --keyserver "127.0.0.1:$port"
    wait_count ks1.recv $((n + 1)) 3 || fail $c "group written while stopped not delivered"
    sleep 1
    n=$((n + 1))
    [ "$(kp count ks1.recv)" = "$n" ] || fail $c "restart re-sent $(($(kp count ks1.recv) - n)) messages"
    kp gen13 kl.log
    n=$((n + 1))
    wait_count ks1.recv $n 3 || fail $c "group after restart not delivered"

    # rotation: mv, writes to the moved file, then a new file read from its start
    mv kl.log kl.log.1
    kp gen13 kl.log.1
    n=$((n + 1))
    wait_count ks1.recv $n 3 || fail $c "write to the moved file not delivered"
    kp gen13 kl.log
    kp gen12 kl.log
    n=$((n + 2))
    wait_count ks1.recv $n 3 || fail $c "new file after rotation not delivered"

    # truncation: the file is emptied and rewritten (shorter)
    sleep 0.2
    cp kl.log kl.log.2
    : >kl.log
    sleep 0.3
    kp gen12 kl.log
    n=$((n + 1))
    wait_count ks1.recv $n 3 || fail $c "rewritten file after truncation not delivered"

    # replaced while the agent is down: the state names another file, the new one is read
    # from its start
    stop_agent $c
    mv kl.log kl.log.3
    kp gen13 kl.log
    start_agent a5 --keylog kl.log --keyserver "127.0.0.1:$port"
    n=$((n + 1))
    wait_count ks1.recv $n 3 || fail $c "file replaced while stopped not read from its start"
    sleep 0.5
    [ "$(kp count ks1.recv)" = $n ] || fail $c "$(kp count ks1.recv) messages, want $n"
    stop_agent $c
    grep -q 'kl.log: reading from the start' a5.agent.err || fail $c "no 'reading from the start'"
    # every group of every file exactly once
    cat kl.log.1 kl.log.2 kl.log.3 kl.log >all.log
    kp check ks1.recv all.log || fail $c "rotation/truncation: received != key logs"
    grep -q '^mmtls-keyagent-state 1 ' kl.log.mmtls-agent-state || fail $c "no state file"
    [ $FAILS = 0 ] && log "main: ok ($(kp count ks1.recv) messages)"
}

# --- 2. FIFO --------------------------------------------------------------------------------
case_fifo() {
    local c=fifo port
    port=$(free_port)
    start_keyserver ks2 "$port" || return
    mkfifo kl.fifo
    start_agent a3 --keylog kl.fifo --keyserver "127.0.0.1:$port"
    sleep 0.3
    kp gen13 fifo1.txt
    kp gen12 fifo2.txt
    timeout 5 sh -c 'cat fifo1.txt >kl.fifo' || fail $c "writer 1 blocked"
    wait_count ks2.recv 1 3 || fail $c "first writer's group not delivered"
    timeout 5 sh -c 'cat fifo2.txt >kl.fifo' || fail $c "writer 2 blocked (agent did not reopen)"
    wait_count ks2.recv 2 3 || fail $c "second writer's group not delivered"
    stop_agent $c
    cat fifo1.txt fifo2.txt >fifo.all
    kp check ks2.recv fifo.all || fail $c "FIFO: received != written"
    [ -e kl.fifo.mmtls-agent-state ] && fail $c "a state file was written for a FIFO"
    log "fifo: done"
}

# --- 3. key server down at start -------------------------------------------------------------
case_late_server() {
    local c=late port
    port=$(free_port)
    : >late.log
    kp gen13 late.log
    kp gen12 late.log
    start_agent a4 --keylog late.log --keyserver "127.0.0.1:$port"
    sleep 1.5
    kp gen13 late.log
    start_keyserver ks3 "$port" || return
    wait_count ks3.recv 3 15 || fail $c "entries not delivered after the server came up"
    stop_agent $c
    kp check ks3.recv late.log || fail $c "late server: received != key log"
    grep -q 'retrying' a4.agent.err || fail $c "no retry message"
    log "late server: done"
}

# --- 4. a client certificate the key server does not accept --------------------------------
case_bad_cert() {
    local c=badcert port
    port=$(free_port)
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout rogue.key \
        -out rogue.crt -subj "/CN=rogue" -days 2 2>/dev/null || { fail $c "openssl req"; return; }
    start_keyserver ks4 "$port" || return
    : >rogue.log
    kp gen12 rogue.log
    timeout 300 "$KA" --keylog rogue.log --keyserver "127.0.0.1:$port" --ca ca.crt \
        --cert rogue.crt --key rogue.key 2>rogue.agent.err &
    PIDS+=($!)
    local tpid=$!
    sleep 2
    [ "$(kp count ks4.recv)" = 0 ] || fail $c "a rogue client's message was accepted"
    grep -q 'retrying' rogue.agent.err || fail $c "rejection not reported: $(cat rogue.agent.err)"
    kill "$tpid"
    wait "$tpid" 2>/dev/null
    log "bad certificate: done ($(head -n1 rogue.agent.err))"
}

# --- 5. errors ------------------------------------------------------------------------------
case_errors() {
    local c=errors out rc
    out=$(timeout 5 "$KA" --keyserver 127.0.0.1:1 --ca ca.crt --cert cli.crt --key cli.key 2>&1)
    rc=$?
    [ $rc != 0 ] && [ "$(printf '%s\n' "$out" | wc -l)" = 1 ] || fail $c "missing --keylog: rc $rc: $out"
    out=$(timeout 5 "$KA" --keylog kl.log --keyserver 127.0.0.1:1 --ca nope.pem --cert cli.crt \
        --key cli.key 2>&1)
    rc=$?
    [ $rc != 0 ] && printf '%s' "$out" | grep -q 'nope.pem' || fail $c "missing CA: rc $rc: $out"
    out=$(timeout 5 "$KA" --keylog kl.log --keyserver 127.0.0.1 --ca ca.crt --cert cli.crt \
        --key cli.key 2>&1)
    rc=$?
    [ $rc != 0 ] && printf '%s' "$out" | grep -q 'HOST:PORT' || fail $c "bad --keyserver: rc $rc: $out"
    out=$(timeout 5 "$KA" --keylog kl.log --keyserver 127.0.0.1:1 --ca ca.crt --cert cli.crt \
        --key srv.key 2>&1)
    rc=$?
    [ $rc != 0 ] && printf '%s' "$out" | grep -q -- '--key' || fail $c "mismatched key: rc $rc: $out"
    out=$(timeout 5 "$KA" --keylog /nonexistent-dir/kl.log --keyserver 127.0.0.1:1 --ca ca.crt \
        --cert cli.crt --key cli.key 2>&1)
    rc=$?
    [ $rc != 0 ] || fail $c "key log in a missing directory accepted"
    out=$(MMTLS_KEYSERVER=127.0.0.1 timeout 5 "$KA" --keylog kl.log --ca ca.crt --cert cli.crt \
        --key cli.key 2>&1)
    rc=$?
    [ $rc != 0 ] && printf '%s' "$out" | grep -q 'HOST:PORT' || fail $c "MMTLS_KEYSERVER not read: $out"
    log "errors: done"
}

case_main
case_fifo
case_late_server
case_bad_cert
case_errors

if [ "$FAILS" != 0 ]; then
    log "$FAILS failure(s)"
    exit 1
fi
log "all passed"
exit 0
