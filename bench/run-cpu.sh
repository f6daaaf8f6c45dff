#!/usr/bin/env bash
# Builds the benchmarks and runs the CPU benchmarks (JMH), printing Markdown tables with the ratios against the
# baselines of the same run:
#   bench/run-cpu.sh [ema|train|profile] [--keep-blas-env] [BenchMain options: --quick, --out F, --json F]
#     ema      EMA over 64 Mi fp32 parameters against an in-place add, fused K=3 against three updates (default)
#     train    a full SmallCnn(16) training step at batch 128, in images/s
#     profile  where the time of a training step goes, per operation and layer
# OpenBLAS picks its kernels for the CPU when it loads; an OPENBLAS_CORETYPE in the environment overrides that
# choice (some machines force AVX2 kernels on AVX-512 CPUs this way), so it is unset unless --keep-blas-env.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
what="${1:-ema}"
shift || true
args=()
for a in "$@"; do
    if [ "$a" = "--keep-blas-env" ]; then keep=1; else args+=("$a"); fi
done
if [ -z "${keep:-}" ]; then
    unset OPENBLAS_CORETYPE
fi
mvn -B -q -DskipTests -Dmaven.javadoc.skip=true -Dmaven.source.skip=true package -pl bench -am
cp="bench/target/ema4j-bench-0.1.0-SNAPSHOT.jar:bench/target/lib/*"
echo "OpenBLAS: $(java -cp "$cp" dev.ema4j.bench.BlasReport)"
case "$what" in
    ema) exec java -cp "$cp" dev.ema4j.bench.BenchMain cpu "${args[@]}" ;;
    train) exec java -cp "$cp" dev.ema4j.bench.BenchMain train "${args[@]}" ;;
    profile) exec java -Xmx4g -cp "$cp" dev.ema4j.bench.TrainStepProfile ;;
    *) echo "usage: bench/run-cpu.sh [ema|train|profile] [--keep-blas-env] [options]" >&2; exit 2 ;;
esac
