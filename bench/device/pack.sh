#!/usr/bin/env bash
# Packs what bench/device/run.sh needs on the GPU machine (no network, no Maven, maybe no Java) into the
# git-ignored folder .device/: a jlinked Java 17 runtime, the project's jars (the modules, their test jars and the
# benchmarks) and the thin dependency jars (linux-x86_64 natives only). The PTX travels inside the ema4j-cuda jar.
#
# usage: bench/device/pack.sh        then, with the device tool: carry [".device"], run "bash bench/device/run.sh"
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)"
cd "$ROOT"

rm -rf bench/target/lib
mvn -B -q -DskipTests -Dmaven.javadoc.skip=true -Dmaven.source.skip=true package -pl bench -am
rm -rf .device
mkdir -p .device/lib
cp bench/target/ema4j-bench-*.jar bench/target/lib/*.jar .device/lib/
# The GPU run trains nothing on the CPU: OpenBLAS's natives (20 MB) stay behind.
rm -f .device/lib/openblas-*-linux-x86_64.jar .device/lib/javacpp-*-linux-x86_64.jar
# Only the driver API's native library is loaded; the PTX compiler, NVRTC and runtime libraries stay behind.
natives=.device/lib/jcuda-natives-12.6.0-linux-x86_64.jar
python3 - "$natives" <<'PY'
import sys, zipfile
path = sys.argv[1]
with zipfile.ZipFile(path) as z:
    entries = [(i, z.read(i)) for i in z.infolist() if "JNvPTXCompiler" not in i.filename
               and "JNvrtc" not in i.filename and "JCudaRuntime" not in i.filename]
with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
    for info, data in entries:
        z.writestr(info, data)
PY

# What the code, JMH (management beans, Unsafe) and the JUnit console (logging, XML reports) load. jdeps would also
# list java.desktop and java.sql for Jackson's optional integrations, which push the folder past what travels.
modules=java.base,java.logging,java.management,jdk.management,jdk.unsupported,java.xml
jlink --add-modules "$modules" --strip-debug --no-man-pages --no-header-files --compress=2 --output .device/jre

# The runtime must run the tests, a JMH benchmark (forked JVMs included) and the state-file writer before it
# travels.
java=.device/jre/bin/java
$java -cp '.device/lib/*' org.junit.platform.console.ConsoleLauncher execute --disable-banner --details=none \
    --reports-dir bench/target/pack-check --select-class dev.ema4j.BackendsTest \
    --select-class dev.ema4j.CpuEmaConformanceTest
$java -cp '.device/lib/*' org.openjdk.jmh.Main 'CpuEmaBenchmark.ema$' -wi 0 -i 1 -r 1 -f 1 >bench/target/pack-check/jmh.log
$java -cp '.device/lib/*' dev.ema4j.bench.StateFileInterop bench/target/pack-check/state.safetensors >/dev/null
echo "packed: $(du -sh .device | cut -f1) in .device (modules: $modules)"
# The device tool carries at most 64 MiB with the working tree.
size_mib=$(du -sm .device | cut -f1)
if [ "$size_mib" -gt 60 ]; then
    echo "pack.sh: .device is $size_mib MiB; the device tool carries at most 64 MiB with the working tree" >&2
    exit 1
fi
