#!/usr/bin/env bash
# Runs every test suite: the second quick-start command, and what CI runs (.ci/run).
#   1. gcc build (-Werror), unit tests and the real-traffic tests (ctest)
#   2. unit tests again under AddressSanitizer + UndefinedBehaviorSanitizer (clang)
#   3. every libFuzzer target briefly on its seed corpus (ASan + UBSan)
#   4. formatting check (clang-format)
# Long fuzzing and benchmarks have their own commands (scripts/fuzz.sh, bench/).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
JOBS=${JOBS:-$(nproc)}
FUZZ_SECONDS=${FUZZ_SECONDS:-10}
bash scripts/deps.sh

step() { printf '\n=== %s ===\n' "$*"; }

step "build (gcc, -Werror)"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$JOBS"

step "unit and real-traffic tests (gcc build)"
(cd build && ctest --output-on-failure -j"$JOBS")

step "unit tests under ASan+UBSan (clang, -Werror)"
CC=clang cmake -S . -B build-asan -DMMTLS_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null
cmake --build build-asan -j"$JOBS"
(cd build-asan && ASAN_OPTIONS=detect_leaks=1 ctest --output-on-failure -j"$JOBS" -L unit)

step "fuzz targets, ${FUZZ_SECONDS}s each (clang, ASan+UBSan)"
CC=clang cmake -S . -B build-fuzz -DMMTLS_FUZZ=ON >/dev/null
cmake --build build-fuzz -j"$JOBS"
fails=0
for t in build-fuzz/fuzz/fuzz_*; do
    [ -x "$t" ] || continue
    name=$(basename "$t")
    corpus="$ROOT/fuzz/corpus/$name"
    work=$(mktemp -d)
    [ -d "$corpus" ] && cp -r "$corpus"/. "$work"/ 2>/dev/null || true
    if "$t" -max_total_time="$FUZZ_SECONDS" -timeout=10 -rss_limit_mb=2048 "$work" \
        >"$work.log" 2>&1; then
        echo "fuzz: $name ok ($(grep -o 'cov: [0-9]*' "$work.log" | tail -1))"
    else
        echo "fuzz: $name FAILED"; tail -30 "$work.log"; fails=$((fails + 1))
    fi
    rm -rf "$work" "$work.log"
done
[ "$fails" = 0 ]

step "format check (clang-format)"
bad=$(find include src lib tools examples tests/unit fuzz bench bpf -name '*.[ch]' -print0 |
      xargs -0 clang-format --dry-run 2>&1 | grep -c 'warning:' || true)
if [ "$bad" != 0 ]; then
    echo "clang-format: $bad lines differ (run: clang-format -i on the files listed below)"
    find include src lib tools examples tests/unit fuzz bench bpf -name '*.[ch]' -print0 |
        xargs -0 clang-format --dry-run 2>&1 | grep 'warning:' | cut -d: -f1 | sort -u
    exit 1
fi
echo
echo "all test suites passed"
