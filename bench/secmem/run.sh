#!/usr/bin/env bash
# run.sh - the secret-memory pool per connection, 1 and 2 threads (bench_secmem.c;
# docs/BENCHMARKS.md "Per-worker memory").
#
#   ROUNDS=5 CONNS=2000000 bash bench/secmem/run.sh
#   BASE=DIR  also runs bench_secmem linked against the Release build in DIR (another commit's
#             libmmtls_util.a), interleaved round by round with this tree's, for a before/after
# Builds libmmtls_util.a (Release) in BUILD (default build-cycles) and bench_secmem from one gcc
# line.  Prints each run's JSON line and the medians.  About 10 s per round.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BUILD=${BUILD:-$ROOT/build-cycles}
ROUNDS=${ROUNDS:-5}
CONNS=${CONNS:-2000000}

build() { # build() LIBDIR OUT
    gcc -std=c11 -D_GNU_SOURCE -O2 -g -Wall -Wextra -Werror -I"$ROOT/include" -I"$ROOT/src" \
        -o "$2" "$HERE/bench_secmem.c" "$1/libmmtls_util.a" -lcrypto -lpthread
}
cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$BUILD" -j2 --target mmtls_util >/dev/null
build "$BUILD" "$BUILD/bench_secmem"
KINDS="this"
if [ -n "${BASE:-}" ]; then
    build "$BASE" "$BUILD/bench_secmem_base"
    KINDS="base this"
fi
OUTS=$(mktemp)
trap 'rm -f "$OUTS"' EXIT
for r in $(seq "$ROUNDS"); do
    for k in $KINDS; do
        bin=$BUILD/bench_secmem
        [ "$k" = base ] && bin=$BUILD/bench_secmem_base
        line=$("$bin" "$CONNS")
        echo "round $r $k $line"
        echo "$k $line" >>"$OUTS"
    done
done
/usr/bin/python3 - "$OUTS" <<'PY'
import json, statistics, sys
runs = {}
for line in open(sys.argv[1]):
    k, js = line.split(" ", 1)
    runs.setdefault(k, []).append(json.loads(js))
for k, rs in runs.items():
    med = {f: statistics.median(r[f] for r in rs) for f in ("ns_per_conn_1", "ns_per_conn_2", "ratio_2_to_1")}
    print(f"{k}: median of {len(rs)}: {med['ns_per_conn_1']:.0f} ns per connection with 1 thread, "
          f"{med['ns_per_conn_2']:.0f} with 2 at once (2 threads / 1 thread: {med['ratio_2_to_1']:.2f})")
PY
