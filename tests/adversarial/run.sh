#!/usr/bin/env bash
# Runs every tests/adversarial/test_*.py (the TCP evasions and the TLS/key cases) against the
# inline middlebox on scripts/testbed.sh, one after the other (each builds its own testbed).
# Exit 0 only if every file passed; 77 (skip) when not root or scapy is missing; 1 otherwise.
# MMTLS_BUILDDIR selects the build (default build/); ONLY=case,... and KEEP=1 pass through.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
PY=/usr/bin/python3
[ "$(id -u)" = 0 ] || { echo "[adversarial] SKIP: needs root"; exit 77; }
"$PY" -c 'import scapy' 2>/dev/null || { echo "[adversarial] SKIP: no python3-scapy"; exit 77; }
fails=0
ran=0
for t in "$HERE"/test_*.py; do
    [ -f "$t" ] || continue
    echo "=== $(basename "$t")"
    timeout 600 "$PY" "$t"
    rc=$?
    case $rc in
    0) ran=$((ran + 1)) ;;
    77) echo "=== $(basename "$t"): skipped" ;;
    *) echo "=== $(basename "$t"): FAILED (exit $rc)"; fails=$((fails + 1)) ;;
    esac
done
[ $ran = 0 ] && [ $fails = 0 ] && { echo "[adversarial] SKIP: nothing ran"; exit 77; }
[ $fails = 0 ] && { echo "[adversarial] all files passed ($ran)"; exit 0; }
echo "[adversarial] $fails file(s) failed"
exit 1
