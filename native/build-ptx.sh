#!/usr/bin/env bash
# Builds PTX from every cuda/*.cu into src/cuda/src/main/resources/dev/ema4j/backend/cuda/<name>.ptx.
#
# usage: native/build-ptx.sh [--check]
#   (no argument)  rebuild the committed PTX files in place
#   --check        build into a temporary directory and compare with the committed files; exits 1 and prints a
#                  diff summary when any file differs, is missing, or is extra (has no cuda/*.cu source)
#
# Every output begins with one stamp line per source file it was built from (the .cu itself, then every local
# header it includes, recursively, as reported by `nvcc -M`, sorted; paths relative to the repository root):
#   // ema4j-ptx-source: cuda/ema.cu sha256=<64 lowercase hex>
# followed by nvcc's output unchanged.
#
# Environment: NVCC (default: nvcc).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd "$ROOT"

NVCC="${NVCC:-nvcc}"
# No --use_fast_math: [lerp-torch] and the conversions must stay exact.
#
# NOTE: [no-contraction]. -fmad=false: nvcc contracts a * b + c into one FMA by default, and leaves every other
# multiply and add without a rounding modifier (mul.f32, add.f64), which the driver's JIT may contract in turn. With
# -fmad=false every floating-point multiply, add and subtract of the PTX carries .rn (rounded once, never
# contracted), so the PTX computes what the source writes: a fused multiply-add only where the source says fmaf (or
# fma), as Java (no contraction, JLS 15.4) and the host emulation (g++ -ffp-contract=off) do. The rule that follows
# for the kernels: write fmaf where an FMA is wanted, plain operators elsewhere, and the GPU, the driver emulator and
# the Java CPU backend round each operation alike. Elementwise kernels (ema, sgd, elementwise, pool) are then
# bit-identical to Java by construction; the reductions (conv, gemm, batchnorm, pool's average, loss) still differ in
# summation order, and loss in the GPU's own exp and log, which the conformance tolerances cover. Contraction would
# change a result by up to one rounding of the product (|a * b| * 2^-24 in fp32, 2^-53 in double) per contracted
# operation, unboundedly more relative to a result that cancels (var = E[d^2] - E[d]^2, shift = beta - mean * scale).
# The hot loops are unaffected: they use fmaf already. build_one rejects PTX that still holds an unrounded
# multiply, add or subtract.
NVCC_FLAGS=(-ptx -arch=compute_75 -O3 -fmad=false)
OUT_REL="src/cuda/src/main/resources/dev/ema4j/backend/cuda"

die() { echo "build-ptx: error: $*" >&2; exit 1; }

mode=build
case "${1:-}" in
    "") ;;
    --check) mode=check ;;
    -h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument '$1' (usage: native/build-ptx.sh [--check])" ;;
esac
[ $# -le 1 ] || die "too many arguments (usage: native/build-ptx.sh [--check])"

command -v "$NVCC" >/dev/null 2>&1 || die "$NVCC not found on PATH"
command -v sha256sum >/dev/null 2>&1 || die "sha256sum not found on PATH"

shopt -s nullglob
sources=(cuda/*.cu)
shopt -u nullglob
[ ${#sources[@]} -gt 0 ] || die "no cuda/*.cu sources under $ROOT"

TMP="$(mktemp -d "${TMPDIR:-/tmp}/ema4j-ptx.XXXXXX")"
trap 'rm -rf "$TMP"' EXIT

# Prints the repo-relative paths of the local headers that $1 includes (recursively), sorted, one per line.
local_headers() {
    local src="$1" deps dep rel
    deps="$TMP/$(basename "$src").d"
    "$NVCC" -M "${NVCC_FLAGS[@]:1}" "$src" -o "$deps" || die "nvcc -M failed for $src"
    # Make syntax: "target : dep dep \" continued lines. Paths in this repo contain no spaces.
    sed -e 's/\\$//' -e 's/^[^:]*://' "$deps" | tr -s ' \t' '\n\n' | while IFS= read -r dep; do
        [ -n "$dep" ] || continue
        dep="$(realpath -m "$dep")"
        case "$dep" in
            "$ROOT"/*) rel="${dep#"$ROOT"/}" ;;
            *) continue ;;
        esac
        [ "$rel" = "$src" ] || printf '%s\n' "$rel"
    done | LC_ALL=C sort -u
}

stamp() {
    local f="$1" sum
    [ -f "$f" ] || die "stamp: $f is not a file"
    sum="$(sha256sum "$f" | cut -d' ' -f1)"
    [[ "$sum" =~ ^[0-9a-f]{64}$ ]] || die "stamp: bad sha256 for $f"
    printf '// ema4j-ptx-source: %s sha256=%s\n' "$f" "$sum"
}

# build_one SRC OUTDIR: writes OUTDIR/<name>.ptx
build_one() {
    local src="$1" outdir="$2" name raw out hdr
    name="$(basename "$src" .cu)"
    raw="$TMP/$name.raw.ptx"
    out="$outdir/$name.ptx"
    rm -f "$raw"
    "$NVCC" "${NVCC_FLAGS[@]}" "$src" -o "$raw" || die "nvcc failed for $src"
    # nvcc exits 0 and writes nothing when it cannot write its output: never trust the exit status alone.
    [ -s "$raw" ] || die "nvcc wrote no PTX for $src ($raw missing or empty)"
    grep -q '^\.version ' "$raw" || die "nvcc output for $src does not look like PTX"
    if grep -Eq '^[[:space:]]*(@!?%p[0-9]+[[:space:]]+)?(add|sub|mul)\.f(32|64)[[:space:]]' "$raw"; then
        die "$src: PTX with a contractible multiply, add or subtract (no .rn; NOTE: [no-contraction]):
$(grep -En '^[[:space:]]*(@!?%p[0-9]+[[:space:]]+)?(add|sub|mul)\.f(32|64)[[:space:]]' "$raw" | head -n 5)"
    fi
    # (kept out of `{ ...; } || ...` lists: set -e does not apply inside those)
    local_headers "$src" >"$TMP/$name.headers"
    stamp "$src" >"$TMP/$name.stamp"
    while IFS= read -r hdr; do stamp "$hdr" >>"$TMP/$name.stamp"; done <"$TMP/$name.headers"
    cat "$TMP/$name.stamp" "$raw" >"$out.tmp"
    mv -f "$out.tmp" "$out"
    [ -s "$out" ] || die "output $out missing or empty"
}

if [ "$mode" = build ]; then
    mkdir -p "$OUT_REL"
    for src in "${sources[@]}"; do
        build_one "$src" "$OUT_REL"
        echo "build-ptx: $src -> $OUT_REL/$(basename "$src" .cu).ptx ($(wc -l <"$OUT_REL/$(basename "$src" .cu).ptx") lines)"
        grep '^// ema4j-ptx-source: ' "$OUT_REL/$(basename "$src" .cu).ptx" | sed 's/^/    /'
    done
    exit 0
fi

# --check
fresh="$TMP/fresh"
mkdir -p "$fresh"
for src in "${sources[@]}"; do build_one "$src" "$fresh"; done

status=0
for f in "$fresh"/*.ptx; do
    name="$(basename "$f")"
    committed="$OUT_REL/$name"
    if [ ! -f "$committed" ]; then
        echo "build-ptx --check: MISSING $committed (run native/build-ptx.sh)"
        status=1
    elif ! cmp -s "$f" "$committed"; then
        echo "build-ptx --check: DIFFERS $committed (run native/build-ptx.sh); diff committed -> fresh:"
        diff -u "$committed" "$f" | sed -n '1,2d;/^[-+]/p' | head -n 20 | sed 's/^/    /' || true
        echo "    ($(diff "$committed" "$f" | grep -c '^[<>]' || true) changed lines in all)"
        status=1
    else
        echo "build-ptx --check: OK $committed"
    fi
done
if [ -d "$OUT_REL" ]; then
    shopt -s nullglob
    for committed in "$OUT_REL"/*.ptx; do
        name="$(basename "$committed")"
        if [ ! -f "$fresh/$name" ]; then
            echo "build-ptx --check: EXTRA $committed (no cuda/${name%.ptx}.cu)"
            status=1
        fi
    done
    shopt -u nullglob
fi
[ $status -eq 0 ] && echo "build-ptx --check: all PTX up to date" || echo "build-ptx --check: FAILED" >&2
exit $status
