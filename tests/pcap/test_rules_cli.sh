#!/usr/bin/env bash
# mmtlsd --rules FILE --test-rules (issue 6): loads rule files, prints the load summary, exits
# non-zero on a file it cannot read (as suricata -T).
#   - the Snort 3 community ruleset: loads, summary with counts and named reasons, exit 0;
#   - a small file with known rules: exact loaded/skipped counts and reasons (file:line);
#   - a missing file: exit 2 and a message naming it; --test-rules without --rules: usage error.
set -u
NAME=test_rules_cli
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
MMTLSD=${MMTLSD:-$ROOT/build/tools/mmtlsd/mmtlsd}
COMMUNITY=${MMTLS_COMMUNITY_RULES:-/work/shared/data/snort3-community-rules/snort3-community.rules}
W=$(mktemp -d /tmp/mmtls-rules.XXXXXX)
trap 'rm -rf "$W"' EXIT
FAILS=0
fail() {
    echo "[$NAME] FAIL: $*"
    FAILS=$((FAILS + 1))
}
pass() { echo "[$NAME] ok: $*"; }
[ -x "$MMTLSD" ] || {
    echo "[$NAME] FAIL: no $MMTLSD"
    exit 1
}

if [ -f "$COMMUNITY" ]; then
    "$MMTLSD" --rules "$COMMUNITY" --test-rules >"$W/c.out" 2>&1
    rc=$?
    n=$(sed -n 's/^rules: \([0-9]*\) loaded, \([0-9]*\) skipped$/\1/p' "$W/c.out")
    if [ $rc = 0 ] && [ -n "$n" ] && [ "$n" -gt 1000 ] && grep -q "skipped [0-9]*: option flowbits" "$W/c.out"; then
        pass "community ruleset: $(head -1 "$W/c.out")"
    else
        fail "community ruleset: rc $rc: $(head -3 "$W/c.out")"
    fi
else
    echo "[$NAME] (community ruleset not found at $COMMUNITY: case skipped)"
fi

cat >"$W/small.rules" <<'RULES'
# two good rules, one Suricata-style, one Snort 3-style
alert tcp any any -> any any (msg:"a"; flow:to_server,established; content:"GET"; http_method; sid:1; rev:1;)
alert http any any -> any any ( msg:"b"; http_uri; content:"/x",nocase; sid:2; rev:1; )
alert tcp any any -> any any (msg:"c"; flowbits:set,x; content:"y"; sid:3;)
alert tcp any any -> any any (msg:"d"; content:"z"; sid:1;)
alert tcp any any -> any any (msg:"e"; content:"unterminated; sid:5;)
RULES
"$MMTLSD" --rules "$W/small.rules" --test-rules >"$W/s.out" 2>&1
rc=$?
[ $rc = 0 ] && grep -qx "rules: 2 loaded, 3 skipped" "$W/s.out" &&
    grep -q "option flowbits (first sid 1:3 at $W/small.rules:4)" "$W/s.out" &&
    grep -q "duplicate" "$W/s.out" && grep -q "malformed" "$W/s.out" &&
    pass "small file: 2 loaded, 3 skipped with their reasons" ||
    fail "small file: rc $rc: $(cat "$W/s.out")"

"$MMTLSD" --rules "$W/none.rules" --test-rules >"$W/m.out" 2>&1
rc=$?
[ $rc = 2 ] && grep -q "none.rules" "$W/m.out" && pass "missing file: exit 2, named" ||
    fail "missing file: rc $rc: $(cat "$W/m.out")"
"$MMTLSD" --test-rules >"$W/u.out" 2>&1
rc=$?
[ $rc = 2 ] && grep -q "needs --rules" "$W/u.out" && pass "--test-rules alone: usage error" ||
    fail "--test-rules alone: rc $rc: $(cat "$W/u.out")"

[ "$FAILS" = 0 ] && echo "[$NAME] all cases passed" && exit 0
exit 1
