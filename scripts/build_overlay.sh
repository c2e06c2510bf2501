#!/usr/bin/env bash
# Build the ZCU104 overlay: termshift.bit + termshift.hwh + manifest.json.
#
#   scripts/build_overlay.sh [--engines "int pot"] [--clock MHZ] [--jobs N] [--out DIR]
#
# Needs Vivado (vivado on PATH or XILINX_VIVADO set) and the engines' IP from
# `scripts/build_hls.sh all export`. Runs overlays/zcu104/build_overlay.tcl in
# Vivado batch mode, then writes and checks DIR/manifest.json (DIR defaults to
# overlays/zcu104). The Vivado project and logs go to $TERMSHIFT_BUILD_DIR/overlay
# (default build/overlay). Python 3 (no packages) writes the manifest; set
# PYTHON to choose the interpreter.
set -euo pipefail

usage() {
    sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'
}

die() {
    echo "build_overlay.sh: error: $1" >&2
    exit "${2:-1}"
}

root="${TERMSHIFT_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
root="$(cd "$root" && pwd)"
engines="${TERMSHIFT_ENGINES:-}"
clock="${TERMSHIFT_CLOCK_MHZ:-200}"
jobs="${TERMSHIFT_JOBS:-4}"
out="${TERMSHIFT_OVERLAY_OUT:-$root/overlays/zcu104}"

while [ $# -gt 0 ]; do
    case "$1" in
        -h|--help) usage; exit 0 ;;
        --engines) [ $# -ge 2 ] || die "--engines needs a value" 2; engines="$2"; shift 2 ;;
        --clock)   [ $# -ge 2 ] || die "--clock needs a value" 2; clock="$2"; shift 2 ;;
        --jobs)    [ $# -ge 2 ] || die "--jobs needs a value" 2; jobs="$2"; shift 2 ;;
        --out)     [ $# -ge 2 ] || die "--out needs a value" 2; out="$2"; shift 2 ;;
        *) usage >&2; exit 2 ;;
    esac
done
[[ "$clock" =~ ^[0-9]+([.][0-9]+)?$ ]] || die "--clock must be a number of MHz, got '$clock'" 2
[[ "$jobs" =~ ^[1-9][0-9]*$ ]] || die "--jobs must be a positive integer, got '$jobs'" 2

vivado=""
if command -v vivado >/dev/null 2>&1; then
    vivado="$(command -v vivado)"
elif [ -n "${XILINX_VIVADO:-}" ] && [ -x "$XILINX_VIVADO/bin/vivado" ]; then
    vivado="$XILINX_VIVADO/bin/vivado"
fi
if [ -z "$vivado" ]; then
    cat >&2 <<EOF
build_overlay.sh: error: vivado is not installed (not on PATH, and XILINX_VIVADO
does not point at an install). Source the Xilinx settings script first, e.g.
    source /tools/Xilinx/Vivado/2023.1/settings64.sh     # sets XILINX_VIVADO, PATH
then run this script again. Prebuilt overlays and how to install them on the
board: overlays/zcu104/README.md.
EOF
    exit 127
fi

python="${PYTHON:-}"
if [ -z "$python" ]; then
    python="$(command -v python3 || command -v python || true)"
fi
[ -n "$python" ] || die "python3 is needed to write manifest.json" 127

build="${TERMSHIFT_BUILD_DIR:-$root/build}"
hls="$build/hls"
# Fail before the long Vivado run if an engine's IP has not been exported.
if [ -z "$engines" ]; then
    for xml in "$hls"/gemm_*/*/impl/ip/component.xml; do
        [ -e "$xml" ] || continue
        proj="${xml#"$hls"/}"
        proj="${proj%%/*}"
        case " $engines " in *" ${proj#gemm_} "*) ;; *) engines="${engines:+$engines }${proj#gemm_}" ;; esac
    done
    [ -n "$engines" ] || die "no exported engine IP under $hls; run scripts/build_hls.sh all export first"
else
    for e in $engines; do
        [ -f "$root/hls/top/gemm_${e}.cpp" ] || die "unknown engine '$e' (no hls/top/gemm_${e}.cpp)" 2
        ls "$hls/gemm_${e}"/*/impl/ip/component.xml >/dev/null 2>&1 \
            || die "engine '$e' has no exported IP under $hls/gemm_${e}; run scripts/build_hls.sh $e export"
    done
fi

mkdir -p "$build/overlay" "$out"
out="$(cd "$out" && pwd)"
export TERMSHIFT_ROOT="$root" TERMSHIFT_BUILD_DIR="$build" TERMSHIFT_ENGINES="$engines"
export TERMSHIFT_CLOCK_MHZ="$clock" TERMSHIFT_JOBS="$jobs" TERMSHIFT_OVERLAY_OUT="$out"

echo "== overlay: engines {$engines}, $clock MHz, with $vivado"
status=0
(cd "$build/overlay" && "$vivado" -mode batch -nojournal -log "$build/overlay/vivado.log" \
    -source "$root/overlays/zcu104/build_overlay.tcl") || status=$?
[ "$status" = 0 ] || die "Vivado failed (exit $status); see $build/overlay/vivado.log"

PYTHONPATH="$root/host${PYTHONPATH:+:$PYTHONPATH}" "$python" -m termshift.hls.manifest write \
    --root "$root" --build-info "$build/overlay/build_info.json" --out "$out/manifest.json"
PYTHONPATH="$root/host${PYTHONPATH:+:$PYTHONPATH}" "$python" -m termshift.hls.manifest check "$out/manifest.json"
echo "== overlay: $out/termshift.bit, termshift.hwh, manifest.json"
