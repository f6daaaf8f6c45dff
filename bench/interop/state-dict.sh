#!/usr/bin/env bash
# Exports EMA models from ema4j (SmallCnn(8) and ResNet-8) and loads them into the equivalent PyTorch modules with
# strict=True, comparing class probabilities (bench/interop/check_state_dict.py). Needs Debian's python3-torch
# (installed when run as root); CI does not run it.
#   usage: bench/interop/state-dict.sh [DIR]      (default DIR: bench/target/interop)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
dir="${1:-bench/target/interop}"
if ! /usr/bin/python3 -c 'import torch' 2>/dev/null; then
    if [ "$(id -u)" = 0 ]; then apt-get install -y python3-torch; else
        echo "state-dict.sh: needs PyTorch: sudo apt-get install -y python3-torch" >&2; exit 2; fi
fi
mvn -B -q -DskipTests -Dmaven.javadoc.skip=true -Dmaven.source.skip=true package -pl bench -am
for model in smallcnn resnet; do
    java -cp "bench/target/ema4j-bench-0.1.0-SNAPSHOT.jar:bench/target/lib/*" dev.ema4j.bench.StateDictInterop "$dir" "$model"
    /usr/bin/python3 bench/interop/check_state_dict.py "$dir" "$model"
done
