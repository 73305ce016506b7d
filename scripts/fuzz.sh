#!/usr/bin/env bash
# Longer fuzzing than CI's smoke run: every libFuzzer target for SECONDS (default 300) each,
# ASan + UBSan, starting from the checked-in seeds; the evolved corpora stay in
# build-fuzz/corpus/<target> (not committed), crashes in build-fuzz/crashes/.
#   scripts/fuzz.sh [SECONDS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SECONDS_EACH=${1:-300}
shift || true
bash scripts/deps.sh
CC=clang cmake -S . -B build-fuzz -DMMTLS_FUZZ=ON >/dev/null
cmake --build build-fuzz -j"$(nproc)"
mkdir -p build-fuzz/corpus build-fuzz/crashes
targets=("$@")
if [ ${#targets[@]} = 0 ]; then
    for t in build-fuzz/fuzz/fuzz_*; do [ -x "$t" ] && targets+=("$(basename "$t")"); done
fi
for name in "${targets[@]}"; do
    corpus=build-fuzz/corpus/$name
    mkdir -p "$corpus"
    [ -d "$ROOT/fuzz/corpus/$name" ] && cp -rn "$ROOT/fuzz/corpus/$name"/. "$corpus"/ 2>/dev/null || true
    echo "== $name: ${SECONDS_EACH}s"
    build-fuzz/fuzz/"$name" -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048 \
        -artifact_prefix=build-fuzz/crashes/"$name"- -print_final_stats=1 "$corpus" 2>&1 |
        grep -E "^(Done|stat::number_of_executed_units|stat::peak_rss|#[0-9]+ +DONE)|ERROR|cov:" |
        tail -3
done
