#!/usr/bin/env bash
# The device check: runs on the GPU machine, from the repository root, with .device/ carried (bench/device/pack.sh),
# in one call of the device tool. Stages run in the order below, by value, each in its own process group under its
# own `timeout`, and each appends its result line to $OUT/summary.md the moment it ends, so a run that is cut off
# still returns what it did:
#
#   env                GPU (nvidia-smi), driver, libcuda / libcublas found (ldconfig -p, common folders), nvcc,
#                      compute-sanitizer, Java, PyTorch; BackendReport (the backend and the training GEMM)
#   cublas             FAILs when the loader finds libcublas.so.13 (or, without it, .so.12) but the training GEMM
#                      is not that cuBLAS (pip's nvidia-* library folders are put on LD_LIBRARY_PATH first)
#   ema-tests          JUnit CudaEmaConformanceTest, CudaProviderTest: own JVM, -Dema4j.cuda.sync=true
#                      -Dema4j.requireCuda=true
#   train-tests        JUnit CudaNnConformanceTest, CrossBackendTrainingTest: own JVM, synchronized launches
#   graph-tests        JUnit CudaGraphTest, CudaTrainingGraphsTest, CudaStreamsTest: own JVM, launches not
#                      synchronized (sync mode turns CUDA graphs off), so captured training steps run as in use
#   train-tests-tiled  the same with -Dema4j.cuda.gemm=tiled, only when BackendReport's GEMM is cuBLAS
#   native-check       native/check.sh --quick --no-sanitize: the kernel harness in host emulation, then built with
#                      nvcc for this GPU, checked and timed against cudaMemcpy (needs nvcc)
#   ema-bench          DeviceQuickBench ema (2.5e7 and 1e9 fp32 parameters, ResNet-50's 161 tensors: copy, update
#                      unguarded and guarded, fused K=3 and three singles, bf16 parameters) and torch_ema.py
#                      (_foreach_lerp_ on the same shapes) when torch sees CUDA; summarize.py gives the ratios
#   train-bench        DeviceQuickBench train (SGD alone and fused with 1 and 3 EMAs over 2.5e7 parameters, 3x3
#                      convolution, SmallCnn(16) and ResNet-20 training steps at batch 128, with and without CUDA
#                      graphs) and torch_train.py
#   memcheck           compute-sanitizer memcheck on native/ema_check.cu --quick --no-bench (built with -lineinfo;
#                      needs nvcc and compute-sanitizer)
#   racecheck          compute-sanitizer racecheck on the same
#   state-file         StateFileInterop writes an EMA state file on the best backend; check_state_file.py reads it
#                      with Python's safetensors
#
# `--list` prints each stage's timeout and estimated duration. Unless a stage's result line says otherwise, a stage
# without what it needs (a GPU, nvcc, compute-sanitizer, PyTorch with CUDA) is SKIPped with the reason.
#
# With the device tool: bench/device/pack.sh here, then run "bash bench/device/run.sh" (timeout_s 600; --quick: 240)
# with carry [".device"]; everything comes back from $OUT. Without a GPU (CI): bench/device/dry-run-test.sh.
#
# usage: bash bench/device/run.sh [--quick] [--dry-run] [--stages a,b,...] [--budget SECONDS]
#                                 [--stage-timeout SECONDS] [--list] [-h]
#   --quick          the stages marked quick in --list, with fewer shapes and iterations (under 3 minutes)
#   --dry-run        no GPU is used (CUDA_VISIBLE_DEVICES=-1): every stage takes its skip path or runs its
#                    CPU-verifiable part (the JUnit launcher resolves the classes, the benchmarks run on the CPU
#                    backend with tiny shapes, their tables and lines are made); GPU stages report SKIP (FAIL
#                    when their CPU part fails)
#   --stages a,b     only these stages (in the order above)
#   --budget S       wall-clock budget of the run (default 560 s, --quick 170 s): a stage gets at most what is left,
#                    and none starts with less than 10 s left (SKIP)
#   --stage-timeout S  caps every stage's timeout (to try the timeout path)
#   --list           print the stages and exit
# Environment: OUT (default ./device-out), PYTHON (default python3), NVCC (default nvcc), NVCC_ARCH (default native).
#
# Output, at most 8 files under $OUT (the device tool brings 8 back): summary.md (a header, one line per stage
# `- PASS|FAIL|SKIP <stage> (<seconds> s): <key numbers or reason>`, a total), results.md (tables), results.jsonl
# (one JSON object per stage result and per benchmark run), and the logs env.log, tests.log, native.log, bench.log.
# Java and the jars: .device/runtime.tar.xz (unpacked once into $EMA4J_DEVICE_RUNTIME, default
# ${TMPDIR:-/tmp}/ema4j-device-runtime) and .device/lib when present, else the system's java and the reactor's build
# output (bench/target after `mvn package -pl bench -am`). Exit status: 0 without FAIL, 1 with one, 2 for a usage error,
# 128 + the signal number when interrupted (the current stage FAILs, the rest SKIP, all in summary.md).
set -uo pipefail
SELF="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)/$(basename "${BASH_SOURCE[0]}")"
ROOT="$(cd "$(dirname "$SELF")/../.." && pwd -P)"
cd "$ROOT"

# name | timeout s | estimate s, full | estimate s, --quick ("-": not in --quick) | log | what. The estimates are for an
# H100 and are guesses until a GPU run has measured them; the timeouts sum to 560 s.
STAGE_TABLE=(
    "env|25|10|10|env.log|GPU, driver, libcuda/libcublas, nvcc, compute-sanitizer, Java, PyTorch; BackendReport"
    "cublas|20|5|5|env.log|a libcublas.so.13 (or .so.12) the loader finds must be the training GEMM"
    "ema-tests|60|25|25|tests.log|CudaEmaConformanceTest + CudaProviderTest, synchronized launches"
    "train-tests|70|35|35|tests.log|CudaNnConformanceTest + CrossBackendTrainingTest, synchronized launches"
    "graph-tests|30|15|15|tests.log|CudaGraphTest + CudaTrainingGraphsTest + CudaStreamsTest, launches not synchronized"
    "train-tests-tiled|40|25|-|tests.log|train-tests with -Dema4j.cuda.gemm=tiled (only after cuBLAS)"
    "native-check|50|30|-|native.log|native/check.sh --quick --no-sanitize (needs nvcc)"
    "ema-bench|85|50|30|bench.log|DeviceQuickBench ema + torch_ema.py, ratios to copy and PyTorch"
    "train-bench|80|50|30|bench.log|DeviceQuickBench train (steps with and without CUDA graphs) + torch_train.py"
    "memcheck|40|30|-|native.log|compute-sanitizer memcheck on the harness --quick --no-bench (built -lineinfo)"
    "racecheck|35|20|-|native.log|compute-sanitizer racecheck on the same"
    "state-file|25|10|10|tests.log|StateFileInterop + check_state_file.py (safetensors)"
)
stage_field() {  # name, field number (1-based)
    local row
    for row in "${STAGE_TABLE[@]}"; do
        if [ "${row%%|*}" = "$1" ]; then
            cut -d '|' -f "$2" <<<"$row"
            return
        fi
    done
}
all_stages() {
    local row
    for row in "${STAGE_TABLE[@]}"; do echo "${row%%|*}"; done
}

# --- helpers for the stage bodies (run as `run.sh --stage-body NAME` under timeout) ---------------------------------

note() {  # one piece of the stage's result line; also in the log
    echo "$*" >>"$WORK/$STAGE.note"
    echo "note: $*"
}
skip() {  # ends the stage as SKIP with the reason (first in the result line)
    echo "$*" >"$WORK/$STAGE.reason"
    echo "skip: $*"
    exit 3
}
fail() {  # ends the stage as FAIL with the reason (first in the result line)
    echo "$*" >"$WORK/$STAGE.reason"
    echo "fail: $*"
    exit 1
}
json_string() {  # a JSON string of $1
    local s="${1//\\/\\\\}"
    s="${s//\"/\\\"}"
    s="$(tr -d '\000-\037' <<<"$s")"
    printf '"%s"' "$s"
}
need_java() {
    [ -n "$JAVA" ] || fail "no Java: neither .device/runtime.tar.xz nor a java on the PATH"
    [ -n "$CP" ] || fail "no jars: neither .device/lib nor bench/target/lib (bench/device/pack.sh, or mvn package" \
        "-pl bench -am)"
}
have_gpu() {
    [ "$GPU_COUNT" -gt 0 ]
}
need_gpu() {  # skips when there is no GPU (the dry run has none)
    have_gpu || skip "$GPU_WHY"
}
torch_probe() {  # "yes: ..." or "no: reason"; cuda|cpu; cached per run
    local want="$1" cache="$WORK/torch-probe-$1"
    if [ ! -s "$cache" ]; then
        if ! command -v "$PYTHON" >/dev/null 2>&1; then
            echo "no: $PYTHON not found" >"$cache"
        else
            timeout --foreground 90 "$PYTHON" - "$want" >"$cache.out" 2>&1 <<'PY'
import sys
want = sys.argv[1]
try:
    import torch
except Exception as e:
    print(f"no: import torch failed: {e}")
    sys.exit()
if not hasattr(torch, "_foreach_lerp_"):
    print(f"no: torch {torch.__version__} has no _foreach_lerp_")
elif want == "cuda" and not torch.cuda.is_available():
    print(f"no: torch {torch.__version__} sees no CUDA device")
elif want == "cuda":
    print(f"yes: torch {torch.__version__} on {torch.cuda.get_device_name(0)}")
else:
    print(f"yes: torch {torch.__version__} on the CPU")
PY
            local rc=$?
            if [ $rc -eq 124 ]; then
                echo "no: import torch took more than 90 s" >"$cache"
            else
                grep -E '^(yes|no): ' "$cache.out" | tail -n 1 >"$cache"
                [ -s "$cache" ] || echo "no: the torch probe failed (exit $rc): $(tail -n 1 "$cache.out")" >"$cache"
            fi
        fi
    fi
    cat "$cache"
}
junit() {  # stage label, extra JVM options (one word, may be empty), test classes...
    local label="$1" extra="$2"
    shift 2
    need_java
    local selects=() c
    for c in "$@"; do selects+=(--select-class "$c"); done
    local props=(-Dema4j.cuda.sync=true -Dema4j.requireCuda=true)
    if [ "$DRY" = 1 ]; then
        props=()  # without CUDA the classes that need it are skipped: this checks that they resolve and load
    else
        need_gpu
    fi
    [ -z "$extra" ] || props+=("$extra")
    local out="$WORK/$STAGE.junit"
    "$JAVA" ${props[@]+"${props[@]}"} -cp "$CP" org.junit.platform.console.ConsoleLauncher execute --disable-banner \
        --disable-ansi-colors --details=testfeed "${selects[@]}" 2>&1 | tee "$out"
    local rc=${PIPESTATUS[0]}
    local k n summary="$label: tests"
    for k in found successful failed aborted skipped; do
        n="$(sed -n "s/^\[ *\([0-9]*\) tests $k .*/\1/p" "$out" | tail -n 1)"
        summary="$summary ${n:-?} $k,"
    done
    summary="${summary%,}"
    n="$(sed -n 's/^\[ *\([0-9]*\) containers failed .*/\1/p' "$out" | tail -n 1)"
    [ "${n:-0}" = 0 ] || summary="$summary; $n containers failed"
    printf '{"stage":"%s","tests":%s}\n' "$STAGE" "$(json_string "$summary")" >>"$OUT/results.jsonl"
    {
        echo "## $STAGE"
        echo
        echo "$summary"
        echo
    } >>"$OUT/results.md"
    local failures  # testfeed lines: "JUnit Jupiter > Class > test() :: FAILED"
    failures="$(sed -n 's/^JUnit [A-Za-z]* > \(.*\) :: FAILED.*$/\1/p' "$out" | sed 's/ > /./g' | head -n 3 \
        | paste -sd ',' -)"
    [ -z "$failures" ] || summary="$summary; first failures: $failures"
    if [ $rc -ne 0 ]; then
        fail "$summary (launcher exit $rc)"
    fi
    if [ "$DRY" = 1 ]; then
        skip "dry run, no CUDA: the launcher resolved $# classes; $summary"
    fi
    local found
    found="$(sed -n 's/^\[ *\([0-9]*\) tests found .*/\1/p' "$out" | tail -n 1)"
    [ "${found:-0}" -gt 0 ] || fail "$summary: no tests ran"
    note "$summary"
}
backend_report() {  # BackendReport's output, cached per run
    local cache="$WORK/backend-report"
    if [ ! -s "$cache" ]; then
        timeout --foreground 60 "$JAVA" -cp "$CP" dev.ema4j.bench.BackendReport >"$cache" 2>&1 \
            || echo "BackendReport failed (exit $?)" >>"$cache"
    fi
    cat "$cache"
}
find_sanitizer() {
    local c
    for c in "$(command -v compute-sanitizer 2>/dev/null)" /usr/local/cuda/bin/compute-sanitizer \
        /usr/local/cuda/compute-sanitizer/compute-sanitizer; do
        if [ -n "$c" ] && [ -x "$c" ]; then
            echo "$c"
            return
        fi
    done
}

# --- the stages -----------------------------------------------------------------------------------------------------

stage_env() {
    local gpu="none" libs=() cublas="" nvcc="absent" sanitizer="absent" java="absent" backend="" gemm=""
    echo "date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
    uname -a
    if command -v nvidia-smi >/dev/null 2>&1; then
        timeout --foreground 20 nvidia-smi || echo "nvidia-smi failed (exit $?)"
        gpu="$(timeout --foreground 20 nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap \
            --format=csv,noheader 2>/dev/null | head -n 1)"
        [ -n "$gpu" ] || gpu="nvidia-smi lists none"
    else
        gpu="no nvidia-smi"
    fi
    [ ! -r /proc/driver/nvidia/version ] || head -n 1 /proc/driver/nvidia/version
    echo
    echo "libcuda / libcublas known to the loader (ldconfig -p):"
    ldconfig -p 2>/dev/null | grep -E 'lib(cuda|cublas|cublasLt)\.so' || echo "  none"
    local d f ld=()
    local dirs=(/usr/lib/x86_64-linux-gnu /lib/x86_64-linux-gnu /usr/lib64 /usr/lib /usr/local/cuda/lib64
        /usr/local/cuda/targets/x86_64-linux/lib /usr/local/nvidia/lib64 /usr/local/nvidia/lib)
    [ -z "${LD_LIBRARY_PATH:-}" ] || IFS=: read -r -a ld <<<"$LD_LIBRARY_PATH"
    dirs+=("${ld[@]+"${ld[@]}"}")
    if command -v "$PYTHON" >/dev/null 2>&1; then  # pip's CUDA wheels (nvidia-cublas, ...)
        while IFS= read -r d; do
            [ -d "$d/nvidia" ] && while IFS= read -r f; do dirs+=("$(dirname "$f")"); done \
                < <(find "$d/nvidia" -maxdepth 4 -name 'libcublas.so*' 2>/dev/null)
        done < <(timeout --foreground 20 "$PYTHON" -c 'import site; print("\n".join(site.getsitepackages()))' \
            2>/dev/null)
    fi
    echo "in common folders, LD_LIBRARY_PATH and Python's site-packages:"
    for d in $(printf '%s\n' "${dirs[@]}" | awk 'NF && !seen[$0]++'); do
        for f in "$d"/libcuda.so* "$d"/libcublas.so* "$d"/libcublasLt.so*; do
            [ -e "$f" ] && libs+=("$f") && echo "  $f"
        done
    done
    local libcuda="absent"
    printf '%s\n' "${libs[@]+"${libs[@]}"}" | grep -q 'libcuda\.so' && libcuda="found"
    ldconfig -p 2>/dev/null | grep -q 'libcuda\.so' && libcuda="found"
    cublas="$( (printf '%s\n' "${libs[@]+"${libs[@]}"}"; ldconfig -p 2>/dev/null) \
        | grep -o 'libcublas\.so\.[0-9]*' | sed 's/libcublas//' | sort -u | paste -sd ' ' -)"
    echo
    if command -v "$NVCC" >/dev/null 2>&1; then
        nvcc="$("$NVCC" --version | sed -n 's/.*release \([0-9.]*\).*/\1/p')"
        "$NVCC" --version | tail -n 2
    fi
    local cs
    cs="$(find_sanitizer)"
    [ -z "$cs" ] || { sanitizer="yes"; timeout --foreground 20 "$cs" --version | tail -n 1; }
    if [ -n "$JAVA" ]; then
        "$JAVA" -version 2>&1
        java="$("$JAVA" -version 2>&1 | sed -n 's/.*version "\([^"]*\)".*/\1/p' | head -n 1) ($JAVA_FROM)"
    fi
    local torch
    torch="$(torch_probe "$([ "$DRY" = 1 ] && echo cpu || echo cuda)")"
    echo "PyTorch: $torch"
    if command -v "$PYTHON" >/dev/null 2>&1; then
        timeout --foreground 60 "$PYTHON" -c 'import safetensors; print("safetensors", safetensors.__version__)' 2>&1 \
            | tail -n 1
    fi
    local line="GPU: $gpu; libcuda: $libcuda; libcublas: ${cublas:-none}; nvcc: $nvcc"
    line="$line; compute-sanitizer: $sanitizer; java: $java"
    note "$line"
    if [ -n "$JAVA" ] && [ -n "$CP" ]; then
        local report
        report="$(backend_report)"
        echo "$report"
        backend="$(sed -n 's/^ema4j backend: //p' <<<"$report")"
        gemm="$(sed -n 's/^ema4j CUDA training GEMM: //p' <<<"$report")"
        note "backend: ${backend:-?}${gemm:+; GEMM: $gemm}"
    fi
    note "PyTorch: ${torch#*: }"
    {
        echo "## env"
        echo
        echo '```'
        echo "$line"
        [ -z "$JAVA" ] || [ -z "$CP" ] || backend_report
        echo "PyTorch: $torch"
        echo '```'
        echo
    } >>"$OUT/results.md"
    printf '{"stage":"env","gpu":%s,"libcublas":%s,"nvcc":%s,"java":%s,"backend":%s,"gemm":%s,"torch":%s}\n' \
        "$(json_string "$gpu")" "$(json_string "$cublas")" "$(json_string "$nvcc")" "$(json_string "$java")" \
        "$(json_string "$backend")" "$(json_string "$gemm")" "$(json_string "$torch")" >>"$OUT/results.jsonl"
    need_java
    [ -n "$backend" ] || fail "BackendReport printed no backend"
    if [ "$DRY" = 0 ] && ! have_gpu; then
        fail "$GPU_WHY"
    fi
    [ "$DRY" = 0 ] || note "dry run"
}

# The libcublas.so.N the dynamic loader would find: LD_LIBRARY_PATH (with pip's folders, set below), the CUDA
# toolkit, ldconfig's cache.
visible_library() {
    local d
    for d in ${LD_LIBRARY_PATH//:/ } /usr/local/cuda/lib64; do
        [ -e "$d/$1" ] && { echo "$d/$1"; return; }
    done
    { ldconfig -p 2>/dev/null || /sbin/ldconfig -p 2>/dev/null; } | awk -v n="$1" '$1 == n { print $NF; exit }'
}

stage_cublas() {
    need_java
    local c13 c12 gemm
    c13="$(visible_library libcublas.so.13)"
    c12="$(visible_library libcublas.so.12)"
    gemm="$(backend_report | sed -n 's/^ema4j CUDA training GEMM: //p')"
    note "libcublas.so.13: ${c13:-none}; libcublas.so.12: ${c12:-none}; GEMM: ${gemm:-none}"
    if [ "$DRY" = 1 ] || ! have_gpu; then
        skip "no CUDA backend here (${GPU_WHY}): nothing to compare"
    fi
    if [ -n "$c13" ]; then
        [[ $gemm == "cuBLAS 13."* ]] || fail "libcublas.so.13 found ($c13) but the GEMM is: $gemm"
    elif [ -n "$c12" ]; then
        [[ $gemm == "cuBLAS 12."* ]] || fail "libcublas.so.12 found ($c12) but the GEMM is: $gemm"
    else
        [[ $gemm == "tiled SGEMM"*"; cuBLAS 13: "*"; cuBLAS 12: "* ]] || fail "no cuBLAS found, and no reasons: $gemm"
    fi
}

stage_ema-tests() {
    junit "CUDA EMA" "" dev.ema4j.CudaEmaConformanceTest dev.ema4j.CudaProviderTest
}

stage_train-tests() {
    junit "CUDA training operations" "" dev.ema4j.nn.CudaNnConformanceTest dev.ema4j.train.CrossBackendTrainingTest
}

stage_graph-tests() {
    junit "CUDA graphs and streams" -Dema4j.cuda.sync=false dev.ema4j.CudaGraphTest \
        dev.ema4j.train.CudaTrainingGraphsTest dev.ema4j.CudaStreamsTest
}

stage_train-tests-tiled() {
    need_java
    local gemm
    gemm="$(backend_report | sed -n 's/^ema4j CUDA training GEMM: //p')"
    if [ "$DRY" = 1 ]; then
        bash -n "$SELF" || fail "run.sh does not parse"
        skip "dry run: the GEMM line here is '${gemm:-none (no CUDA)}'; on a GPU this stage runs only after cuBLAS"
    fi
    need_gpu
    [[ $gemm == "cuBLAS "* ]] \
        || skip "train-tests used no cuBLAS (GEMM: ${gemm:-unknown}), so they checked the tiled kernels"
    junit "CUDA training operations, tiled GEMM" -Dema4j.cuda.gemm=tiled dev.ema4j.nn.CudaNnConformanceTest \
        dev.ema4j.train.CrossBackendTrainingTest
}

stage_native-check() {
    local nvcc="absent"
    command -v "$NVCC" >/dev/null 2>&1 && nvcc="$(command -v "$NVCC")"
    if [ "$DRY" = 1 ]; then
        bash -n native/check.sh || fail "native/check.sh does not parse"
        skip "dry run: would run native/check.sh --quick --no-sanitize (nvcc: $nvcc); CI runs its host emulation"
    fi
    [ "$nvcc" != absent ] || skip "nvcc not found: no GPU build of the harness"
    need_gpu
    local out="$WORK/native-check.out"
    native/check.sh --quick --no-sanitize 2>&1 | tee "$out"
    local rc=${PIPESTATUS[0]}
    local steps bench
    steps="$(sed -n '/^=== check.sh summary/,$p' "$out" | grep -E '^(PASS|FAIL|SKIP)' | sed 's/  */ /g' \
        | awk 'NR > 1 { printf "; " } { printf "%s", $0 }')"
    # per size: the copy, and the best flat and foreach kernel with their fraction of the copy's GB/s
    local best='/^N=[0-9]+ fp32 parameters/ { if (n != "") show(); n = $1; flat = 0; fe = 0; next }
        /cudaMemcpy D2D/ { copy = $(NF - 1) }
        /ema_lerp_f32 .*x copy/ { gbs(); if (g > flat) { flat = g; rflat = r } }
        /ema_lerp_foreach .*x copy/ { gbs(); if (g > fe) { fe = g; rfe = r } }
        function gbs(i) { for (i = 1; i <= NF; i++) if ($i == "GB/s") { g = $(i - 1) + 0; r = $(i + 1) } }
        function show() {
            printf "%s: copy %s GB/s, ema_lerp_f32 %s GB/s (%s copy), foreach %s GB/s (%s copy); ",
                n, copy, flat, rflat, fe, rfe
        }
        END { if (n != "") show() }'
    bench="$(awk "$best" "$out")"
    note "${steps:-no summary}"
    [ -z "$bench" ] || note "harness benchmark (K=1): ${bench%; }"
    {
        echo "## native-check"
        echo
        echo '```'
        grep -E '^(PASS|FAIL|SKIP|ALL PASSED|FAILED|ema_check:|N=|  cudaMemcpy|  ema_lerp)' "$out" | tail -n 60
        echo '```'
        echo
    } >>"$OUT/results.md"
    [ $rc -eq 0 ] || fail "native/check.sh exit $rc"
}

# A benchmark stage's report: the ratios to PyTorch as a note, ema4j's table (PREFIX.md) and the merged table in
# results.md, both figures in results.jsonl; fails when the summarizer or the PyTorch script failed.
report_vs_torch() {  # ema4j's PREFIX (PREFIX.json, PREFIX.md), PyTorch's JSON, summarizer, PyTorch script, its exit
    local prefix="$1" torch_json="$2" summarize="bench/device/$3" script="$4" torch_rc="$5" ratios
    if [ -s "$torch_json" ]; then
        ratios="$("$PYTHON" "$summarize" "$prefix.json" "$torch_json" --line)" || fail "$3 failed"
        [ -z "$ratios" ] || note "$ratios"
    fi
    {
        echo "## $STAGE"
        echo
        cat "$prefix.md"
        echo
        [ ! -s "$torch_json" ] || { "$PYTHON" "$summarize" "$prefix.json" "$torch_json"; echo; }
    } >>"$OUT/results.md"
    [ -s "$torch_json" ] || ! command -v "$PYTHON" >/dev/null 2>&1 || "$PYTHON" "$summarize" "$prefix.json" \
        || fail "$3 failed"
    printf '{"stage":"%s","ema4j":%s,"torch":%s}\n' "$STAGE" "$(tr -d '\n' <"$prefix.json")" \
        "$([ -s "$torch_json" ] && tr -d '\n' <"$torch_json" || echo null)" >>"$OUT/results.jsonl"
    [ "$torch_rc" -eq 0 ] || fail "PyTorch: $script exit $torch_rc"
}

stage_ema-bench() {
    need_java
    local shapes="flat25M,resnet50,flat1G" timing=(--warmup 3 --reps 10 --repeats 5) backend=cuda device=cuda
    [ "$QUICK" = 0 ] || { shapes="flat25M,resnet50"; timing=(--warmup 2 --reps 5 --repeats 3); }
    if [ "$DRY" = 1 ]; then
        shapes=tiny timing=(--warmup 1 --reps 2 --repeats 1) backend=cpu device=cpu
    else
        need_gpu
    fi
    "$JAVA" -cp "$CP" dev.ema4j.bench.DeviceQuickBench ema --backend "$backend" --shapes "$shapes" "${timing[@]}" \
        --out "$WORK/ema" || fail "DeviceQuickBench ema exit $?"
    note "$(cat "$WORK/ema.line")"
    local probe torch_rc=0 torch_json="$WORK/torch-ema.json"
    probe="$(torch_probe "$device")"
    if [[ "$probe" == yes:* ]]; then
        (cd bench/device && "$PYTHON" torch_ema.py --device "$device" --shapes "$shapes" "${timing[@]}" \
            --out "$torch_json") || torch_rc=$?
    else
        note "PyTorch: SKIP (${probe#no: })"
    fi
    report_vs_torch "$WORK/ema" "$torch_json" summarize.py torch_ema.py "$torch_rc"
    [ "$DRY" = 0 ] || skip "dry run: the pipeline ran on the CPU backend with tiny shapes (speeds meaningless)"
}

stage_train-bench() {
    need_java
    local args=(--warmup 5 --reps 10 --repeats 5 --steps 20 --models smallCnn16,resnet20) torch_args=()
    local device=cuda backend=cuda
    if [ "$QUICK" = 1 ]; then
        args=(--warmup 3 --reps 5 --repeats 3 --steps 10 --models smallCnn16)
        torch_args=(--quick --models smallCnn16)
    fi
    if [ "$DRY" = 1 ]; then
        args=(--n 100000 --conv-batch 2 --batch 4 --models smallCnn16 --steps 2 --warmup 1 --reps 2 --repeats 1)
        torch_args=(--quick --n 100000 --conv-batch 2 --batch 4 --models smallCnn16)
        device=cpu backend=cpu
    else
        need_gpu
    fi
    "$JAVA" -cp "$CP" dev.ema4j.bench.DeviceQuickBench train --backend "$backend" "${args[@]}" --out "$WORK/train" \
        || fail "DeviceQuickBench train exit $?"
    note "$(cat "$WORK/train.line")"
    local probe torch_rc=0 torch_json="$WORK/torch-train.json"
    probe="$(torch_probe "$device")"
    if [[ "$probe" == yes:* ]]; then
        (cd bench/device && "$PYTHON" torch_train.py --device "$device" "${torch_args[@]}" --out "$torch_json") \
            || torch_rc=$?
    else
        note "PyTorch: SKIP (${probe#no: })"
    fi
    report_vs_torch "$WORK/train" "$torch_json" summarize_train.py torch_train.py "$torch_rc"
    [ "$DRY" = 0 ] || skip "dry run: the pipeline ran on the CPU backend, tiny sizes (speeds meaningless)"
}

sanitize() {  # memcheck|racecheck: compute-sanitizer on the harness (built with -lineinfo), --quick --no-bench
    local tool="$1" cs nvcc="absent"
    cs="$(find_sanitizer)"
    command -v "$NVCC" >/dev/null 2>&1 && nvcc="$(command -v "$NVCC")"
    [ "$DRY" = 0 ] || skip "dry run (compute-sanitizer: ${cs:-absent}; nvcc: $nvcc)"
    [ -n "$cs" ] || skip "compute-sanitizer not found"
    [ "$nvcc" != absent ] || skip "nvcc not found: the harness cannot be built"
    need_gpu
    local bin=native/build/ema_check_gpu_lineinfo
    if [ ! -x "$bin" ] || [ native/ema_check.cu -nt "$bin" ] || [ cuda/ema.cu -nt "$bin" ]; then
        mkdir -p native/build
        "$NVCC" -O3 -std=c++17 -arch="${NVCC_ARCH:-native}" -lineinfo native/ema_check.cu -o "$bin" \
            || fail "nvcc build of the harness failed"
    fi
    local out="$WORK/$tool.out"
    "$cs" --tool "$tool" --error-exitcode 99 --print-limit 20 "$bin" --quick --no-bench 2>&1 | tee "$out"
    local rc=${PIPESTATUS[0]} summary cases
    summary="$(grep -E '(ERROR|RACECHECK) SUMMARY' "$out" | tail -n 1 | sed 's/^=* *//')"
    cases="$(grep -E '^(ALL PASSED|FAILED):' "$out" | tail -n 1 | sed 's/ (.*//')"
    printf '{"stage":"%s","summary":%s,"harness":%s}\n' "$STAGE" "$(json_string "$summary")" "$(json_string "$cases")" \
        >>"$OUT/results.jsonl"
    [ $rc -eq 0 ] || fail "exit $rc: ${summary:-no summary}${cases:+ (harness: $cases)}"
    note "${summary:-no summary}${cases:+ (harness: $cases)}"
}

stage_memcheck() {
    sanitize memcheck
}

stage_racecheck() {
    sanitize racecheck
}

stage_state-file() {
    need_java
    local file="$WORK/state.safetensors"
    "$JAVA" -cp "$CP" dev.ema4j.bench.StateFileInterop "$file" | tee "$WORK/state-file.out" \
        || fail "StateFileInterop exit ${PIPESTATUS[0]}"
    local wrote
    wrote="$(tail -n 1 "$WORK/state-file.out" | sed 's/^wrote [^ ]* on /wrote the state file on /')"
    command -v "$PYTHON" >/dev/null 2>&1 || skip "$wrote; $PYTHON not found"
    local why
    why="$(timeout --foreground 90 "$PYTHON" -c 'import torch, safetensors' 2>&1 | tail -n 1)" \
        || skip "$wrote; Python cannot read it here: $why"
    "$PYTHON" bench/device/check_state_file.py "$file" || fail "check_state_file.py failed on the file"
    note "$wrote; read back by Python's safetensors with the expected values"
}

# --- one stage in its own process (run.sh --stage-body NAME) ---------------------------------------------------------

if [ "${1:-}" = "--stage-body" ]; then
    STAGE="$2"
    "stage_$STAGE"
    exit $?
fi

# --- the driver -----------------------------------------------------------------------------------------------------

usage() {
    sed -n '2,/^set -uo pipefail/p' "$SELF" | sed '$d' | sed 's/^# \{0,1\}//'
}
list_stages() {
    local row name t est qest log what full_t=0 full_e=0 quick_e=0
    printf '%-18s %7s %8s %8s  %-10s %s\n' stage timeout estimate "--quick" log what
    for row in "${STAGE_TABLE[@]}"; do
        IFS='|' read -r name t est qest log what <<<"$row"
        unit=s
        [ "$qest" != - ] || unit=" "
        printf '%-18s %6ss %7ss %7s%s  %-10s %s\n' "$name" "$t" "$est" "$qest" "$unit" "$log" "$what"
        full_t=$((full_t + t))
        full_e=$((full_e + est))
        [ "$qest" = - ] || quick_e=$((quick_e + qest))
    done
    echo
    echo "Timeouts sum to $full_t s; the run's budget is $DEFAULT_BUDGET s ($QUICK_BUDGET s with --quick)."
    echo "Estimated on an H100 (guesses until a GPU run measures them): $full_e s in all, $quick_e s with --quick."
}

DEFAULT_BUDGET=560
QUICK_BUDGET=170
QUICK=0
DRY=0
LIST=0
SELECTED=""
BUDGET=""
CAP=""
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) QUICK=1 ;;
        --dry-run) DRY=1 ;;
        --list) LIST=1 ;;
        --stages) SELECTED="${2:-}"; shift ;;
        --stages=*) SELECTED="${1#*=}" ;;
        --budget) BUDGET="${2:-}"; shift ;;
        --budget=*) BUDGET="${1#*=}" ;;
        --stage-timeout) CAP="${2:-}"; shift ;;
        --stage-timeout=*) CAP="${1#*=}" ;;
        -h|--help) usage; exit 0 ;;
        *) echo "run.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
    shift
done
if [ "$LIST" = 1 ]; then
    list_stages
    exit 0
fi
for v in "$BUDGET" "$CAP"; do
    if [ -n "$v" ] && ! [[ "$v" =~ ^[0-9]+$ ]]; then
        echo "run.sh: --budget and --stage-timeout take whole seconds, not '$v'" >&2
        exit 2
    fi
done
[ -n "$BUDGET" ] || BUDGET=$([ "$QUICK" = 1 ] && echo $QUICK_BUDGET || echo $DEFAULT_BUDGET)
STAGES=()
if [ -n "$SELECTED" ]; then
    IFS=',' read -r -a wanted <<<"$SELECTED"
    for w in "${wanted[@]}"; do
        [ -n "$(stage_field "$w" 1)" ] || { echo "run.sh: no stage '$w' (see --list)" >&2; exit 2; }
    done
    for s in $(all_stages); do
        for w in "${wanted[@]}"; do
            if [ "$w" = "$s" ]; then
                STAGES+=("$s")
                break
            fi
        done
    done
else
    for s in $(all_stages); do
        [ "$QUICK" = 1 ] && [ "$(stage_field "$s" 4)" = - ] && continue
        STAGES+=("$s")
    done
fi
command -v timeout >/dev/null 2>&1 || { echo "run.sh: needs timeout (coreutils)" >&2; exit 2; }

OUT="${OUT:-$ROOT/device-out}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd -P)"
rm -f "$OUT/summary.md" "$OUT/results.md" "$OUT/results.jsonl" "$OUT"/env.log "$OUT"/tests.log "$OUT"/native.log \
    "$OUT"/bench.log
WORK="$(mktemp -d "${TMPDIR:-/tmp}/ema4j-device.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
PYTHON="${PYTHON:-python3}"
NVCC="${NVCC:-nvcc}"
export PYTHONUNBUFFERED=1 OUT WORK PYTHON NVCC QUICK DRY

START=$SECONDS
# Java and the jars: the packed runtime (bench/device/pack.sh), unpacked once per archive outside the working tree;
# else the system's java and the reactor's build output.
JAVA="" CP="" JAVA_FROM="" CP_FROM="none" unpacked=""
if [ -f .device/runtime.tar.xz ] && [ -d .device/lib ]; then
    RUNTIME="${EMA4J_DEVICE_RUNTIME:-${TMPDIR:-/tmp}/ema4j-device-runtime}"
    key="$(cksum <.device/runtime.tar.xz)"
    if [ "$(cat "$RUNTIME/archive.cksum" 2>/dev/null)" != "$key" ]; then
        rm -rf "$RUNTIME"
        mkdir -p "$RUNTIME"
        t0=$SECONDS
        if command -v xz >/dev/null 2>&1; then
            timeout 120 tar -xJf .device/runtime.tar.xz -C "$RUNTIME"
        else
            timeout 120 "${PYTHON:-python3}" -c \
                'import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2])' \
                .device/runtime.tar.xz "$RUNTIME"
        fi && echo "$key" >"$RUNTIME/archive.cksum"
        unpacked="unpacked .device/runtime.tar.xz into $RUNTIME in $((SECONDS - t0)) s"
        [ -s "$RUNTIME/archive.cksum" ] || unpacked="could not unpack .device/runtime.tar.xz into $RUNTIME"
        echo "$unpacked"
    fi
    if [ -x "$RUNTIME/jre/bin/java" ]; then
        JAVA="$RUNTIME/jre/bin/java" JAVA_FROM=".device/runtime.tar.xz"
        CP="$ROOT/.device/lib/*:$RUNTIME/natives" CP_FROM=".device/lib"
    fi
fi
if [ -z "$JAVA" ]; then
    if [ -n "${JAVA_HOME:-}" ] && [ -x "$JAVA_HOME/bin/java" ]; then
        JAVA="$JAVA_HOME/bin/java" JAVA_FROM="JAVA_HOME"
    else
        JAVA="$(command -v java || true)" JAVA_FROM="PATH"
    fi
    jar="$(ls bench/target/ema4j-bench-*.jar 2>/dev/null | grep -vE -- '-(sources|javadoc|tests)\.jar$' | head -n 1)"
    if [ -n "$jar" ] && [ -d bench/target/lib ]; then
        CP="$ROOT/$jar:$ROOT/bench/target/lib/*" CP_FROM="bench/target (reactor build)"
    fi
fi
export JAVA JAVA_FROM CP

# cuBLAS from PyTorch's pip wheels (nvidia-cublas-cu13, ...): their folders on the loader's path, for JavaCPP's
# cuBLAS 13 bindings and JCublas 12, before any JVM starts.
nvidia_libs="$(timeout 20 "$PYTHON" -c 'import glob, os, site
dirs = {os.path.dirname(p) for s in site.getsitepackages() for p in glob.glob(s + "/nvidia/*/lib/lib*.so.1[23]")
        if os.path.basename(p).startswith(("libcublas", "libcudart"))}
print(":".join(sorted(dirs)))' 2>/dev/null || true)"
[ -z "$nvidia_libs" ] || export LD_LIBRARY_PATH="$nvidia_libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

GPU_COUNT=0
if [ "$DRY" = 1 ]; then
    GPU_WHY="dry run: no GPU used"
    export CUDA_VISIBLE_DEVICES=-1
elif ! command -v nvidia-smi >/dev/null 2>&1; then
    GPU_WHY="no GPU: nvidia-smi not found"
else
    GPU_COUNT="$(timeout 20 nvidia-smi -L 2>/dev/null | grep -c '^GPU [0-9]')"
    GPU_WHY="no GPU: nvidia-smi -L lists none"
fi
export GPU_COUNT GPU_WHY

mode="full"
[ "$QUICK" = 0 ] || mode="quick"
[ "$DRY" = 0 ] || mode="$mode, dry run"
{
    echo "# ema4j device check"
    echo
    echo "mode: $mode; stages: ${STAGES[*]}; budget ${BUDGET} s; $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
    echo "java: ${JAVA:-none} ($JAVA_FROM); jars: $CP_FROM; GPUs listed: $GPU_COUNT${unpacked:+; $unpacked}"
    echo "One line per stage, written as it ends. Logs: env.log, tests.log, native.log, bench.log; tables: results.md;"
    echo "figures: results.jsonl."
    echo
} >"$OUT/summary.md"

declare -A DONE=()
PASSES=0 FAILS=0 SKIPS=0
CURRENT="" CURRENT_START=0 CHILD=""
record() {  # status, stage, seconds, text
    local line="- $1 $2 ($3 s): $4"
    echo "$line" >>"$OUT/summary.md"
    printf '{"stage":"%s","status":"%s","seconds":%s,"result":%s}\n' "$2" "$1" "$3" "$(json_string "$4")" \
        >>"$OUT/results.jsonl"
    echo "$line"
    DONE[$2]=1
    case $1 in
        PASS) PASSES=$((PASSES + 1)) ;;
        FAIL) FAILS=$((FAILS + 1)) ;;
        *) SKIPS=$((SKIPS + 1)) ;;
    esac
}
footer() {
    echo >>"$OUT/summary.md"
    echo "total: $((SECONDS - START)) s; $PASSES PASS, $FAILS FAIL, $SKIPS SKIP" >>"$OUT/summary.md"
}
notes_of() {  # the reason of a SKIP or FAIL, then the notes, joined by "; "
    cat "$WORK/$1.reason" "$WORK/$1.note" 2>/dev/null | awk 'NR > 1 { printf "; " } { printf "%s", $0 }'
}
on_signal() {  # the run is interrupted: the current stage fails, the rest are skipped, the summary is complete
    local sig="$1" s
    trap - TERM INT HUP
    [ -z "$CHILD" ] || kill -TERM "$CHILD" 2>/dev/null
    if [ -n "$CURRENT" ]; then
        local n
        n="$(notes_of "$CURRENT")"
        record FAIL "$CURRENT" $((SECONDS - CURRENT_START)) "interrupted by SIG$sig${n:+; so far: $n}"
    fi
    for s in "${STAGES[@]}"; do
        [ -n "${DONE[$s]:-}" ] || record SKIP "$s" 0 "the run was interrupted by SIG$sig"
    done
    footer
    case $sig in INT) exit 130 ;; HUP) exit 129 ;; *) exit 143 ;; esac
}
trap 'on_signal TERM' TERM
trap 'on_signal INT' INT
trap 'on_signal HUP' HUP

for s in "${STAGES[@]}"; do
    log="$(stage_field "$s" 5)"
    t="$(stage_field "$s" 2)"
    [ -z "$CAP" ] || [ "$CAP" -ge "$t" ] || t=$CAP
    left=$((BUDGET - (SECONDS - START)))
    if [ "$left" -lt 10 ]; then
        record SKIP "$s" 0 "budget: $left s of $BUDGET s left"
        continue
    fi
    [ $((left - 3)) -ge "$t" ] || t=$((left - 3))
    echo
    echo "=== $s (timeout $t s; log $log)"
    printf '\n===== %s, timeout %s s, %s\n' "$s" "$t" "$(date -u '+%H:%M:%S UTC')" >>"$OUT/$log"
    : >"$WORK/$s.note"
    rm -f "$WORK/$s.reason"
    CURRENT="$s" CURRENT_START=$SECONDS
    timeout -k 5 "$t" bash "$SELF" --stage-body "$s" >>"$OUT/$log" 2>&1 </dev/null &
    CHILD=$!
    wait "$CHILD"
    rc=$?
    CHILD=""
    CURRENT=""
    secs=$((SECONDS - CURRENT_START))
    n="$(notes_of "$s")"
    case $rc in
        0) record PASS "$s" "$secs" "${n:-done}" ;;
        3) record SKIP "$s" "$secs" "${n:-skipped}" ;;
        124|137)
            last="$(grep -v '^[[:space:]]*$' "$OUT/$log" | tail -n 1 | cut -c 1-200)"
            record FAIL "$s" "$secs" "timed out after $t s${n:+; so far: $n}; last output: '$last'; see $log" ;;
        *) record FAIL "$s" "$secs" "${n:-exit $rc}; see $log" ;;
    esac
    if [ "$rc" != 0 ] && [ "$rc" != 3 ]; then
        tail -n 15 "$OUT/$log" | sed 's/^/    | /'
    fi
done
footer
echo
cat "$OUT/summary.md"
[ "$FAILS" = 0 ]
