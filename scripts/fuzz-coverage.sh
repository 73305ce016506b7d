#!/usr/bin/env bash
# scripts/fuzz-coverage.sh [TARGET...]: how much of its module each fuzz target's corpus covers.
#
# Builds the fuzz targets in build-cov/ with clang source-based coverage
# (-fprofile-instr-generate -fcoverage-mapping) on top of the ordinary fuzz build (libFuzzer,
# ASan + UBSan, MMTLS_FUZZING as in the campaign), runs each target once over its corpora with
# libFuzzer's -runs=0 (every file executed once, no mutation): the campaign's kept corpus
# fuzz/campaign/<target>/ (read only) and the seeds fuzz/corpus/<target>/. Then llvm-cov
# reports the line, region and function coverage of the module under test only (src/<mod>/,
# lib/keyshare/ for fuzz_keyshare_*), not of the layers below it.
#
# Output: a markdown table on stdout (progress on stderr). Per-target reports stay in
# build-cov/cov/<target>.txt, and `llvm-cov show` can be pointed at build-cov/cov/<target>.profdata.
# Environment: JOBS (default 2), SKIP_BUILD=1 (reuse build-cov as is).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
B=$ROOT/build-cov
OUT=$B/cov
JOBS=${JOBS:-2}

tool() { # the unversioned LLVM tool, or the highest versioned one (Debian: llvm-cov-14)
    local t
    for t in "$1" "$1"-{19,18,17,16,15,14,13}; do
        command -v "$t" >/dev/null && { echo "$t"; return; }
    done
    echo "fuzz-coverage: $1 not found (apt-get install llvm)" >&2
    exit 2
}
PROFDATA=$(tool llvm-profdata)
LLVMCOV=$(tool llvm-cov)
command -v clang >/dev/null || { echo "fuzz-coverage: clang not found" >&2; exit 2; }

if [ "${SKIP_BUILD:-0}" != 1 ]; then
    echo "building the fuzz targets with coverage in $B" >&2
    CC=clang cmake -S "$ROOT" -B "$B" -DMMTLS_FUZZ=ON -DMMTLS_WERROR=ON \
        -DCMAKE_BUILD_TYPE=Debug \
        -DCMAKE_C_FLAGS="-fprofile-instr-generate -fcoverage-mapping" \
        -DCMAKE_EXE_LINKER_FLAGS="-fprofile-instr-generate" >/dev/null
    nice cmake --build "$B" -j"$JOBS" >"$B/build.log" 2>&1 ||
        { tail -20 "$B/build.log" >&2; exit 2; }
fi

targets=("$@")
if [ ${#targets[@]} = 0 ]; then
    for t in "$B"/fuzz/fuzz_*; do [ -x "$t" ] && targets+=("$(basename "$t")"); done
fi
[ ${#targets[@]} -gt 0 ] || { echo "fuzz-coverage: no targets in $B/fuzz" >&2; exit 2; }
mkdir -p "$OUT"

# pct COVERED TOTAL -> "87.5%" (or "-" for nothing to cover)
pct() { awk -v c="$1" -v t="$2" 'BEGIN { if (t == 0) print "-"; else printf "%.1f%%\n", 100 * c / t }'; }

echo "| target | module | corpus files (campaign + seeds) | lines | line cover | regions | region cover | functions | function cover |"
echo "|---|---|---:|---:|---:|---:|---:|---:|---:|"
status=0
for t in "${targets[@]}"; do
    bin=$B/fuzz/$t
    [ -x "$bin" ] || { echo "fuzz-coverage: no binary for $t" >&2; status=1; continue; }
    mod=$(echo "$t" | sed -E 's/^fuzz_([a-z0-9]+).*$/\1/')
    if [ "$mod" = keyshare ]; then
        src=$ROOT/lib/keyshare/
    else
        src=$ROOT/src/$mod/
    fi
    dirs=() nfiles=0
    for d in "$ROOT/fuzz/campaign/$t" "$ROOT/fuzz/corpus/$t"; do
        if [ -d "$d" ]; then
            dirs+=("$d")
            nfiles=$((nfiles + $(find "$d" -maxdepth 1 -type f | wc -l)))
        fi
    done
    [ ${#dirs[@]} -gt 0 ] || { echo "fuzz-coverage: no corpus for $t" >&2; status=1; continue; }
    echo "running $t over $nfiles files" >&2
    rm -f "$OUT/$t".*.profraw
    # -runs=0: load (execute) every corpus file once and stop; no new files are written
    # because no output corpus directory is writable-by-design here: libFuzzer writes new inputs
    # only to the first directory, so a scratch directory comes first.
    scratch=$(mktemp -d "$OUT/scratch.XXXXXX")
    if ! LLVM_PROFILE_FILE="$OUT/$t.%p.profraw" ASAN_OPTIONS=detect_leaks=0 \
        timeout 1800 nice "$bin" -runs=0 -timeout=30 -rss_limit_mb=4096 "$scratch" "${dirs[@]}" \
        >"$OUT/$t.run.log" 2>&1; then
        echo "fuzz-coverage: $t failed over its corpus (see $OUT/$t.run.log)" >&2
        status=1
    fi
    rm -rf "$scratch"
    if ! ls "$OUT/$t".*.profraw >/dev/null 2>&1; then
        echo "fuzz-coverage: $t wrote no profile" >&2
        status=1
        continue
    fi
    "$PROFDATA" merge -sparse -o "$OUT/$t.profdata" "$OUT/$t".*.profraw
    rm -f "$OUT/$t".*.profraw
    "$LLVMCOV" report "$bin" -instr-profile="$OUT/$t.profdata" "$src" >"$OUT/$t.txt"
    # TOTAL  regions missed cover  functions missed executed  lines missed cover  [branches...]
    read -r regs rmiss funcs fmiss lines lmiss < <(awk '$1 == "TOTAL" {
        print $2, $3, $5, $6, $8, $9 }' "$OUT/$t.txt")
    if [ -z "${regs:-}" ]; then
        # a single file: llvm-cov prints no TOTAL line; take the file's own line
        read -r regs rmiss funcs fmiss lines lmiss < <(awk -v s="$src" 'index($1, s) == 1 ||
            $1 ~ /\.c$/ { print $2, $3, $5, $6, $8, $9; exit }' "$OUT/$t.txt")
    fi
    echo "| $t | ${src#"$ROOT"/} | $nfiles | $lines | $(pct $((lines - lmiss)) "$lines") |" \
        "$regs | $(pct $((regs - rmiss)) "$regs") | $funcs | $(pct $((funcs - fmiss)) "$funcs") |"
done
echo
echo "Coverage of the module under test only (llvm-cov report filtered to its directory), each" \
    "target run once over fuzz/campaign/<target>/ and fuzz/corpus/<target>/ ($(date -u +%F))."
exit $status
