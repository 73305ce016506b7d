#!/usr/bin/env bash
# profile.sh [CHANNELS] [OUT] - perf profile of the key server thread during one flood run
# (1,000,000 keys): `perf record -e cpu-clock --call-graph dwarf` of the whole keybench process,
# then perfsum.py keeps the samples of the thread named mmtls-keysrv (self by object, self by
# function, inclusive, callers of the hottest functions).  Needs perf and keybench built
# (build.sh).  Output in OUT (default /tmp/keybench-perf.data) and on stdout.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
N=${1:-64}
OUT=${2:-/tmp/keybench-perf.data}
KB=${BUILD:-$ROOT/build-keysbench}/keybench
[ -x "$KB" ] || "$HERE/build.sh" >/dev/null
CERTS=$(mktemp -d /tmp/keybench-certs.XXXXXX)
trap 'rm -rf "$CERTS"' EXIT
"$HERE/certs.sh" "$CERTS"
perf record -q -F 1999 -e cpu-clock --call-graph dwarf,16384 -o "$OUT" -- \
    "$KB" flood --dir "$CERTS" --channels "$N" --keys 1000000 --seconds 8 |
    python3 -c 'import json, sys; d = json.load(sys.stdin); print("%.0f keys/s, %.0f keys per '\
'key-server CPU-second" % (d["keys_per_s"], d["keys_per_server_cpu_s"]))'
python3 "$HERE/perfsum.py" "$OUT" mmtls-keysrv
