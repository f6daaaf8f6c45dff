#!/usr/bin/env bash
# Assembles every committed PTX (src/cuda/src/main/resources/dev/ema4j/backend/cuda/*.ptx) with `ptxas -v` for sm_80 and sm_90 and
# prints one row per (ptx, arch, kernel): registers, spill stores, spill loads (bytes) and stack frame (bytes).
#
# usage: native/ptxas-check.sh [--markdown FILE | FILE]
#   FILE   also write the table as Markdown to FILE (overwritten), e.g. for bench/RESULTS.md
#
# Exits 1 when ptxas fails, when its output cannot be parsed, or when any kernel spills.
# Environment: PTXAS (default: ptxas), ARCHS (default: "sm_80 sm_90").
set -euo pipefail

CALLER_PWD="$PWD"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd "$ROOT"

PTXAS="${PTXAS:-ptxas}"
read -r -a archs <<<"${ARCHS:-sm_80 sm_90}"
PTX_REL="src/cuda/src/main/resources/dev/ema4j/backend/cuda"

die() { echo "ptxas-check: error: $*" >&2; exit 1; }

md=""
case "${1:-}" in
    "") ;;
    -h|--help) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    --markdown|--md) [ $# -eq 2 ] || die "--markdown needs a FILE"; md="$2"; shift 2 ;;
    -*) die "unknown option '$1' (usage: native/ptxas-check.sh [--markdown FILE | FILE])" ;;
    *) md="$1"; shift ;;
esac
[ $# -eq 0 ] || die "too many arguments (usage: native/ptxas-check.sh [--markdown FILE | FILE])"
if [ -n "$md" ]; then
    case "$md" in /*) ;; *) md="$CALLER_PWD/$md" ;; esac   # relative to the caller's directory
fi

command -v "$PTXAS" >/dev/null 2>&1 || die "$PTXAS not found on PATH"
shopt -s nullglob
ptxs=("$PTX_REL"/*.ptx)
shopt -u nullglob
[ ${#ptxs[@]} -gt 0 ] || die "no PTX under $PTX_REL (run native/build-ptx.sh)"

TMP="$(mktemp -d "${TMPDIR:-/tmp}/ema4j-ptxas.XXXXXX")"
trap 'rm -rf "$TMP"' EXIT
rows="$TMP/rows"   # ptx arch kernel regs spill_st spill_ld stack
: >"$rows"
failed=0

for ptx in "${ptxs[@]}"; do
    for arch in "${archs[@]}"; do
        log="$TMP/$(basename "$ptx" .ptx).$arch.log"
        if ! "$PTXAS" -v -arch="$arch" "$ptx" -o "$TMP/out.cubin" >"$log" 2>&1; then
            echo "ptxas-check: ptxas FAILED for $ptx ($arch):" >&2
            sed 's/^/    /' "$log" >&2
            failed=1
            continue
        fi
        if grep -qi 'warning' "$log"; then
            echo "ptxas-check: ptxas warnings for $ptx ($arch):" >&2
            grep -i 'warning' "$log" | sed 's/^/    /' >&2
        fi
        # ptxas info    : Compiling entry function 'K' for 'sm_90'
        # ptxas info    : Function properties for K
        #     S bytes stack frame, SS bytes spill stores, SL bytes spill loads
        # ptxas info    : Used R registers, used 0 barriers, ...
        awk -v ptx="$(basename "$ptx")" -v arch="$arch" '
            function flush() {
                if (k != "") {
                    if (regs == "" || st == "" || ss == "" || sl == "") { print "PARSE " k > "/dev/stderr"; bad = 1 }
                    print ptx, arch, k, regs, ss, sl, st
                }
                k = ""; regs = ""; st = ""; ss = ""; sl = ""
            }
            /Compiling entry function/ { flush(); k = $0; sub(/.*entry function \047/, "", k); sub(/\047.*/, "", k) }
            /bytes stack frame/ && k != "" {
                for (i = 1; i <= NF; i++) {
                    if ($(i+1) == "bytes" && $(i+2) == "stack") st = $i
                    if ($(i+1) == "bytes" && $(i+2) == "spill" && $(i+3) ~ /^stores/) ss = $i
                    if ($(i+1) == "bytes" && $(i+2) == "spill" && $(i+3) ~ /^loads/) sl = $i
                }
            }
            /Used [0-9]+ registers/ && k != "" { for (i = 1; i <= NF; i++) if ($i == "Used") regs = $(i+1) }
            END { flush(); exit bad }
        ' "$log" >>"$rows" || { echo "ptxas-check: cannot parse ptxas output for $ptx ($arch):" >&2; sed 's/^/    /' "$log" >&2; failed=1; }
        if ! grep -q "^$(basename "$ptx") $arch " "$rows"; then
            echo "ptxas-check: no entry functions found in $ptx ($arch)" >&2
            failed=1
        fi
    done
done

sorted="$TMP/sorted"
LC_ALL=C sort -k1,1 -k2,2 -k3,3 "$rows" >"$sorted"
version="$("$PTXAS" --version | tail -n 1)"

echo "ptxas -v ($version)"
awk 'BEGIN { printf "%-10s %-6s %-26s %5s %11s %10s %6s\n", "ptx", "arch", "kernel", "regs", "spill_st(B)", "spill_ld(B)", "stack" }
     { printf "%-10s %-6s %-26s %5s %11s %10s %6s%s\n", $1, $2, $3, $4, $5, $6, $7, ($5 + $6 > 0 ? "  SPILLS" : "") }' "$sorted"

spills="$(awk '$5 + $6 > 0' "$sorted" | wc -l)"
if [ "$spills" -gt 0 ]; then
    echo "ptxas-check: $spills kernel(s) spill registers" >&2
    failed=1
fi

if [ -n "$md" ]; then
    {
        echo "ptxas -v register and spill report (\`native/ptxas-check.sh\`, $version):"
        echo
        echo "| PTX | arch | kernel | registers | spill stores (B) | spill loads (B) | stack (B) |"
        echo "|---|---|---|--:|--:|--:|--:|"
        awk '{ printf "| %s | %s | `%s` | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6, $7 }' "$sorted"
    } >"$md" || die "cannot write $md"
    echo "ptxas-check: wrote Markdown table to $md"
fi

if [ $failed -ne 0 ]; then
    echo "ptxas-check: FAILED" >&2
    exit 1
fi
echo "ptxas-check: OK ($(wc -l <"$sorted") kernel builds, no spills)"
