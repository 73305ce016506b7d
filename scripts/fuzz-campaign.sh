#!/usr/bin/env bash
# The fuzzing campaign: every libFuzzer target (ASan + UBSan) in turns of SLOT seconds, the
# target with the least CPU time so far first, until each has GOAL CPU seconds (default one
# CPU-hour) or the run is stopped. It can be stopped and resumed at any time:
#   - fuzz/campaign/<target>/ is the kept corpus, minimised (-merge=1) after every turn and
#     committed; each turn starts from it plus the seeds in fuzz/corpus/<target>/;
#   - fuzz/campaign.tsv has one line per turn: date, target, CPU seconds (user + sys of the
#     fuzzer), executions, edges (cov), features (ft), corpus files, crashes;
#   - crashes go to fuzz/crashes/ (fix them, add the input to the seeds, delete the file).
# It runs at SCHED_IDLE so it only takes CPU nothing else wants.
#   scripts/fuzz-campaign.sh [SLOT=600] [GOAL=3600] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SLOT=${1:-600}
GOAL=${2:-3600}
shift 2 || shift $# || true
B=$ROOT/build-campaign
[ "${SKIP_DEPS:-0}" = 1 ] || bash scripts/deps.sh
CC=clang cmake -S . -B "$B" -DMMTLS_FUZZ=ON >/dev/null
cmake --build "$B" -j"$(nproc)" >/dev/null
LEDGER=$ROOT/fuzz/campaign.tsv
[ -f "$LEDGER" ] ||
    printf 'date\ttarget\tcpu_s\texecs\tcov\tft\tcorpus_files\tcrashes\n' >"$LEDGER"
mkdir -p "$ROOT/fuzz/campaign" "$ROOT/fuzz/crashes"

targets=("$@")
if [ ${#targets[@]} = 0 ]; then
    for t in "$B"/fuzz/fuzz_*; do [ -x "$t" ] && targets+=("$(basename "$t")"); done
fi

cpu_so_far() { # target -> integer CPU seconds in the ledger
    awk -F'\t' -v t="$1" '$2 == t { s += $3 } END { printf "%d\n", s }' "$LEDGER"
}

while :; do
    next="" least=""
    for t in "${targets[@]}"; do
        s=$(cpu_so_far "$t")
        if [ "$s" -lt "$GOAL" ] && { [ -z "$least" ] || [ "$s" -lt "$least" ]; }; then
            next=$t least=$s
        fi
    done
    [ -n "$next" ] || break
    kept=$ROOT/fuzz/campaign/$next
    work=$B/corpus/$next
    mkdir -p "$kept" "$work"
    log=$B/$next.log
    # The last turn only runs as long as the target still needs (at least a minute), plus 15 s:
    # a turn's CPU time comes out a few seconds under its wall time (start-up, final stats).
    turn=$((GOAL - least + 15))
    [ "$turn" -le "$SLOT" ] || turn=$SLOT
    [ "$turn" -ge 60 ] || turn=60
    echo "== $next: ${least}s so far, turn of ${turn}s"
    # Crashes stop the fuzzer; the turn is still recorded (crashes column) and the loop goes on.
    set +e
    /usr/bin/time -f '%U %S' -o "$B/$next.time" chrt -i 0 "$B/fuzz/$next" \
        -max_total_time="$turn" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$ROOT/fuzz/crashes/$next-" "$work" "$kept" \
        "$ROOT/fuzz/corpus/$next" >"$log" 2>&1
    set -e
    cpu=$(awk '{ printf "%d\n", $1 + $2 }' "$B/$next.time" 2>/dev/null | tail -1)
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1 || true)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2 || true)
    ft=$(grep -o 'ft: [0-9]*' "$log" | tail -1 | cut -d' ' -f2 || true)
    crashes=$(grep -c '^==[0-9]*==ERROR\|^SUMMARY: \|deadly signal' "$log" || true)
    # Keep a minimal corpus with the same coverage (what is committed).
    rm -rf "$kept.new" && mkdir -p "$kept.new"
    chrt -i 0 "$B/fuzz/$next" -merge=1 -timeout=10 -rss_limit_mb=2048 "$kept.new" "$kept" \
        "$work" >"$B/$next.merge.log" 2>&1 && rm -rf "$kept" && mv "$kept.new" "$kept"
    files=$(find "$kept" -type f | wc -l)
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$(date -u +%FT%TZ)" "$next" "${cpu:-0}" \
        "${execs:-0}" "${cov:-0}" "${ft:-0}" "$files" "$crashes" >>"$LEDGER"
    tail -1 "$LEDGER"
    if [ "$crashes" != 0 ]; then
        echo "!! $next crashed: see $log and fuzz/crashes/; no more turns for it in this run"
        rest=()
        for t in "${targets[@]}"; do [ "$t" = "$next" ] || rest+=("$t"); done
        targets=("${rest[@]}")
        [ ${#targets[@]} -gt 0 ] || break
    fi
done
echo "campaign: every target has ${GOAL} CPU seconds"
