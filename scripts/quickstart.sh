#!/usr/bin/env bash
# The main job on the embedded default: set up, prove the C-sim engines equal
# the numpy reference bit for bit, and measure C-sim speed.
set -euo pipefail
. "$(dirname "$0")/_venv.sh"
cd "$root"
termshift verify
termshift bench csim --json out/bench_csim.json
