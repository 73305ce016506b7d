#!/usr/bin/env bash
# profile.sh CAPTURE_DIR [OUT_TXT] - where one decrypting `mmtlsd -r` run spends its CPU.
#
# perf record -e cpu-clock (no hardware counters in the VM) with DWARF call graphs (the Release
# build has no frame pointers) on the Release mmtlsd of run.sh, then three views:
#   1. CPU share per binary (mmtlsd, libcrypto, libc, kernel);
#   2. the top 15 symbols, self time (perf report --stdio --no-children);
#      Debian's libcrypto.so.3 has no symbols: its entries are bare addresses;
#   3. the top 40 symbols, inclusive time (--children): which mmtls function the time is under.
# Needs linux-perf (installed if missing).
set -eu
if [ $# -lt 1 ] || [ $# -gt 2 ]; then
    echo "usage: $0 CAPTURE_DIR [OUT_TXT]" >&2
    exit 2
fi
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
CAPDIR=$(cd "$1" && pwd)
OUT=${2:-/dev/stdout}
MMTLSD=$ROOT/build-bench/tools/mmtlsd/mmtlsd
command -v perf >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq linux-perf
[ -x "$MMTLSD" ] || { echo "profile.sh: build $MMTLSD first (run.sh does)" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
perf record -q -e cpu-clock -F 4999 --call-graph dwarf -o "$work/perf.data" \
    "$MMTLSD" -r "$CAPDIR/capture.pcap" --keylog "$CAPDIR/keys.log" -l "$work" -q 2>/dev/null
rep() { perf report -i "$work/perf.data" --stdio "$@" 2>/dev/null | grep -E '^ +[0-9.]+%' || true; }
{
    echo "== CPU share per binary (self) =="
    rep --no-children --sort dso -g none
    echo
    echo "== top 15 symbols, self time (perf report --stdio --no-children) =="
    rep --no-children --sort dso,sym -g none | head -15
    echo
    echo "== top 40 symbols, inclusive time (--children) =="
    rep --children --sort sym -g none | grep -v ' 0x0000' | head -40
} >"$OUT"
