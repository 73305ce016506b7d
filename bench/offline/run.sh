#!/usr/bin/env bash
# run.sh CAPTURE_DIR [RUNS] - the offline-engine benchmark (docs/BENCHMARKS.md).
#
# CAPTURE_DIR is what make-capture.sh wrote (capture.pcap, keys.log, meta.json). Builds a
# Release mmtlsd in build-bench/, installs what is missing (openssl, tshark, python3-matplotlib),
# then interleaves RUNS (default 3) rounds of: openssl speed, mmtlsd with keys, mmtlsd without
# keys, tshark decrypting (measure.py). Writes bench/offline/results-<date>.json (raw figures of
# every round, medians, ratios) and results-<date>.md (the tables, also printed), and the plot
# docs/img/offline-throughput.png.
#
# Environment: TSHARK_PACKETS=N (tshark on the first N packets only), TSHARK_TIMEOUT (900 s),
# OPENSSL_SECONDS (3), RESULTS (the JSON path), PLOT (the PNG path), NO_BUILD=1 (use the
# existing binary).
set -euo pipefail

if [ $# -lt 1 ] || [ $# -gt 2 ]; then
    echo "usage: $0 CAPTURE_DIR [RUNS]" >&2
    exit 2
fi
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
CAPDIR=$(cd "$1" && pwd)
RUNS=${2:-3}
BUILD=$ROOT/build-bench
MMTLSD=$BUILD/tools/mmtlsd/mmtlsd
STAMP=$(date +%Y-%m-%d)
RESULTS=${RESULTS:-$HERE/results-$STAMP.json}
PY=${PY:-python3}

for f in capture.pcap keys.log meta.json; do
    [ -s "$CAPDIR/$f" ] || { echo "run.sh: $CAPDIR/$f missing: run make-capture.sh" >&2; exit 2; }
done

# Debian packages this benchmark needs (tshark's debconf question: no non-root capture).
missing=()
for p in openssl tshark python3-matplotlib cmake build-essential libssl-dev libpcap-dev; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
        missing+=("$p")
done
if ((${#missing[@]})); then
    echo "run.sh: installing ${missing[*]}" >&2
    echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" >/dev/null
fi

if [ "${NO_BUILD:-0}" != 1 ]; then
    cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
    cmake --build "$BUILD" -j2 --target mmtlsd >/dev/null
fi
[ -x "$MMTLSD" ] || { echo "run.sh: no $MMTLSD" >&2; exit 1; }

echo "run.sh: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-)," \
    "load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
"$PY" "$HERE/measure.py" "$MMTLSD" "$CAPDIR" "$RUNS" "$RESULTS" "${RESULTS%.json}.md"

# The plot needs Debian's matplotlib (the system python3).
if /usr/bin/python3 -c 'import matplotlib' 2>/dev/null; then
    mkdir -p "$ROOT/docs/img"
    /usr/bin/python3 "$HERE/plot.py" "$RESULTS" "${PLOT:-$ROOT/docs/img/offline-throughput.png}"
else
    echo "run.sh: no matplotlib for /usr/bin/python3: plot skipped" >&2
fi
echo "run.sh: results in $RESULTS" >&2
