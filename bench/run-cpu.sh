#!/usr/bin/env bash
# Builds the benchmarks and runs the CPU benchmarks (JMH), printing Markdown tables with the ratios against the
# baselines of the same run:
#   bench/run-cpu.sh [ema|train|profile|posthoc] [--keep-blas-env] [BenchMain options: --quick, --out F, --json F]
#   bench/run-cpu.sh ema|train --vs-torch [vs_torch.py options: --rounds N, --out F, --quick]
#     ema      EMA over 64 Mi fp32 parameters against an in-place add, fused K=3 against three updates (default)
#     train    a full SmallCnn(16) training step at batch 128, in images/s
#     posthoc  post-hoc EMA costs (dev.ema4j.bench.PostHocCost): ResNet-18-sized snapshots (F32, BF16) and the
#              rebuild of one width from 100 of them; snapshotting at the default period in a SmallCnn(16) run
#     profile  where the time of a training step goes, per operation and layer (profile resnet20: ResNet-20);
#              with --vs-torch, then PyTorch's step of the same model through torch.profiler (bench/torch_cpu.py)
#     --vs-torch  ema4j and PyTorch (Debian's python3-torch, installed here when run as root) side by side in one
#              run, interleaved, with the ratios (bench/vs_torch.py): SmallCnn(16) and ResNet-20 steps with three
#              EMAs; the EMA flat and as 161 tensors against PyTorch's _foreach, per-tensor and in-place add
# OpenBLAS picks its kernels for the CPU when it loads; an OPENBLAS_CORETYPE in the environment overrides that
# choice (some machines force AVX2 kernels on AVX-512 CPUs this way), so it is unset unless --keep-blas-env.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
what="${1:-ema}"
shift || true
args=()
for a in "$@"; do
    case "$a" in
        --keep-blas-env) keep=1 ;;
        --vs-torch) vs_torch=1 ;;
        *) args+=("$a") ;;
    esac
done
if [ -n "${vs_torch:-}" ] && ! /usr/bin/python3 -c 'import torch' 2>/dev/null; then
    if [ "$(id -u)" = 0 ]; then
        apt-get install -y python3-torch || { apt-get update && apt-get install -y python3-torch; }
    else
        echo "run-cpu.sh: --vs-torch needs PyTorch for /usr/bin/python3: sudo apt-get install -y python3-torch" >&2
        exit 1
    fi
fi
if [ -z "${keep:-}" ]; then
    unset OPENBLAS_CORETYPE
fi
mvn -B -q -DskipTests -Dmaven.javadoc.skip=true -Dmaven.source.skip=true package -pl bench -am
cp="bench/target/ema4j-bench-0.1.0-SNAPSHOT.jar:bench/target/lib/*"
echo "OpenBLAS: $(java -cp "$cp" dev.ema4j.bench.BlasReport)"
if [ -n "${vs_torch:-}" ]; then
    case "$what" in
        ema|train) exec /usr/bin/python3 bench/vs_torch.py "$what" --cp "$cp" ${args[@]+"${args[@]}"} ;;
        profile)
            java -Xmx4g -cp "$cp" dev.ema4j.bench.TrainStepProfile ${args[@]+"${args[@]}"}
            model=smallCnn16
            case " ${args[*]-} " in *" resnet20 "*) model=resnet20 ;; esac
            echo
            exec /usr/bin/python3 bench/torch_cpu.py profile --model "$model" --warmup 10 --steps 20 ;;
        *) echo "usage: bench/run-cpu.sh ema|train|profile --vs-torch [--rounds N] [--out F] [--quick]" >&2; exit 2 ;;
    esac
fi
case "$what" in
    ema) exec java -cp "$cp" dev.ema4j.bench.BenchMain cpu "${args[@]}" ;;
    train) exec java -cp "$cp" dev.ema4j.bench.BenchMain train "${args[@]}" ;;
    profile) exec java -Xmx4g -cp "$cp" dev.ema4j.bench.TrainStepProfile ${args[@]+"${args[@]}"} ;;
    posthoc)
        java -Xmx4g -cp "$cp" dev.ema4j.bench.PostHocCost rebuild --times 50 --dtype F32
        java -Xmx4g -cp "$cp" dev.ema4j.bench.PostHocCost rebuild --times 50 --dtype BF16
        exec java -Xmx4g -cp "$cp" dev.ema4j.bench.PostHocCost train --model smallCnn16 --steps 768 ;;
    *) echo "usage: bench/run-cpu.sh [ema|train|profile|posthoc] [--keep-blas-env] [options]" >&2; exit 2 ;;
esac
