#!/usr/bin/env bash
# Builds the benchmarks and runs the CPU EMA benchmarks (JMH), printing a Markdown table with GB/s and the ratios
# against the baselines measured in the same run. Extra arguments go to BenchMain (--quick, --out F, --json F).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
mvn -B -q -Pbench -DskipTests package
exec java -cp "target/ema4j-0.1.0-SNAPSHOT-tests.jar:target/ema4j-0.1.0-SNAPSHOT.jar:target/lib/*" \
    dev.ema4j.bench.BenchMain cpu "$@"
