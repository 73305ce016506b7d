# Shared by the tests that run on scripts/testbed.sh (source it after setting NAME and P):
# verdict helpers, the testbed and its certificates, and the final summary.
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
