#!/usr/bin/env bash
# Run the Vitis HLS flow for one engine or all of them:
#
#   scripts/build_hls.sh [ENGINE|all] [csim|synth|cosim|export]
#
# ENGINE is the <name> of an hls/top/gemm_<name>.cpp (default: all of them);
# the step defaults to export, which synthesizes and packages the IP that
# scripts/build_overlay.sh puts in the ZCU104 overlay. Uses vitis_hls (-f) or,
# where only the unified tools are installed, vitis-run (--mode hls --tcl).
#
# Environment: TERMSHIFT_CLOCK_MHZ (target clock, default 200),
# TERMSHIFT_BUILD_DIR (default <repo>/build), TERMSHIFT_HLS_TOOL (force
# vitis_hls or vitis-run, or a path to either), TERMSHIFT_ROOT (the tree to
# build, default the one this script is in). Projects and logs go to
# $TERMSHIFT_BUILD_DIR/hls.
set -euo pipefail

usage() {
    sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'
}

die() {
    echo "build_hls.sh: error: $1" >&2
    exit "${2:-1}"
}

case "${1:-}" in
    -h|--help) usage; exit 0 ;;
esac
[ $# -le 2 ] || { usage >&2; exit 2; }

root="${TERMSHIFT_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
root="$(cd "$root" && pwd)"
engine="${1:-all}"
step="${2:-export}"

case "$step" in
    csim|synth|cosim|export) ;;
    *) echo "build_hls.sh: error: unknown step '$step' (expected csim, synth, cosim or export)" >&2; exit 2 ;;
esac

# Engines are whatever tops the tree has; nothing here lists them by name.
engines=()
for top in "$root"/hls/top/gemm_*.cpp; do
    [ -e "$top" ] || continue
    name="$(basename "$top" .cpp)"
    engines+=("${name#gemm_}")
done
[ ${#engines[@]} -gt 0 ] || die "no engines: $root/hls/top has no gemm_*.cpp"

if [ "$engine" = all ]; then
    selected=("${engines[@]}")
else
    found=0
    for e in "${engines[@]}"; do [ "$e" = "$engine" ] && found=1; done
    [ $found = 1 ] || { echo "build_hls.sh: error: unknown engine '$engine' (available: ${engines[*]}, all)" >&2; exit 2; }
    selected=("$engine")
fi

# Pick the HLS front end. vitis_hls is preferred when both exist because the
# scripts are plain Vitis HLS Tcl; vitis-run --tcl runs the same Tcl in the
# unified (2023.2+) installs where vitis_hls is deprecated or gone.
tool=""
if [ -n "${TERMSHIFT_HLS_TOOL:-}" ]; then
    tool="$(command -v "$TERMSHIFT_HLS_TOOL" || true)"
    [ -n "$tool" ] || die "TERMSHIFT_HLS_TOOL=$TERMSHIFT_HLS_TOOL is not an executable" 127
elif command -v vitis_hls >/dev/null 2>&1; then
    tool="$(command -v vitis_hls)"
elif command -v vitis-run >/dev/null 2>&1; then
    tool="$(command -v vitis-run)"
elif [ -n "${XILINX_HLS:-}" ] && [ -x "$XILINX_HLS/bin/vitis_hls" ]; then
    tool="$XILINX_HLS/bin/vitis_hls"
elif [ -n "${XILINX_VITIS:-}" ] && [ -x "$XILINX_VITIS/bin/vitis-run" ]; then
    tool="$XILINX_VITIS/bin/vitis-run"
fi
if [ -z "$tool" ]; then
    cat >&2 <<EOF
build_hls.sh: error: neither vitis_hls nor vitis-run is installed (not on PATH,
and XILINX_HLS / XILINX_VITIS do not point at an install).
Source the Xilinx settings script first, for example:
    source /tools/Xilinx/Vitis_HLS/2023.1/settings64.sh     # sets XILINX_HLS, PATH
    source /tools/Xilinx/Vitis/2024.2/settings64.sh         # unified install: vitis-run
then run this script again. Everything that does not need the tools (the
static check, C-sim, the resource model) runs without them: see docs/hls_flow.md.
EOF
    exit 127
fi

build="${TERMSHIFT_BUILD_DIR:-$root/build}/hls"
mkdir -p "$build/logs"
export TERMSHIFT_ROOT="$root" TERMSHIFT_HLS_STEP="$step"
export TERMSHIFT_CLOCK_MHZ="${TERMSHIFT_CLOCK_MHZ:-200}"

for e in "${selected[@]}"; do
    script="$root/hls/tcl/gemm_${e}.tcl"
    [ -f "$script" ] || script="$root/hls/tcl/run_engine.tcl"
    log="$build/logs/gemm_${e}_${step}.log"
    export TERMSHIFT_ENGINE="$e"
    echo "== gemm_${e}: $step with $(basename "$tool") ($script), log $log"
    status=0
    case "$(basename "$tool")" in
        vitis-run*) (cd "$build" && "$tool" --mode hls --tcl "$script") 2>&1 | tee "$log" || status=$? ;;
        *)          (cd "$build" && "$tool" -f "$script" -l "$log") || status=$? ;;
    esac
    [ "$status" = 0 ] || die "$step failed for engine '$e' (exit $status); see $log"
    if [ "$step" = export ]; then
        echo "== gemm_${e}: IP in $build/gemm_${e}/solution/impl/ip"
    fi
done
