#!/usr/bin/env bash
# Runs on the GPU machine, in one call of a few minutes, from the repository root with .device/ carried
# (bench/device/pack.sh): system report, the kernel check harness (native/check.sh), the CUDA conformance suites
# (EMA and training operations), a safetensors state file read by Python, the GPU JMH benchmarks (EMA; training
# operations and training steps), the PyTorch baselines and comparison tables.
# Everything lands in $OUT (default: ./device-out); summary.md holds the results and PASS/FAIL per step.
#
# usage: bash bench/device/run.sh
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)"
cd "$ROOT"
OUT="${OUT:-$ROOT/device-out}"
mkdir -p "$OUT"
JAVA=.device/jre/bin/java
CP='.device/lib/*'
export PYTHONUNBUFFERED=1
results=()
status=0

step() {
    local name="$1"
    shift
    local start=$SECONDS
    echo "=== $name: $*"
    if "$@" >"$OUT/$name.log" 2>&1; then
        results+=("PASS $name ($((SECONDS - start)) s)")
    else
        results+=("FAIL $name (exit $?, $((SECONDS - start)) s; see $name.log)")
        status=1
    fi
    tail -n 25 "$OUT/$name.log"
}

system_report() {
    date -u
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv
    echo "libcuda / libcublas known to the loader:"
    ldconfig -p | grep -E 'libcuda\.so|libcublas\.so' || echo "  none"
    command -v nvcc >/dev/null && nvcc --version | tail -n 2
    python3 -c 'import torch, safetensors; print("torch", torch.__version__, "safetensors", safetensors.__version__)'
    "$JAVA" -version
    "$JAVA" -cp "$CP" dev.ema4j.bench.BackendReport
}

step system system_report
step native-check native/check.sh --quick --no-sanitize
step cuda-tests "$JAVA" -Dema4j.requireCuda=true -cp "$CP" org.junit.platform.console.ConsoleLauncher execute --disable-banner --details=tree \
    --reports-dir "$OUT/junit" --select-class dev.ema4j.CudaEmaConformanceTest --select-class dev.ema4j.BackendsTest \
    --select-class dev.ema4j.nn.CudaNnConformanceTest
# Where cuBLAS loads, the run above checks it; this one checks the tiled GEMM kernels on the same GPU.
step cuda-tests-tiled "$JAVA" -Dema4j.requireCuda=true -Dema4j.cuda.gemm=tiled -cp "$CP" \
    org.junit.platform.console.ConsoleLauncher execute --disable-banner --details=summary \
    --reports-dir "$OUT/junit-tiled" --select-class dev.ema4j.nn.CudaNnConformanceTest
step state-file bash -c "'$JAVA' -cp '$CP' dev.ema4j.bench.StateFileInterop '$OUT/state.safetensors' \
    && python3 bench/device/check_state_file.py '$OUT/state.safetensors'"
step jmh-gpu "$JAVA" -cp "$CP" dev.ema4j.bench.BenchMain gpu --quick --out "$OUT/gpu-jmh.md" --json "$OUT/gpu-jmh.json"
step torch python3 bench/device/torch_ema.py --out "$OUT/torch.json"
step compare bash -c "python3 bench/device/summarize.py '$OUT/gpu-jmh.json' '$OUT/torch.json' > '$OUT/compare.md'"
step jmh-gpu-train "$JAVA" -cp "$CP" dev.ema4j.bench.BenchMain gpu-train --quick --out "$OUT/gpu-train-jmh.md" \
    --json "$OUT/gpu-train-jmh.json"
step torch-train python3 bench/device/torch_train.py --out "$OUT/torch-train.json"
step compare-train bash -c "python3 bench/device/summarize_train.py '$OUT/gpu-train-jmh.json' '$OUT/torch-train.json' \
    > '$OUT/compare-train.md'"

{
    echo "# ema4j device run"
    echo
    printf -- '- %s\n' "${results[@]}"
    echo
    echo '## System'
    echo '```'
    cat "$OUT/system.log"
    echo '```'
    echo
    echo '## GPU benchmarks: ema4j (JMH) against PyTorch, same machine, same run'
    cat "$OUT/compare.md" 2>/dev/null
    echo
    echo '## JMH table'
    cat "$OUT/gpu-jmh.md" 2>/dev/null
    echo
    echo '## GPU training: ema4j (JMH) against PyTorch eager, same machine, same run'
    cat "$OUT/compare-train.md" 2>/dev/null
    echo
    echo '## JMH table, training'
    cat "$OUT/gpu-train-jmh.md" 2>/dev/null
    echo
    echo '## Kernel check harness (native/check.sh)'
    echo '```'
    grep -E 'PASS|FAIL|GB/s|SKIP|ratio' "$OUT/native-check.log" | tail -n 60
    echo '```'
} >"$OUT/summary.md"
cat "$OUT/summary.md"
exit $status
