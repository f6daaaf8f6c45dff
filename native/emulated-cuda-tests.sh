#!/usr/bin/env bash
# Runs the CUDA test classes on a machine without a GPU, against the CUDA driver emulator: builds it
# (native/build-emulator.sh), puts native/build/emulator first in LD_LIBRARY_PATH so that JCuda loads its
# libcuda.so.1, and runs `mvn test` in the core, cuda and train modules for Cuda*Test, BackendsTest and
# CrossBackendTrainingTest with -Dema4j.requireCuda=true (an unavailable CUDA fails them instead of skipping them).
# The surefire JVMs inherit the environment; the emulator's log (EMA4J_CUDA_EMULATOR_LOG) proves that it ran the
# tests, and lists the kernels they launched and each JVM's schedule seed (blocks and threads run in a shuffled order,
# streams run their work late: see native/README.md). A failure prints the seeds; EMA4J_CUDA_EMULATOR_SEED=<seed>
# reruns with one.
#
# usage: native/emulated-cuda-tests.sh [PATTERN]
#   PATTERN  more tests for surefire's -Dtest, run with the default ones (e.g. 'CudaNnOpsTest' or 'Cuda*Test#swap*')
# Exits non-zero when the emulator does not build, a test fails, or the tests did not run on the emulator.
# Environment: MVN (default "mvn -o": offline, the dependencies are in the local repository; MVN=mvn lets Maven
# download them), EMA4J_CUDA_EMULATOR_SEED (default: a random seed per JVM).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd "$ROOT"

tests='Cuda*Test,BackendsTest,CrossBackendTrainingTest'
case "${1:-}" in
    -h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    '') ;;
    *) tests="$tests,$1" ;;
esac
[ $# -le 1 ] || { echo "usage: native/emulated-cuda-tests.sh [PATTERN]" >&2; exit 2; }
read -r -a mvn <<<"${MVN:-mvn -o}"

native/build-emulator.sh

log="$(mktemp)"
console="$(mktemp)"
marker="$(mktemp)"
trap 'rm -f "$log" "$console" "$marker"' EXIT
echo
echo "=== mvn test -Dtest='$tests' on the CUDA driver emulator"
rc=0
LD_LIBRARY_PATH="$ROOT/native/build/emulator${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" EMA4J_CUDA_EMULATOR_LOG="$log" \
    "${mvn[@]}" -B -q -Dstyle.color=never test -pl src/core,src/cuda,src/train -Dtest="$tests" \
    -Dsurefire.failIfNoSpecifiedTests=false \
    -Dema4j.requireCuda=true 2>&1 | tee "$console" || rc=$?

# This run's reports: one line per test class, then the emulator's messages (on the JVM's stderr: in Maven's
# output, or in the tests' output files).
reports=()
outputs=("$console")
while IFS= read -r f; do
    if [[ "$f" == */TEST-*.xml ]]; then reports+=("$f"); else outputs+=("$f"); fi
done < <(find src/*/target/surefire-reports -newer "$marker" -type f 2>/dev/null | sort)
count() { sed -n "s/.* $1=\"\([0-9]*\)\".*/\1/p" <<<"$2"; }  # attribute, <testsuite ...> line
total=0
echo
echo "=== tests on the emulator"
for xml in "${reports[@]+"${reports[@]}"}"; do
    suite="$(grep -m 1 '<testsuite' "$xml")"
    t="$(count tests "$suite")" f="$(count failures "$suite")" e="$(count errors "$suite")"
    s="$(count skipped "$suite")"
    total=$((total + t))
    printf '%-50s %4s run, %4s passed, %3s failed, %3s errors, %3s skipped\n' \
        "$(basename "$xml" .xml | sed 's/^TEST-//')" "$t" "$((t - f - e - s))" "$f" "$e" "$s"
done
messages="$(cat "${outputs[@]}" | sed 's/\x1b\[[0-9;]*m//g' | grep -E 'ema4j CUDA emulator:|host emulation:' \
    | sort | uniq -c || true)"
if [ -n "$messages" ]; then
    echo
    echo "=== emulator messages (count, message)"
    echo "$messages"
fi
echo
echo "=== emulator log"
cat "$log"
if ! grep -q 'cuInit: ema4j CUDA emulator' "$log"; then
    echo "emulated-cuda-tests.sh: FAIL: the tests did not call cuInit of the emulator (is LD_LIBRARY_PATH honoured?)"
    exit 1
fi
if [ $rc -ne 0 ] || [ $total -eq 0 ]; then
    seeds="$(sed -n 's/.*EMA4J_CUDA_EMULATOR_SEED=\([0-9]*\).*/\1/p' "$log" | sort -u | tr '\n' ' ')"
    echo "emulated-cuda-tests.sh: FAIL (mvn exit $rc, $total tests); schedule seeds of this run: ${seeds:-none}" \
        "(rerun with EMA4J_CUDA_EMULATOR_SEED=<seed> native/emulated-cuda-tests.sh)"
    exit 1
fi
echo "emulated-cuda-tests.sh: PASS ($total tests)"
