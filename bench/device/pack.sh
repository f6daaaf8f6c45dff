#!/usr/bin/env bash
# Packs what bench/device/run.sh needs on the GPU machine (no network, no Maven, maybe no Java) into the
# git-ignored folder .device/, under 60 MiB (the device tool carries at most 64 MiB with the working tree):
#   .device/lib/              the project's jars (the modules, their test jars and the benchmarks) and the thin
#                             dependency jars, linux-x86_64 natives only: JCuda's without the libraries it does not
#                             load, OpenBLAS's in the archive below. The PTX travels inside the ema4j-cuda jar.
#   .device/runtime.tar.xz    jre/, a jlinked Java 17 runtime (modules left uncompressed: xz packs them three times
#                             smaller than jlink does), and natives/, a class-path folder with the OpenBLAS libraries
#                             that the CPU backend's training operations load (CrossBackendTrainingTest trains on the
#                             CPU too). run.sh unpacks it outside the working tree before its first stage.
# Then it checks what it packed: the runtime runs CPU tests, a JMH benchmark, the state-file writer and OpenBLAS,
# and a dry run of bench/device/run.sh passes with the archive unpacked as on the GPU machine.
#
# usage: bench/device/pack.sh        then, with the device tool: carry [".device"], run "bash bench/device/run.sh"
#                                    (see its header: --quick, --stages, --list)
# Needs Maven, a JDK 17 (jlink), python3 and xz.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)"
cd "$ROOT"
command -v xz >/dev/null 2>&1 || { echo "pack.sh: needs xz (xz-utils)" >&2; exit 1; }

rm -rf bench/target/lib
mvn -B -q -DskipTests -Dmaven.javadoc.skip=true -Dmaven.source.skip=true package -pl bench -am
rm -rf .device
mkdir -p .device/lib
cp "$(ls bench/target/ema4j-bench-*.jar | grep -vE -- '-(sources|javadoc|tests)\.jar$')" bench/target/lib/*.jar \
    .device/lib/
# OpenBLAS's natives (20 MB as a jar) travel in the archive, xz-compressed, without the headers.
openblas_natives="$(ls bench/target/lib/openblas-*-linux-x86_64.jar)"
rm -f .device/lib/openblas-*-linux-x86_64.jar
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
# JavaCPP's CUDA presets: only the cuBLAS and runtime bindings are loaded (cuBLAS's bindings load the runtime's first);
# the NVIDIA libraries themselves come from the GPU machine.
python3 - .device/lib/cuda-*-linux-x86_64.jar <<'PY'
import sys, zipfile
path = sys.argv[1]
keep = ("/libjnicublas.so", "/libjnicudart.so")
with zipfile.ZipFile(path) as z:
    entries = [(i, z.read(i)) for i in z.infolist() if not i.filename.endswith(".so") or i.filename.endswith(keep)]
with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
    for info, data in entries:
        z.writestr(info, data)
PY

stage=bench/target/device-runtime
rm -rf "$stage"
mkdir -p "$stage"
# What the code, JMH (management beans, Unsafe) and the JUnit console (logging, XML reports) load. jdeps would also
# list java.desktop and java.sql for Jackson's optional integrations, which the code does not use.
modules=java.base,java.logging,java.management,jdk.management,jdk.unsupported,java.xml
jlink --add-modules "$modules" --strip-debug --no-man-pages --no-header-files --compress=0 --output "$stage/jre"
# The libraries JavaCPP loads for openblas_full (each preset's JNI library, OpenBLAS, its Fortran runtime), laid out
# as in the jar; JavaCPP links libopenblas_nolapack.so.0 to libopenblas.so.0 when it loads from a jar, and here
# finds the link in the folder.
python3 - "$openblas_natives" "$stage/natives" <<'PY'
import os, sys, zipfile
jar, out = sys.argv[1], sys.argv[2]
folder = "org/bytedeco/openblas/linux-x86_64/"
wanted = ["libopenblas.so.0", "libjniopenblas_nolapack.so", "libjniopenblas.so", "libjniopenblas_full.so",
          "libgfortran.so.5", "libquadmath.so.0", "libgcc_s.so.1"]
with zipfile.ZipFile(jar) as z:
    for name in wanted:
        z.extract(folder + name, out)
os.symlink("libopenblas.so.0", os.path.join(out, folder, "libopenblas_nolapack.so.0"))
PY
tar -C "$stage" -cf - jre natives | xz -2 -T0 >.device/runtime.tar.xz

# The runtime must run the tests, a JMH benchmark (forked JVMs included), the state-file writer and OpenBLAS
# before it travels.
java="$stage/jre/bin/java"
cp=".device/lib/*:$stage/natives"
$java -cp "$cp" org.junit.platform.console.ConsoleLauncher execute --disable-banner --details=none \
    --reports-dir bench/target/pack-check --select-class dev.ema4j.BackendsTest \
    --select-class dev.ema4j.CpuEmaConformanceTest
$java -cp "$cp" org.openjdk.jmh.Main 'CpuEmaBenchmark.ema$' -wi 0 -i 1 -r 1 -f 1 >bench/target/pack-check/jmh.log
$java -cp "$cp" dev.ema4j.bench.StateFileInterop bench/target/pack-check/state.safetensors >/dev/null
$java -cp "$cp" dev.ema4j.bench.BlasReport
# run.sh unpacks the archive itself, into a folder of its own (here a fresh one), and runs every stage's CPU part.
rm -rf bench/target/pack-check/dry-run bench/target/pack-check/runtime
if ! EMA4J_DEVICE_RUNTIME="$ROOT/bench/target/pack-check/runtime" OUT=bench/target/pack-check/dry-run \
    bash bench/device/run.sh --dry-run >bench/target/pack-check/dry-run.log 2>&1; then
    cat bench/target/pack-check/dry-run.log >&2
    echo "pack.sh: the dry run of bench/device/run.sh failed with the packed runtime" >&2
    exit 1
fi
grep -q "java: $ROOT/bench/target/pack-check/runtime/jre/bin/java" bench/target/pack-check/dry-run/summary.md \
    || { echo "pack.sh: the dry run did not use the packed runtime" >&2; exit 1; }
echo "packed: $(du -sh .device | cut -f1) in .device (runtime.tar.xz $(du -sh .device/runtime.tar.xz | cut -f1);" \
    "modules: $modules)"
# The device tool carries at most 64 MiB with the working tree.
size_mib=$(du -sm .device | cut -f1)
if [ "$size_mib" -gt 60 ]; then
    echo "pack.sh: .device is $size_mib MiB; the device tool carries at most 64 MiB with the working tree" >&2
    exit 1
fi
