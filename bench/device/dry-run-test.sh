#!/usr/bin/env bash
# Checks bench/device/run.sh without a GPU (CI): in temporary output folders,
#   1. --list and the usage errors (exit 2);
#   2. --dry-run: exit 0; summary.md holds exactly one PASS/SKIP line per stage of --list, no FAIL, a total;
#      at most 8 files under $OUT (what the device tool brings back), named in letters, digits, '.', '_', '-', at
#      most 2 folders down; every line of results.jsonl is JSON;
#   3. --dry-run --quick: one line per stage marked for --quick; --stages: exactly the stages named;
#   4. a stage past its timeout (an nvidia-smi that hangs, --stage-timeout 3) FAILs with "timed out", the run
#      ends within seconds and still writes every line; a spent --budget SKIPs the stages.
# Needs the jars: .device/ (bench/device/pack.sh) or the reactor's build (mvn package -pl bench -am, or mvn verify).
#
# usage: bench/device/dry-run-test.sh
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)"
cd "$ROOT"
RUN=bench/device/run.sh
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
failures=0

check() {  # description, command...
    local what="$1"
    shift
    if "$@"; then
        echo "ok   $what"
    else
        echo "FAIL $what"
        failures=$((failures + 1))
    fi
}
lines() {  # summary.md, stage: how many result lines the stage has
    grep -cE "^- (PASS|FAIL|SKIP) $2 \([0-9]+ s\): " "$1" || true
}
one_line_per_stage() {  # out folder, stages...
    local out="$1" s n ok=0
    shift
    for s in "$@"; do
        n="$(lines "$out/summary.md" "$s")"
        if [ "$n" != 1 ]; then
            echo "     $s: $n result lines in summary.md"
            ok=1
        fi
    done
    n="$(grep -cE '^- (PASS|FAIL|SKIP) ' "$out/summary.md" || true)"
    if [ "$n" != $# ]; then
        echo "     $n result lines for $# stages"
        ok=1
    fi
    grep -qE '^total: [0-9]+ s; ' "$out/summary.md" || { echo "     no total line"; ok=1; }
    return $ok
}
fits_the_device_tool() {  # out folder
    local out="$1" ok=0 n
    n="$(find "$out" -type f | wc -l)"
    [ "$n" -le 8 ] || { echo "     $n files under \$OUT (at most 8 come back)"; ok=1; }
    if find "$out" -mindepth 1 | sed "s|^$out/||" | grep -vE '^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+){0,2}$'; then
        echo "     names or depths the device tool would not bring back (above)"
        ok=1
    fi
    return $ok
}
no_fail() {
    ! grep -E '^- FAIL ' "$1/summary.md"
}
jsonl_parses() {
    if ! command -v python3 >/dev/null 2>&1; then
        return 0
    fi
    python3 -c 'import json, sys; [json.loads(l) for l in open(sys.argv[1])]' "$1/results.jsonl"
}

mapfile -t stages < <(bash "$RUN" --list | awk 'NR > 1 && NF == 0 { exit } NR > 1 { print $1 }')
mapfile -t quick < <(bash "$RUN" --list | awk 'NR > 1 && NF == 0 { exit } NR > 1 && $4 != "-" { print $1 }')
check "--list names the stages (${stages[*]})" test "${#stages[@]}" -ge 8
check "--quick runs fewer stages (${quick[*]})" test "${#quick[@]}" -lt "${#stages[@]}"
for bad in "--stages env,nonesuch" "--budget soon" "--no-such-option"; do
    rc=0
    # shellcheck disable=SC2086
    OUT="$tmp/usage" bash "$RUN" $bad >/dev/null 2>&1 || rc=$?
    check "run.sh $bad exits 2" test "$rc" = 2
done

echo "--- dry run"
rc=0
OUT="$tmp/dry" bash "$RUN" --dry-run >"$tmp/dry.txt" 2>&1 || rc=$?
check "dry run exits 0" test "$rc" = 0
check "dry run: summary.md, one line per stage" one_line_per_stage "$tmp/dry" "${stages[@]}"
check "dry run: no FAIL" no_fail "$tmp/dry"
check "dry run: at most 8 files the device tool can bring back" fits_the_device_tool "$tmp/dry"
check "dry run: results.jsonl is JSON lines" jsonl_parses "$tmp/dry"
check "dry run: the EMA benchmark ran on the CPU backend" grep -qE '^- SKIP ema-bench .*tiny ema [0-9]+ GB/s' \
    "$tmp/dry/summary.md"
check "dry run: the JUnit launcher found the CUDA test classes" grep -qE '^- SKIP train-tests .*tests [1-9][0-9]* found' \
    "$tmp/dry/summary.md"

echo "--- dry run, --quick"
rc=0
OUT="$tmp/quick" bash "$RUN" --dry-run --quick >"$tmp/quick.txt" 2>&1 || rc=$?
check "quick dry run exits 0" test "$rc" = 0
check "quick dry run: one line per quick stage" one_line_per_stage "$tmp/quick" "${quick[@]}"

echo "--- dry run, --stages env,ema-bench"
rc=0
OUT="$tmp/some" bash "$RUN" --dry-run --stages ema-bench,env >"$tmp/some.txt" 2>&1 || rc=$?
check "--stages exits 0" test "$rc" = 0
check "--stages: exactly env and ema-bench" one_line_per_stage "$tmp/some" env ema-bench

echo "--- a stage past its timeout, a spent budget"
mkdir -p "$tmp/bin"
printf '#!/bin/sh\nexec sleep 300\n' >"$tmp/bin/nvidia-smi"
chmod +x "$tmp/bin/nvidia-smi"
rc=0
start=$SECONDS
PATH="$tmp/bin:$PATH" OUT="$tmp/hang" bash "$RUN" --dry-run --stages env,state-file --stage-timeout 3 \
    >"$tmp/hang.txt" 2>&1 || rc=$?
check "a timed-out stage makes the run exit 1" test "$rc" = 1
check "the run went on after the timeout and ended in $((SECONDS - start)) s" test $((SECONDS - start)) -lt 60
check "the timed-out stage FAILs with the reason" grep -qE '^- FAIL env \([0-9]+ s\): timed out after 3 s' \
    "$tmp/hang/summary.md"
check "the next stage still ran" one_line_per_stage "$tmp/hang" env state-file
rc=0
OUT="$tmp/budget" bash "$RUN" --dry-run --budget 5 >"$tmp/budget.txt" 2>&1 || rc=$?
check "a spent budget: exit 0, every stage SKIPs with the reason" \
    test "$rc" = 0 -a "$(grep -cE '^- SKIP [a-z-]+ \(0 s\): budget: ' "$tmp/budget/summary.md")" = "${#stages[@]}"

if [ "$failures" -ne 0 ]; then
    echo "dry-run-test.sh: $failures check(s) failed; the dry run's summary:"
    cat "$tmp/dry/summary.md"
    exit 1
fi
echo "dry-run-test.sh: PASS"
