#!/usr/bin/env bash
# Engine edge cases on a real capture: one TLS 1.3 exchange between openssl s_server and
# s_client in two namespaces, then variants of the capture made by mangle_edge.py:
# IP fragments, QinQ tags, a retransmission with different bytes (evasion), a lost segment
# (gap and resynchronisation), a capture starting mid-flow, keys in a pcapng DSB.
# Exit 0 pass, 1 fail, 77 skip.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
MMTLSD=${MMTLSD:-$HERE/../../build/tools/mmtlsd/mmtlsd}
PY=/usr/bin/python3
NAME=test_engine_edge

skip() { echo "[$NAME] SKIP: $*"; exit 77; }
[ "$(id -u)" = 0 ] || skip "needs root (namespaces, tcpdump)"
for c in ip tcpdump openssl timeout ethtool cmp; do command -v $c >/dev/null || skip "no $c"; done
$PY -c 'import scapy' 2>/dev/null || skip "no python3-scapy"
[ -x "$MMTLSD" ] || { echo "[$NAME] FAIL: no mmtlsd at $MMTLSD"; exit 1; }

W=$(mktemp -d /tmp/mmtls-edge.XXXXXX)
NS_C=mmtls-edge-c-$$
NS_S=mmtls-edge-s-$$
TD_PID=
cleanup() {
    [ -n "$TD_PID" ] && kill "$TD_PID" 2>/dev/null
    ip netns del "$NS_C" 2>/dev/null
    ip netns del "$NS_S" 2>/dev/null
    [ -n "${KEEP:-}" ] || rm -rf "$W"
}
trap cleanup EXIT
FAILS=0
fail() { echo "[$NAME] FAIL: $*"; FAILS=$((FAILS + 1)); }
pass() { echo "[$NAME] ok: $*"; }

# --- one real capture ---------------------------------------------------------------------
bash "$HERE/../../scripts/mkcerts.sh" "$W/pki" >/dev/null || { echo "mkcerts failed"; exit 1; }
ip netns add "$NS_C" && ip netns add "$NS_S" || skip "cannot create namespaces"
ip link add veth-c netns "$NS_C" type veth peer name veth-s netns "$NS_S"
ip -n "$NS_C" addr add 198.18.1.1/24 dev veth-c
ip -n "$NS_S" addr add 198.18.1.2/24 dev veth-s
for ns in "$NS_C:veth-c" "$NS_S:veth-s"; do
    ip -n "${ns%%:*}" link set "${ns#*:}" up
    ip -n "${ns%%:*}" link set lo up
    # MTU-sized segments on the wire, as on a real link
    ip netns exec "${ns%%:*}" ethtool -K "${ns#*:}" tso off gso off gro off >/dev/null 2>&1
done

{
    head -c 150000 /dev/urandom | base64 -w 76
    # the EICAR anti-virus test signature, for the blocking case (harmless by design)
    printf '%s\n' 'X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*'
    head -c 150000 /dev/urandom | base64 -w 76
} >"$W/s2c.txt"
head -c 20000 /dev/urandom | base64 -w 76 >"$W/c2s.txt"
ip netns exec "$NS_S" tcpdump -i veth-s -s 0 -U --immediate-mode -B 16384 -w "$W/cap.pcap" \
    tcp port 4433 2>"$W/td.log" &
TD_PID=$!
for _ in $(seq 50); do grep -q listening "$W/td.log" 2>/dev/null && break; sleep 0.1; done
(cat "$W/s2c.txt"; sleep 2) | ip netns exec "$NS_S" timeout 20 openssl s_server -accept 4433 \
    -naccept 1 -quiet -cert "$W/pki/rsa.crt" -key "$W/pki/rsa.key" -max_send_frag 4096 \
    >"$W/srv_got" 2>/dev/null &
SRV=$!
for _ in $(seq 50); do ip netns exec "$NS_S" ss -ltn | grep -q ':4433 ' && break; sleep 0.1; done
(cat "$W/c2s.txt"; sleep 2) | ip netns exec "$NS_C" timeout 20 openssl s_client \
    -connect 198.18.1.2:4433 -servername edge.test -quiet -keylogfile "$W/keys.log" \
    >"$W/cli_got" 2>/dev/null
wait $SRV
sleep 0.5
kill -INT $TD_PID
wait $TD_PID 2>/dev/null
TD_PID=
cmp -s "$W/srv_got" "$W/c2s.txt" && cmp -s "$W/cli_got" "$W/s2c.txt" ||
    { echo "[$NAME] FAIL: the peers themselves did not exchange the payloads"; exit 1; }

# run VARIANT_FILE OUTNAME [mmtlsd args...] -> $W/OUTNAME/{eve.json,plain/}
run() {
    local cap=$1 out=$2
    shift 2
    "$MMTLSD" -r "$cap" -l "$W/$out" --dump-plaintext "$W/$out/plain" -q "$@"
}
# jq-like check: ev FILE PYEXPR -> evaluates PYEXPR with `tls` (first tls event), `anoms`
# (list of anomaly events), `stats` (stats event); exit status is the truth of the expression.
ev() {
    $PY - "$1" "$2" <<'EOF'
import json, sys
tls, anoms, stats = None, [], None
for line in open(sys.argv[1]):
    e = json.loads(line)
    if e["event_type"] == "tls" and tls is None: tls = e["tls"]
    elif e["event_type"] == "anomaly": anoms.append(e["anomaly"]["event"])
    elif e["event_type"] == "stats": stats = e["stats"]
ok = eval(sys.argv[2])
if not ok:
    print("   check failed:", sys.argv[2], "| tls:", tls and {k: tls.get(k) for k in ("key_status", "errors")},
          "| anomalies:", anoms)
sys.exit(0 if ok else 1)
EOF
}
exact() { cmp -s "$W/$1"/plain/*.c2s "$W/c2s.txt" && cmp -s "$W/$1"/plain/*.s2c "$W/s2c.txt"; }

# --- baseline -------------------------------------------------------------------------------
run "$W/cap.pcap" base --keylog "$W/keys.log"
if exact base && ev "$W/base/eve.json" 'tls["key_status"]=="decrypted" and not anoms'; then
    pass "baseline decrypts byte-exact"
else
    fail "baseline"
fi

# --- variants -------------------------------------------------------------------------------
for v in frag vlan evasion drop midstream ackfirst; do
    $PY "$HERE/mangle_edge.py" "$W/cap.pcap" $v "$W/$v.pcap" 4433 || fail "mangle $v"
    run "$W/$v.pcap" $v --keylog "$W/keys.log"
done
$PY "$HERE/mangle_edge.py" "$W/cap.pcap" dsb "$W/dsb.pcapng" 4433 "$W/keys.log" || fail "mangle dsb"
run "$W/dsb.pcapng" dsb

if exact frag && ev "$W/frag/eve.json" \
    'tls["key_status"]=="decrypted" and stats["defrag"]["reassembled"] > 100'; then
    pass "IPv4 fragments (200 bytes, shuffled) reassembled, byte-exact"
else
    fail "fragments"
fi
if exact vlan && ev "$W/vlan/eve.json" 'tls["key_status"]=="decrypted"'; then
    pass "QinQ-tagged frames decrypt byte-exact"
else
    fail "vlan"
fi
# First copy wins: the plaintext is unchanged and the differing retransmission is reported.
if exact evasion && ev "$W/evasion/eve.json" \
    '"evasion_overlap" in anoms and stats["stream"]["overlap_diff"] >= 1'; then
    pass "retransmission with different bytes reported as evasion_overlap; first copy kept"
else
    fail "evasion"
fi
# A lost segment: gap reported, the session resynchronises and decrypts what follows.
if ev "$W/drop/eve.json" '"stream_gap" in anoms and tls["key_status"]=="partial"' &&
    $PY - "$W/s2c.txt" "$W"/drop/plain/*.s2c <<'EOF'; then
import sys
a = open(sys.argv[1], "rb").read(); b = open(sys.argv[2], "rb").read()
i = 0
while i < len(b) and a[i] == b[i]: i += 1
j = 0
while j < len(b) - i and a[-1 - j] == b[-1 - j]: j += 1
# everything decrypted is a prefix plus a suffix of what was sent; the loss is one segment
# (a few records) and at least a quarter of the stream came after it
ok = i + j == len(b) and len(a) - len(b) <= 4 * 4096 and j > len(a) // 4
print("   prefix %d, suffix %d, lost %d bytes" % (i, j, len(a) - len(b)))
sys.exit(0 if ok else 1)
EOF
    pass "lost segment: stream_gap, resynchronised, the rest decrypted"
else
    fail "gap/resync"
fi
if exact ackfirst && ev "$W/ackfirst/eve.json" 'tls["key_status"]=="decrypted" and not anoms'; then
    pass "ACKs ahead of the data they acknowledge: reordering, not loss"
else
    fail "ackfirst"
fi
if ev "$W/midstream/eve.json" 'tls is None and stats["flow"]["not_tls"] >= 1'; then
    pass "capture starting mid-flow: not taken for TLS, no crash"
else
    fail "midstream"
fi
if exact dsb && ev "$W/dsb/eve.json" 'tls["key_status"]=="decrypted"'; then
    pass "keys from a pcapng Decryption Secrets Block (no --keylog)"
else
    fail "dsb"
fi
# The same capture from standard input.
if "$MMTLSD" -r - --keylog "$W/keys.log" --eve "$W/stdin.json" -q <"$W/cap.pcap" &&
    ev "$W/stdin.json" 'tls["key_status"]=="decrypted"'; then
    pass "capture read from standard input"
else
    fail "stdin"
fi

# The demo rule: a session carrying the EICAR signature is blocked and alerted; nothing from
# the matching record on is dispatched to other apps (the dump stops before it).
run "$W/cap.pcap" eicar --keylog "$W/keys.log" --block-eicar
if ev "$W/eicar/eve.json" 'tls["blocked"] and stats["tls"]["blocked"] == 1' &&
    grep -q '"event_type":"alert".*"signature_id":9000001' "$W/eicar/eve.json" &&
    ! grep -q EICAR "$W"/eicar/plain/*.s2c; then
    pass "EICAR in decrypted data: alert, session blocked, nothing after it dispatched"
else
    fail "eicar block"
fi

if [ "$FAILS" = 0 ]; then
    echo "[$NAME] all cases passed"
    exit 0
fi
echo "[$NAME] $FAILS case(s) failed"
exit 1
