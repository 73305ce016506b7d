#!/usr/bin/env bash
# Resource floods against the inline middlebox (issue 7, "Resources"; docs/CONFIG.md, "Resources
# and exception policies"): client -- mmtlsd -i c0:s0 (small caps, fail closed) -- nginx.
# The flood comes from a second address of the client namespace (198.18.4.10); the legitimate
# client (curl under the key-sharing shim, 1 MB download, byte-exact) runs DURING each flood and
# AFTER it.  Floods:
#   1. SYN flood: 20,000 SYNs, random source ports (scapy);
#   2. half-open TLS sessions: 400 connections that send a ClientHello, then nothing;
#   3. records that never complete: 300 connections sending a record header announcing 16 KB
#      and a few bytes, then nothing; and 20 slow drips (one byte every 200 ms);
#   4. key messages for unknown sessions: mmtls-keyagent following a key log of 20,000 random
#      TLS 1.3 groups;
#   5. key channels: idle TCP connections to the key port, 200 a second, 300 kept open (more
#      than --key-max-channels 64): the oldest unauthenticated channel makes room.
# Checked: every legitimate download succeeds; mmtlsd's VmRSS (sampled every 200 ms) stays under
# a bound derived from the caps; the caps were hit (eve "exception" events and the stats
# counters); after each flood the usage (active flows, sessions, pending keys) falls back.
# Exit 0 pass, 1 fail, 77 skip.  About 2-3 minutes.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
PY=/usr/bin/python3
NAME=test_floods
P=${TB_PREFIX:-cap}
FLOOD_IP=198.18.4.10

# shellcheck source=lib_testbed.sh
. "$HERE/lib_testbed.sh"
tb_paths
[ "$(id -u)" = 0 ] || skip "needs root"
for c in ip nginx curl openssl timeout; do command -v $c >/dev/null || skip "no $c"; done
$PY -c 'import scapy.all' 2>/dev/null || skip "no python3-scapy"
[ -x "$MMTLSD" ] && [ -f "$SHIM" ] && [ -x "$KA" ] || { echo "[$NAME] FAIL: build first"; exit 1; }

W=$(mktemp -d /tmp/mmtls-floods.XXXXXX)
chmod 755 "$W"
MB=
RSS_PID=
BG=()
cleanup() {
    for p in "${BG[@]}"; do kill "$p" 2>/dev/null; done
    [ -n "$RSS_PID" ] && kill "$RSS_PID" 2>/dev/null
    [ -n "$MB" ] && kill "$MB" 2>/dev/null
    [ -f "$W/nginx.pid" ] && kill "$(cat "$W/nginx.pid" 2>/dev/null)" 2>/dev/null
    wait 2>/dev/null
    tb_down
    [ -n "${KEEP:-}" ] || rm -rf "$W"
}
trap cleanup EXIT

tb_up "$W"
ip netns exec "$P-client" ip addr add "$FLOOD_IP/24" dev veth0 || skip "cannot add $FLOOD_IP"
mkdir -p "$W/www" "$W/eve"
head -c 1000000 /dev/urandom >"$W/www/mid.bin"
tb_nginx --conns 2048 --timeout 300

# The caps (per worker; one worker here).  The RSS bound below is derived from them.
MAX_FLOWS=256
MAX_HS=16384
REASM_MEMCAP=4194304
HOLD_TOTAL=4194304
PENDING_MAX=1024
MAX_CHANNELS=64
tb_mbox_start "$W/mbox.log" 300 -l "$W/eve" --max-flows $MAX_FLOWS --flow-timeout 3 \
    --flow-closed-timeout 1 --max-handshake $MAX_HS --reasm-memcap $REASM_MEMCAP \
    --key-hold-total $HOLD_TOTAL --key-pending-max $PENDING_MAX --key-pending-wait 2000 \
    --key-max-channels $MAX_CHANNELS \
    --midstream-grace 0 --stats-interval 1 -v
MPID=${MBPID:-$MB}
EVE="$W/eve/eve.json"

tb_keys
CURL=(timeout 30 curl -sS --retry 0 --resolve server.test:443:198.18.4.2 --cacert "$W/pki/ca.crt")
# legit TAG: a 1 MB download with keys, byte-exact
legit() {
    local t0=$SECONDS
    if client "${KEYS[@]}" "${CURL[@]}" --http1.1 -o "$W/got.$1" https://server.test/mid.bin \
        2>"$W/curl.$1" && cmp -s "$W/got.$1" "$W/www/mid.bin"; then
        pass "$1: legitimate download byte-exact ($((SECONDS - t0)) s)"
    else
        fail "$1: legitimate download failed: $(cat "$W/curl.$1")"
    fi
}
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$MPID/status" 2>/dev/null || echo 0; }
# last_stats FIELD...: a value of the newest eve stats event, e.g. last_stats flow active
last_stats() {
    $PY - "$EVE" "$@" <<'EOF'
import json, sys
st = None
for line in open(sys.argv[1]):
    try:
        e = json.loads(line)
    except ValueError:
        continue
    if e.get("event_type") == "stats":
        st = e["stats"]
v = st
for k in sys.argv[2:]:
    v = v[k] if v is not None else None
print(v if v is not None else -1)
EOF
}
# settle WHAT LIMIT FIELD...: wait (<= 12 s) until the stats value is <= LIMIT
settle() {
    local what=$1 limit=$2 v=-1
    shift 2
    for _ in $(seq 24); do
        v=$(last_stats "$@")
        [ "$v" -ge 0 ] && [ "$v" -le "$limit" ] && break
        sleep 0.5
    done
    [ "$v" -ge 0 ] && [ "$v" -le "$limit" ] && pass "$what: back to $v (<= $limit) after the flood" ||
        fail "$what: still $v after the flood (want <= $limit)"
}

legit warmup
sleep 1.5
BASE_KB=$(rss_kb)
# Bound: the baseline after a warm-up (AF_PACKET rings touched, OpenSSL loaded) plus what the
# caps allow: flows x (flow + engine flow + session ~12 KB + two handshake buffers + four record
# buffers ~ 2 x 16 KB + 4 x 18 KB) = 256 x 116 KB ~ 29 MB, reassembly 4 MB, held records 4 MB,
# pending keys 1024 x 3 KB = 3 MB, the key ring 4096 x 3 KB = 12 MB, 64 key channels x 64 KB
# = 4 MB, allocator slack 16 MB: 72 MB.
BOUND_KB=$((BASE_KB + 72 * 1024))
(
    while kill -0 "$MPID" 2>/dev/null; do
        awk '/^VmRSS/ {print $2}' "/proc/$MPID/status" 2>/dev/null
        sleep 0.2
    done
) >"$W/rss.txt" &
RSS_PID=$!

# ---- 1. SYN flood -----------------------------------------------------------------------------
client timeout 60 $PY - "$FLOOD_IP" <<'EOF' >"$W/flood1.log" 2>&1 &
import random, sys
from scapy.all import IP, TCP, send, conf
conf.verb = 0
src = sys.argv[1]
pk = [IP(src=src, dst="198.18.4.2") / TCP(sport=random.randint(1024, 65535), dport=443,
      flags="S", seq=random.getrandbits(32)) for _ in range(20000)]
send(pk, inter=0)
print("sent", len(pk))
EOF
F=$!
BG+=("$F")
sleep 1
legit syn-flood
wait "$F"
grep -q "sent 20000" "$W/flood1.log" || fail "SYN flood did not run: $(cat "$W/flood1.log")"
sleep 1.5
ev=$(last_stats flow evicted)
pk=$(last_stats flow peak_active)
[ "$ev" -gt 1000 ] && [ "$pk" -le $MAX_FLOWS ] &&
    pass "SYN flood: the flow cap was hit ($ev flows evicted, peak $pk <= $MAX_FLOWS)" ||
    fail "SYN flood: evicted $ev, peak $pk"
legit after-syn-flood
settle "SYN flood: active flows" 16 flow active

# ---- 2. half-open TLS sessions, 3. records that never complete -------------------------------
# MODE hello: a real ClientHello then silence; MODE record: a record header announcing 16 KB
# (a ClientHello header, a few bytes) then silence, and DRIP slow connections sending one byte
# every 200 ms.  Connections are held HOLD seconds.
cat >"$W/halfopen.py" <<'EOF'
import selectors, socket, ssl, sys, time
mode, n, drip, hold, src = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), sys.argv[5]

def hello():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    i, o = ssl.MemoryBIO(), ssl.MemoryBIO()
    t = ctx.wrap_bio(i, o, server_hostname="server.test")
    try:
        t.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return o.read()

partial = bytes([0x16, 0x03, 0x01, 0x40, 0x00, 0x01, 0x00, 0x3F, 0xFC, 0x03, 0x03]) + b"\x00" * 21
sel = selectors.DefaultSelector()
socks, sent, t0 = [], 0, time.time()
for k in range(n + drip):
    s = socket.socket()
    s.bind((src, 0))
    s.setblocking(False)
    s.connect_ex(("198.18.4.2", 443))
    sel.register(s, selectors.EVENT_WRITE, k)
    socks.append(s)
drips = {}
while time.time() - t0 < hold:
    for key, _ in sel.select(timeout=0.2):
        s, k = key.fileobj, key.data
        sel.unregister(s)
        if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) != 0:
            continue
        try:
            if k >= n:
                drips[s] = 0
            else:
                s.send(hello() if mode == "hello" else partial)
                sent += 1
        except OSError:
            pass
    for s in list(drips):
        if drips[s] < len(partial):
            try:
                s.send(partial[drips[s]:drips[s] + 1])
                drips[s] += 1
            except OSError:
                del drips[s]
print("sent", sent, "drips", len(drips))
for s in socks:
    s.close()
EOF
# flood_conns TAG MODE N DRIP HOLD
flood_conns() {
    local tag=$1 before after
    before=$(last_stats exception flow closed)
    client timeout 60 $PY "$W/halfopen.py" "$2" "$3" "$4" "$5" "$FLOOD_IP" >"$W/$tag.log" 2>&1 &
    F=$!
    BG+=("$F")
    sleep 2
    legit "$tag"
    wait "$F"
    grep -q "^sent" "$W/$tag.log" || fail "$tag: flood did not run: $(cat "$W/$tag.log")"
    sleep 1.5
    after=$(last_stats exception flow closed)
    pk=$(last_stats tls sessions_peak)
    [ "$after" -gt "$before" ] && [ "$pk" -le $MAX_FLOWS ] &&
        pass "$tag: table full of sessions: $((after - before)) new flows dropped (fail closed), sessions peak $pk" ||
        fail "$tag: flow exceptions $before -> $after, sessions peak $pk"
    legit "after-$tag"
    settle "$tag: sessions" 8 tls sessions_active
}
flood_conns half-open hello 400 0 8
flood_conns never-complete record 300 20 8

# ---- 4. key messages for unknown sessions ----------------------------------------------------
$PY - "$W/flood.keylog" <<'EOF'
import os, sys
with open(sys.argv[1], "w") as f:
    for _ in range(20000):
        cr = os.urandom(32).hex()
        for label in ("CLIENT_HANDSHAKE_TRAFFIC_SECRET", "SERVER_HANDSHAKE_TRAFFIC_SECRET",
                      "CLIENT_TRAFFIC_SECRET_0", "SERVER_TRAFFIC_SECRET_0"):
            f.write("%s %s %s\n" % (label, cr, os.urandom(32).hex()))
EOF
before=$(last_stats tls keys pending_dropped)
client timeout 60 "$KA" --ca "$W/pki/ca.crt" --cert "$W/pki/client.crt" --key "$W/pki/client.key" \
    --keylog "$W/flood.keylog" --keyserver 198.18.6.2:4433 2>"$W/agent.log" &
F=$!
BG+=("$F")
sleep 3
legit key-flood
for _ in $(seq 20); do
    v=$(last_stats tls keys received)
    [ "$v" -ge 20000 ] && break
    sleep 0.5
done
kill "$F" 2>/dev/null
wait "$F" 2>/dev/null
sleep 1.5
rx=$(last_stats tls keys received)
dropped=$(last_stats tls keys pending_dropped)
pp=$(last_stats tls keys pending_peak)
[ "$rx" -gt $((2 * PENDING_MAX)) ] && [ "$dropped" -gt "$before" ] && [ "$pp" -le $PENDING_MAX ] &&
    pass "key flood: $rx key messages, $((dropped - before)) pending dropped, peak $pp <= $PENDING_MAX" ||
    fail "key flood: received $rx, dropped $before -> $dropped, pending peak $pp"
legit after-key-flood
settle "key flood: pending keys" 0 tls keys pending

# ---- 5. key channels -------------------------------------------------------------------------
client timeout 60 $PY - <<'EOF' >"$W/chan.log" 2>&1 &
import socket, time
socks = []
t0 = time.time()
while time.time() - t0 < 8:
    for _ in range(10):
        try:
            s = socket.create_connection(("198.18.6.2", 4433), timeout=1)
            socks.append(s)
        except OSError:
            pass
    time.sleep(0.05)
    socks = socks[-300:]
print("opened", len(socks))
EOF
F=$!
BG+=("$F")
sleep 2
legit channel-flood
wait "$F"
grep -q "^opened" "$W/chan.log" || fail "channel flood did not run: $(cat "$W/chan.log")"
legit after-channel-flood

# ---- the whole run ---------------------------------------------------------------------------
kill "$RSS_PID" 2>/dev/null
RSS_PID=
MAX_KB=$(sort -n "$W/rss.txt" | tail -1)
[ -n "$MAX_KB" ] && [ "$MAX_KB" -le "$BOUND_KB" ] &&
    pass "VmRSS peak $((MAX_KB / 1024)) MB <= bound $((BOUND_KB / 1024)) MB (baseline $((BASE_KB / 1024)) MB)" ||
    fail "VmRSS peak ${MAX_KB:-?} kB over the bound $BOUND_KB kB (baseline $BASE_KB kB)"
tb_mbox_stop
$PY - "$EVE" "$W/mbox.log" <<'EOF' || fail "eve and log checks"
import json, re, sys
from collections import Counter
ev = [json.loads(l) for l in open(sys.argv[1])]
ex = [e["exception"] for e in ev if e["event_type"] == "exception"]
st = [e for e in ev if e["event_type"] == "stats"]
by = Counter(x["resource"] for x in ex)
print("   exception events:", dict(by))
ok = True
def check(c, what):
    global ok
    print("   %s: %s" % ("ok" if c else "FAIL", what))
    ok = ok and c
check(by["flow"] >= 1 and by["keys"] >= 1, "exception events for the flow table and pending keys")
check(all(x["policy"] == "closed" for x in ex if x["resource"] == "flow"), "flow policy: closed")
# never per packet: at most one event per resource per second
ts = Counter((x["resource"], e["timestamp"][:19]) for e, x in
             ((e, e["exception"]) for e in ev if e["event_type"] == "exception"))
check(max(ts.values()) <= 2, "at most one exception event per resource per second (max %d)"
      % max(ts.values()))
last = st[-1]["stats"]
tot = {r: v["closed"] + v["open"] + v["offline"] for r, v in last["exception"].items()}
print("   exception counters:", tot)
check(sum(x["count"] for x in ex if x["resource"] == "flow") == tot["flow"],
      "the events' counts add up to the flow counter")
check(len(st) >= 30, "periodic stats events (%d)" % len(st))
log = open(sys.argv[2]).read()
lines = re.findall(r"exception (\w+): cap hit", log)
check(0 < len(lines) <= len(ex) + 2, "rate-limited log lines (%d) match the events" % len(lines))
sys.exit(0 if ok else 1)
EOF
tb_finish "$W"
