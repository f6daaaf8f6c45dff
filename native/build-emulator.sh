#!/usr/bin/env bash
# Builds the CUDA driver emulator (native/emulator/) into native/build/emulator/:
#   libcuda.so.1       the driver: native/emulator/cuda_driver_emulator.cpp, plus a stub returning
#                      CUDA_ERROR_NOT_SUPPORTED for every other cu* function that JCuda's native library
#                      (libJCudaDriver, from the jcuda-natives jar in the local Maven repository) references
#   modules/<name>.so  every cuda/<name>.cu compiled as C++ with native/cuda_host_shim.h, and its kernel table;
#                      misaligned accesses trap (NOTE: [alignment-trap] in the shim: -fsanitize=alignment at compile
#                      time only, with the shim's handler instead of the sanitizer runtime)
# then runs the self-tests: the shim's (native/emulator/shim_selftest.cu, with the alignment trap; also under
# ASan+UBSan unless --no-sanitize) and the driver's (native/emulator/driver_selftest.cpp). Both plant the faults the
# emulator must catch (misaligned accesses, races that only some schedules show, missing stream synchronization).
#
# Kernels: the kernels of cuda/<name>.cu are the functions with C linkage its object file defines, that is the global
# text symbols with unmangled names (nm: type T, not _Z...); cuda/*.cu declares every kernel extern "C" __global__
# and nothing else extern "C". New .cu files are picked up as they appear; a module is rebuilt when anything in
# cuda/, the shim, native/emulator/emulated_module.h or this script is newer than it.
#
# usage: native/build-emulator.sh [--no-sanitize]
# Exits non-zero when anything fails to build or a self-test fails.
# Environment: CXX (default g++), MAVEN_REPO (default ~/.m2/repository), CUDA_HOME (default /usr/local/cuda; its
# include/cuda.h, when present, is used to check native/emulator/driver_abi.h).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd "$ROOT"

CXX="${CXX:-g++}"
MAVEN_REPO="${MAVEN_REPO:-$HOME/.m2/repository}"
CUDA_HOME="${CUDA_HOME:-/usr/local/cuda}"
OUT="native/build/emulator"
GEN="$OUT/gen"
SRC="native/emulator"

sanitize=1
for arg in "$@"; do
    case "$arg" in
        --no-sanitize) sanitize=0 ;;
        -h|--help) sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "build-emulator.sh: unknown argument '$arg' (usage: native/build-emulator.sh [--no-sanitize])" >&2
           exit 2 ;;
    esac
done

die() { echo "build-emulator.sh: $*" >&2; exit 1; }
need() { [ -s "$1" ] || die "expected output $1 is missing"; }
# True when $1 is missing or older than any of the files after it.
stale() {
    local target="$1" f
    shift
    [ -e "$target" ] || return 0
    for f in "$@"; do [ "$f" -nt "$target" ] && return 0; done
    return 1
}

mkdir -p "$GEN" "$OUT/modules"
COMMON=(-std=c++17 -fPIC -fvisibility=hidden -Wall -Wextra -Wno-unknown-pragmas)
KERNEL_FLAGS=(-O2 -ffp-contract=off -fno-fast-math)  # as native/check.sh builds the kernels: never fast math
# NOTE: [alignment-trap]: compile-time flags; the objects are linked without the sanitizer runtime.
TRAP_FLAGS=(-fsanitize=alignment -fno-sanitize-recover=alignment -DEMA4J_ALIGNMENT_TRAP)
SHIM=native/cuda_host_shim.h
DRIVER_INPUTS=("$SRC/cuda_driver_emulator.cpp" "$SRC/not_supported.cpp" "$SRC/driver_abi.h" "$SRC/emulated_module.h"
               "$0")
MODULE_INPUTS=(cuda/* "$SHIM" "$SRC/emulated_module.h" "$0")

# --- JCuda's native driver library: the symbols libcuda.so.1 must define ---------------------------------------------
version="$(sed -n 's:.*<jcuda.version>\(.*\)</jcuda.version>.*:\1:p' pom.xml | head -n 1)"
[ -n "$version" ] || die "cannot read <jcuda.version> from pom.xml"
jar="$MAVEN_REPO/org/jcuda/jcuda-natives/$version/jcuda-natives-$version-linux-x86_64.jar"
if [ ! -f "$jar" ]; then
    echo "build-emulator.sh: $jar is missing; resolving the dependencies (mvn -B -q -DskipTests compile)"
    mvn -B -q -DskipTests compile
fi
[ -f "$jar" ] || die "$jar not found (set MAVEN_REPO to the local Maven repository)"
jcuda_lib="$GEN/libJCudaDriver-$version.so"
if stale "$jcuda_lib" "$jar"; then
    entry="lib/libJCudaDriver-$version-linux-x86_64.so"
    if command -v unzip >/dev/null 2>&1; then
        unzip -p "$jar" "$entry" >"$jcuda_lib.tmp"
    else
        (cd "$GEN" && jar xf "$jar" "$entry" && mv "$entry" "$(basename "$jcuda_lib").tmp" && rmdir lib)
    fi
    mv "$jcuda_lib.tmp" "$jcuda_lib"
fi
need "$jcuda_lib"
nm -D --undefined-only "$jcuda_lib" | awk '$1 == "U" && $2 ~ /^cu/ { sub(/@.*/, "", $2); print $2 }' | sort -u \
    >"$GEN/required.txt"
need "$GEN/required.txt"

# --- the driver -----------------------------------------------------------------------------------------------------
if [ -f "$CUDA_HOME/include/cuda.h" ]; then
    "$CXX" -std=c++17 -Wall -Wextra -fsyntax-only -I"$CUDA_HOME/include" "$SRC/abi_check.cpp" \
        || die "native/emulator/driver_abi.h differs from $CUDA_HOME/include/cuda.h"
fi
if stale "$OUT/libcuda.so.1" "${DRIVER_INPUTS[@]}" "$GEN/required.txt"; then
    echo "build-emulator.sh: libcuda.so.1"
    "$CXX" "${COMMON[@]}" -O2 -g -c "$SRC/cuda_driver_emulator.cpp" -o "$GEN/cuda_driver_emulator.o"
    nm --defined-only -g "$GEN/cuda_driver_emulator.o" | awk '$2 == "T" && $3 ~ /^cu/ { print $3 }' | sort -u \
        >"$GEN/implemented.txt"
    extra="$(comm -13 "$GEN/required.txt" "$GEN/implemented.txt")"
    [ -z "$extra" ] || echo "build-emulator.sh: warning: JCuda does not reference these implemented functions:" $extra
    comm -23 "$GEN/required.txt" "$GEN/implemented.txt" | sed 's/.*/EMA4J_STUB(&)/' >"$GEN/not_supported.inc"
    "$CXX" "${COMMON[@]}" -O2 -I"$GEN" -c "$SRC/not_supported.cpp" -o "$GEN/not_supported.o"
    "$CXX" -shared -Wl,-soname,libcuda.so.1 -Wl,--no-undefined -o "$OUT/libcuda.so.1.tmp" \
        "$GEN/cuda_driver_emulator.o" "$GEN/not_supported.o" -ldl -pthread
    mv "$OUT/libcuda.so.1.tmp" "$OUT/libcuda.so.1"
    echo "build-emulator.sh: $(wc -l <"$GEN/implemented.txt") driver functions implemented," \
        "$(wc -l <"$GEN/not_supported.inc") stubbed (CUDA_ERROR_NOT_SUPPORTED)"
fi
need "$OUT/libcuda.so.1"
missing="$(comm -23 "$GEN/required.txt" <(nm -D --defined-only "$OUT/libcuda.so.1" | awk '{ print $3 }' | sort -u))"
[ -z "$missing" ] || die "libcuda.so.1 does not define:" $missing

# --- one module per cuda/*.cu -------------------------------------------------------------------------------------
shopt -s nullglob
sources=(cuda/*.cu)
[ ${#sources[@]} -gt 0 ] || die "no cuda/*.cu"
for so in "$OUT"/modules/*.so; do  # modules of deleted sources
    [ -f "cuda/$(basename "$so" .so).cu" ] || rm -f "$so"
done
for cu in "${sources[@]}"; do
    name="$(basename "$cu" .cu)"
    module="$OUT/modules/$name.so"
    stale "$module" "${MODULE_INPUTS[@]}" || continue
    echo "build-emulator.sh: modules/$name.so"
    "$CXX" "${COMMON[@]}" -O0 -w -x c++ -include "$SHIM" -c "$cu" -o "$GEN/$name.scan.o"
    kernels="$(nm --defined-only -g "$GEN/$name.scan.o" | awk '$2 == "T" && $3 !~ /^_Z/ { print $3 }' | sort)"
    [ -n "$kernels" ] || die "$cu defines no extern \"C\" kernel"
    sha="$(sha256sum "$cu" | cut -d' ' -f1)"
    {
        echo "// Generated by native/build-emulator.sh from $cu: its kernel table. Do not edit."
        echo "#include \"$cu\""
        echo "#include \"emulated_module.h\""
        echo
        echo "namespace {"
        echo "const Ema4jKernel kKernels[] = {"
        for k in $kernels; do echo "    EMA4J_KERNEL($k),"; done
        echo "};"
        echo "}  // namespace"
        echo
        echo "const Ema4jModule ema4j_emulated_module = {EMA4J_MODULE_ABI, \"$cu\", \"$sha\", kKernels,"
        echo "                                           sizeof kKernels / sizeof kKernels[0]};"
    } >"$GEN/$name.module.cpp"
    "$CXX" "${COMMON[@]}" "${KERNEL_FLAGS[@]}" "${TRAP_FLAGS[@]}" -c -include "$SHIM" -I. -I"$SRC" \
        "$GEN/$name.module.cpp" -o "$GEN/$name.module.o"
    "$CXX" -shared "$GEN/$name.module.o" -o "$module.tmp"
    if nm -D "$module.tmp" | grep -q ' U __ubsan_'; then
        die "$module calls the sanitizer runtime instead of the shim's trap (NOTE: [alignment-trap])"
    fi
    mv "$module.tmp" "$module"
    need "$module"
done

# --- self-tests -----------------------------------------------------------------------------------------------------
SELFTEST_FLAGS=(-std=c++17 -ffp-contract=off -fno-fast-math -Wall -Wextra -Wno-unknown-pragmas -x c++ -include "$SHIM")
if stale "$OUT/shim_selftest" "$SRC/shim_selftest.cu" "$SHIM" "$0"; then
    "$CXX" -O2 "${TRAP_FLAGS[@]}" "${SELFTEST_FLAGS[@]}" -c "$SRC/shim_selftest.cu" -o "$GEN/shim_selftest.o"
    "$CXX" "$GEN/shim_selftest.o" -o "$OUT/shim_selftest"
fi
"$OUT/shim_selftest" >"$OUT/shim_selftest.log" || { cat "$OUT/shim_selftest.log"; die "shim self-test failed"; }
tail -n 1 "$OUT/shim_selftest.log"
if [ $sanitize -eq 1 ]; then
    SAN=(-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer)
    if echo 'int main() { return 0; }' | "$CXX" "${SAN[@]}" -x c++ - -o "$OUT/san_probe" >/dev/null 2>&1 \
        && "$OUT/san_probe"; then
        if stale "$OUT/shim_selftest_san" "$SRC/shim_selftest.cu" "$SHIM"; then
            "$CXX" -O1 -g "${SAN[@]}" "${SELFTEST_FLAGS[@]}" "$SRC/shim_selftest.cu" -o "$OUT/shim_selftest_san"
        fi
        ASAN_OPTIONS=detect_leaks=1:detect_stack_use_after_return=1 "$OUT/shim_selftest_san" \
            >"$OUT/shim_selftest_san.log" 2>&1 \
            || { cat "$OUT/shim_selftest_san.log"; die "shim self-test failed under ASan+UBSan"; }
        tail -n 1 "$OUT/shim_selftest_san.log" | sed 's/$/ (ASan+UBSan)/'
    else
        echo "build-emulator.sh: SKIP the shim self-test under ASan+UBSan: $CXX cannot link the sanitizers here"
    fi
    rm -f "$OUT/san_probe"
fi
if stale "$OUT/driver_selftest" "$SRC/driver_selftest.cpp" "$SRC/driver_abi.h" "$0"; then
    "$CXX" -std=c++17 -O1 -g -Wall -Wextra -pthread "$SRC/driver_selftest.cpp" -o "$OUT/driver_selftest" \
        -L"$OUT" -l:libcuda.so.1 -Wl,-rpath,'$ORIGIN'
fi
(cd "$ROOT" && "$OUT/driver_selftest") >"$OUT/driver_selftest.log" 2>&1 \
    || { cat "$OUT/driver_selftest.log"; die "driver self-test failed"; }
tail -n 1 "$OUT/driver_selftest.log"
echo "build-emulator.sh: $OUT/libcuda.so.1 and ${#sources[@]} module(s) ready"
