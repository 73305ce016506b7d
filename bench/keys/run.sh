#!/usr/bin/env bash
# run.sh [ROUNDS] - the key-sharing benchmark (docs/BENCHMARKS.md, "Key sharing"; issue 3).
#
# Builds keybench (build.sh: Release libraries in build-keysbench/, one gcc line), makes a
# throw-away CA and certificates (certs.sh), then runs ROUNDS (default 3) interleaved rounds of
#   flood    1, 64, 1024 channels: as many keys as possible (KEYS keys or SECONDS s), 64 per write
#   paced    1, 64, 1024 channels: RATE keys/s in all, one key per write (latency); again with
#            the key server thread SCHED_FIFO (--rt: as on a core of its own)
#   keyshare HANDSHAKES real TLS 1.3 handshakes through libmmtls-keyshare (latency from the key
#            log callback), when the library builds
# Every run is bounded (< 30 s).  Prints a markdown table of medians; writes
# bench/keys/results-<date>.json (every run's figures, the medians) and .md, and the plots
# docs/img/keys-throughput.png and docs/img/keys-latency.png.
#
# Environment: KEYS (2000000), FLOOD_SECONDS (8), RATE (10000), PACED_SECONDS (5), HANDSHAKES (2000),
# CHANNELS ("1 64 1024"), RESULTS (the JSON path), NO_BUILD=1, BUILD (build-keysbench).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
ROUNDS=${1:-3}
BUILD=${BUILD:-$ROOT/build-keysbench}
KEYS=${KEYS:-2000000}
FLOOD_SECONDS=${FLOOD_SECONDS:-8}
RATE=${RATE:-10000}
PACED_SECONDS=${PACED_SECONDS:-5}
HANDSHAKES=${HANDSHAKES:-2000}
CHANNELS=${CHANNELS:-"1 64 1024"}
STAMP=$(date +%Y-%m-%d)
RESULTS=${RESULTS:-$HERE/results-$STAMP.json}
PY=/usr/bin/python3 # Debian's, with python3-matplotlib

if [ "${NO_BUILD:-0}" != 1 ]; then
    "$HERE/build.sh" "$BUILD" >/dev/null
fi
KB=$BUILD/keybench
[ -x "$KB" ] || { echo "run.sh: no $KB" >&2; exit 1; }
HAVE_KS=0
probe=$("$KB" keyshare 2>&1 || true)
if [[ $probe == usage* ]]; then HAVE_KS=1; fi

CERTS=$(mktemp -d /tmp/keybench-certs.XXXXXX)
RAW=$(mktemp /tmp/keybench-raw.XXXXXX)
trap 'rm -rf "$CERTS" "$RAW"' EXIT
"$HERE/certs.sh" "$CERTS"

echo "run.sh: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-)," \
    "load $(cut -d' ' -f1-3 /proc/loadavg)" >&2

one() { # round what args...
    local r=$1 what=$2
    shift 2
    local load out
    load=$(cut -d' ' -f1 /proc/loadavg)
    if ! out=$(timeout 60 "$KB" "$@" --dir "$CERTS"); then
        echo "run.sh: round $r: keybench $* failed" >&2
        return 0
    fi
    printf '%s\n' "$out" | sed "s/^{/{\"round\":$r,\"load1\":$load,/" >>"$RAW"
    echo "run.sh: round $r $what: $(printf '%s' "$out" | $PY -c '
import json, sys
d = json.load(sys.stdin)
print("%.0f keys/s, %.0f keys/server-CPU-s, p50 %.0f us, p99 %.0f us, ring drops %d" % (
    d["keys_per_s"], d["keys_per_server_cpu_s"], d["lat_us"]["p50"], d["lat_us"]["p99"],
    d["ring_dropped"]))')" >&2
}

for ((r = 1; r <= ROUNDS; r++)); do
    for n in $CHANNELS; do
        one "$r" "flood $n" flood --channels "$n" --keys "$KEYS" --seconds "$FLOOD_SECONDS"
    done
    for n in $CHANNELS; do
        one "$r" "paced $n" paced --channels "$n" --rate "$RATE" --seconds "$PACED_SECONDS"
        one "$r" "paced rt $n" paced --rt --channels "$n" --rate "$RATE" \
            --seconds "$PACED_SECONDS"
    done
    if [ $HAVE_KS = 1 ]; then
        one "$r" "keyshare" keyshare --handshakes "$HANDSHAKES"
    fi
done

"$PY" "$HERE/summarize.py" "$RAW" "$RESULTS" "${RESULTS%.json}.md"
mkdir -p "$ROOT/docs/img"
if "$PY" -c 'import matplotlib' 2>/dev/null; then
    "$PY" "$HERE/plot.py" "$RESULTS" "$ROOT/docs/img/keys-throughput.png" \
        "$ROOT/docs/img/keys-latency.png"
else
    echo "run.sh: no python3-matplotlib: no plots" >&2
fi
