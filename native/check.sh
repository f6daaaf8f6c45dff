#!/usr/bin/env bash
# Builds and runs native/ema_check.cu:
#   1. host emulation (g++ -include native/cuda_host_shim.h): always, full size
#   2. host emulation with AddressSanitizer + UndefinedBehaviorSanitizer, --quick: unless --no-sanitize, or when
#      g++ cannot link sanitizers here (then a SKIP line says so)
#   3. the real CUDA build (nvcc -O3 -arch=native): only when `nvidia-smi -L` lists a GPU; runs the checks and then
#      the benchmark (unless --no-bench)
#
# usage: native/check.sh [--quick] [--no-sanitize] [--no-bench]
#   --quick        pass --quick to every run (fewer sizes and launch configurations)
#   --no-sanitize  skip step 2
#   --no-bench     pass --no-bench to the GPU run
# Exits non-zero when any build or any case fails. Binaries go to native/build/ (git-ignored).
# Environment: CXX (default g++), NVCC (default nvcc), NVCC_ARCH (default native), EMA_CHECK_ARGS (extra arguments
# for every run, e.g. "--seed 7").
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd "$ROOT"

CXX="${CXX:-g++}"
NVCC="${NVCC:-nvcc}"
NVCC_ARCH="${NVCC_ARCH:-native}"
BUILD="native/build"

quick=()
sanitize=1
gpu_args=()
for arg in "$@"; do
    case "$arg" in
        --quick) quick=(--quick) ;;
        --no-sanitize) sanitize=0 ;;
        --no-bench) gpu_args+=(--no-bench) ;;
        -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "check.sh: unknown argument '$arg' (usage: native/check.sh [--quick] [--no-sanitize] [--no-bench])" >&2; exit 2 ;;
    esac
done
read -r -a extra <<<"${EMA_CHECK_ARGS:-}"

mkdir -p "$BUILD"
HOST_FLAGS=(-std=c++17 -ffp-contract=off -fno-fast-math -Wall -Wextra -Wno-unknown-pragmas -x c++
            -include native/cuda_host_shim.h native/ema_check.cu)
failed=0
summary=()

run_step() {  # name, command...
    local name="$1" start end rc=0
    shift
    echo
    echo "=== $name: $*"
    start=$(date +%s)
    "$@" || rc=$?
    end=$(date +%s)
    if [ $rc -eq 0 ]; then
        summary+=("PASS  $name ($((end - start)) s)")
    else
        summary+=("FAIL  $name (exit $rc, $((end - start)) s)")
        failed=1
    fi
    return 0
}

# 1. host emulation
if "$CXX" -O2 "${HOST_FLAGS[@]}" -o "$BUILD/ema_check_host"; then
    run_step "host emulation" "$BUILD/ema_check_host" "${quick[@]}" "${extra[@]}"
else
    summary+=("FAIL  host emulation: build failed")
    failed=1
fi

# 2. host emulation under sanitizers
if [ $sanitize -eq 1 ]; then
    SAN=(-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer)
    probe="$BUILD/san_probe"
    if echo 'int main() { return 0; }' | "$CXX" "${SAN[@]}" -x c++ - -o "$probe" >/dev/null 2>&1 && "$probe"; then
        if "$CXX" -O1 -g "${SAN[@]}" "${HOST_FLAGS[@]}" -o "$BUILD/ema_check_host_san"; then
            run_step "host emulation, ASan+UBSan" env ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
                UBSAN_OPTIONS=print_stacktrace=1 "$BUILD/ema_check_host_san" --quick "${extra[@]}"
        else
            summary+=("FAIL  host emulation, ASan+UBSan: build failed")
            failed=1
        fi
    else
        summary+=("SKIP  host emulation, ASan+UBSan: $CXX cannot link -fsanitize=address,undefined here")
    fi
    rm -f "$probe"
else
    summary+=("SKIP  host emulation, ASan+UBSan (--no-sanitize)")
fi

# 3. the GPU, when there is one
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L 2>/dev/null | grep -q '^GPU [0-9]'; then
    nvidia-smi -L
    if "$NVCC" -O3 -std=c++17 -arch="$NVCC_ARCH" -Xcompiler -Wall,-Wno-unknown-pragmas native/ema_check.cu \
        -o "$BUILD/ema_check_gpu"; then
        run_step "GPU" "$BUILD/ema_check_gpu" "${quick[@]}" "${gpu_args[@]}" "${extra[@]}"
    else
        summary+=("FAIL  GPU: nvcc build failed")
        failed=1
    fi
else
    summary+=("SKIP  GPU: nvidia-smi -L lists no GPU")
fi

echo
echo "=== check.sh summary"
printf '%s\n' "${summary[@]}"
exit $failed
